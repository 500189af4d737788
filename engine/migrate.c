/* migrate.c - numbered, forward-only schema migrations from sql/ */
#include "audsync/migrate.h"

#include "audsync/db.h"
#include "audsync/log.h"

#include <stdio.h>
#include <stdlib.h>

/* Any constant shared by every audsync process: the migration lock. */
#define MIGRATE_LOCK_KEY "7210460981"

static const char schema_sql[] = "CREATE SCHEMA IF NOT EXISTS audsync";
static const char ledger_sql[] =
	"CREATE TABLE IF NOT EXISTS audsync.schema_migrations ("
	" version integer PRIMARY KEY, name text NOT NULL,"
	" applied_at timestamptz NOT NULL DEFAULT now())";

/* Highest applied version, or -1 with err set. */
static int applied_version(PGconn *conn, char *err, size_t errlen)
{
	PGresult *res;
	int v;

	res = db_query(conn, "read audsync.schema_migrations",
		       "SELECT coalesce(max(version), 0)"
		       " FROM audsync.schema_migrations",
		       0, NULL, err, errlen);
	if (!res)
		return -1;
	v = (int)db_int(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (v > migrations[migration_count - 1].version) {
		snprintf(err, errlen,
			 "the audsync schema is at version %d, newer than this "
			 "audsync " AUDSYNC_VERSION " knows (%d): run the "
			 "audsync that migrated it, or a newer one",
			 v, migrations[migration_count - 1].version);
		return -1;
	}
	return v;
}

/* One migration and its ledger row in one transaction. */
static int apply_one(PGconn *conn, const migration *m, char *err, size_t errlen)
{
	char version[16], what[96];
	const char *params[2];
	PGresult *res;
	int rc = -1;

	snprintf(version, sizeof(version), "%d", m->version);
	snprintf(what, sizeof(what), "migration %s", m->name);
	params[0] = version;
	params[1] = m->name;
	if (db_exec(conn, what, "BEGIN", 0, NULL, err, errlen) != 0)
		return -1;
	/* PQexec: a file holds several statements, no parameters. */
	res = PQexec(conn, m->sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK) {
		db_error(err, errlen, conn, res, what);
		goto out;
	}
	if (db_exec(conn, what,
		    "INSERT INTO audsync.schema_migrations (version, name)"
		    " VALUES ($1, $2)",
		    2, params, err, errlen) != 0)
		goto out;
	if (db_exec(conn, what, "COMMIT", 0, NULL, err, errlen) != 0)
		goto out;
	rc = 0;
out:
	PQclear(res);
	if (rc != 0)
		PQclear(PQexec(conn, "ROLLBACK"));
	return rc;
}

int migrate_apply(PGconn *conn, int *out, char *err, size_t errlen)
{
	int i, current, applied = 0, rc = -1;

	if (db_exec(conn, "migration lock",
		    "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", 0, NULL,
		    err, errlen) != 0)
		return -1;
	if (db_exec(conn, "create schema audsync", schema_sql, 0, NULL, err,
		    errlen) != 0 ||
	    db_exec(conn, "create audsync.schema_migrations", ledger_sql, 0,
		    NULL, err, errlen) != 0)
		goto out;
	current = applied_version(conn, err, errlen);
	if (current < 0)
		goto out;
	for (i = 0; i < migration_count; i++) {
		if (migrations[i].version <= current)
			continue;
		if (apply_one(conn, &migrations[i], err, errlen) != 0)
			goto out;
		log_info("migration applied", "file", migrations[i].name);
		applied++;
	}
	*out = applied;
	rc = 0;
out:
	PQclear(PQexec(conn,
		       "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")"));
	return rc;
}

int migrate_is_current(PGconn *conn, int *out, char *err, size_t errlen)
{
	PGresult *res;
	int v;

	res = db_query(conn, "schema check",
		       "SELECT to_regclass('audsync.schema_migrations')"
		       " IS NOT NULL",
		       0, NULL, err, errlen);
	if (!res)
		return -1;
	v = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	if (v) {
		v = applied_version(conn, err, errlen);
		if (v < 0)
			return -1;
		v = v >= migrations[migration_count - 1].version;
	}
	*out = v;
	return 0;
}
