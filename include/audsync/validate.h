/* validate.h - whether every sync's definition and destination are sound */
#ifndef AUDSYNC_VALIDATE_H
#define AUDSYNC_VALIDATE_H

#include <libpq-fe.h>
#include <stdio.h>

/*
 * `audsync validate`: checks every definition, of a sync or of a
 * computation no sync uses (parsed and described by PostgreSQL, not run),
 * and every destination's settings; prints one
 * line per problem to f, then a summary. *out is the number of problems.
 * Returns 0, or -1 with err set (the database could not be read; then
 * *out is not set).
 */
int validate_definitions(int *out, FILE *f, PGconn *conn, char *err,
			 size_t errlen) __attribute__((warn_unused_result));

#endif
