/* db.h - PostgreSQL connections and one way to report their errors */
#ifndef AUDSYNC_DB_H
#define AUDSYNC_DB_H

#include <libpq-fe.h>
#include <stddef.h>

/*
 * Connects with conninfo (a "key=value" string or a postgresql:// URI;
 * NULL or "" uses libpq's defaults: PGHOST, PGDATABASE, service files).
 * Sets fallback_application_name "audsync", UTC and a lock timeout.
 * Returns the connection, or NULL with one line in err that names the
 * server but never a password. The caller closes it with PQfinish().
 */
PGconn *db_connect(const char *conninfo, char *err, size_t errlen);

/*
 * The connection that holds conn's advisory locks (one evaluator per
 * sync, one deliverer per lane): opened with conn's parameters on first
 * use, connected again when it broke, closed by db_close(conn). It never
 * runs a definition, so nothing a definition does to its session frees
 * or takes the engine's locks. Borrowed; NULL with err set when it cannot
 * connect.
 */
PGconn *db_lock_conn(PGconn *conn, char *err, size_t errlen);
/* Begins conn's lock connection without waiting for it, so that the
 * server starts its backend while conn works; db_lock_conn() finishes
 * it. A connection that cannot begin is left to db_lock_conn(). */
void db_lock_conn_start(PGconn *conn);
/* Closes conn and its lock connection. Accepts NULL. */
void db_close(PGconn *conn);
/*
 * A definition's hold on its session. db_session_state() reads what a
 * definition may not change (settings, user and role, advisory locks,
 * LISTEN channels, prepared statements; the caller PQclear()s it, NULL
 * with err set); db_session_change() names the first thing that differs
 * between two such states, or returns NULL (borrowed from before or
 * after). Settings that appear with a module the definition loads
 * (PL/pgSQL's) are no change, unless the definition set them.
 * db_session_reset() puts the session back as db_connect() left it and
 * frees its advisory locks (the engine's are on the lock connection);
 * outside a transaction. 0, or -1 with err set.
 */
PGresult *db_session_state(PGconn *conn, char *err, size_t errlen);
const char *db_session_change(const PGresult *before, const PGresult *after);
int db_session_reset(PGconn *conn, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/*
 * Formats PostgreSQL's error for what (a short name of the statement) as
 * one line: "WHAT: MESSAGE (DETAIL; HINT)". res may be NULL (the
 * connection's error is used).
 */
void db_error(char *err, size_t errlen, PGconn *conn, const PGresult *res,
	      const char *what);

/* Runs a command with parameters (text format). Returns 0 when it
 * succeeded, else -1 with err set through db_error(). */
int db_exec(PGconn *conn, const char *what, const char *sql, int nparams,
	    const char *const *params, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Runs a query with parameters and returns its result (the caller
 * PQclear()s it), or NULL with err set. */
PGresult *db_query(PGconn *conn, const char *what, const char *sql, int nparams,
		   const char *const *params, char *err, size_t errlen);

/* Runs copy_sql (a COPY ... FROM STDIN) with data, len bytes of COPY
 * text format. Returns 0, or -1 with err set through db_error(). */
int db_copy_in(PGconn *conn, const char *what, const char *copy_sql,
	       const char *data, size_t len, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * A COPY fed while its rows are still being made, so that the server
 * writes them as the client makes the next: db_copy_send() starts
 * copy_sql on conn unless it runs there already, and sends data, whole
 * rows of COPY text format. The COPY ends with db_copy_end(), or before
 * the next db_query, db_exec or db_copy_in on conn, which fail with its
 * error if it failed. Both return 0, or -1 with err set.
 */
int db_copy_send(PGconn *conn, const char *what, const char *copy_sql,
		 const char *data, size_t len, char *err, size_t errlen)
	__attribute__((warn_unused_result));
int db_copy_end(PGconn *conn, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * Stopping a long statement. db_interrupt_arm(conn) makes conn's
 * statements interruptible until db_interrupt_disarm(): db_interrupt(),
 * safe to call from a signal handler, cancels the statement running on
 * conn, and every db_query, db_exec or db_copy_in on it fails at once
 * afterwards ("stopped by a signal"), so that a loop of statements ends
 * too. Outside an armed stretch db_interrupt() only takes note.
 */
void db_interrupt_arm(PGconn *conn);
void db_interrupt_disarm(void);
void db_interrupt(void);

/* The SQLSTATE of res, or "" when it has none. Borrowed. */
const char *db_sqlstate(const PGresult *res);

/* The integer in text as PostgreSQL prints one (a bigint column's value,
 * PQcmdTuples); 0 for NULL, "" or anything else. */
long long db_int(const char *text);

#endif
