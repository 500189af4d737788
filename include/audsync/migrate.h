/* migrate.h - numbered, forward-only schema migrations from sql/ */
#ifndef AUDSYNC_MIGRATE_H
#define AUDSYNC_MIGRATE_H

#include <libpq-fe.h>

typedef struct migration {
	int version;
	const char *name;
	const char *sql;
} migration;

/* The files of sql/, in order, embedded at build time. */
extern const migration migrations[];
extern const int migration_count;

/*
 * Applies every migration not yet recorded in audsync.schema_migrations,
 * each in its own transaction together with its record, under an advisory
 * lock so two processes never migrate at once. *out is the number applied
 * (0 when up to date). Returns 0, or -1 with a one-line message in err
 * naming the migration and PostgreSQL's reason; a failed migration leaves
 * nothing of itself behind.
 */
int migrate_apply(PGconn *conn, int *out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Sets *out to 1 when every migration is applied, else 0. Returns 0, or -1
 * with err set when the database cannot be read or its schema is newer
 * than this binary (a migration it does not know was applied: a newer
 * audsync migrated it, and this one could misread its tables). */
int migrate_is_current(PGconn *conn, int *out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
