/* db.c - PostgreSQL connections and one way to report their errors */
#include "audsync/db.h"

#include "audsync/alloc.h"
#include "audsync/buf.h"
#include "audsync/errbuf.h"
#include "audsync/log.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The session's temporary buffers (server_options()). */
#define DB_TEMP_BUFFERS "128MB"
/* The connection a signal may interrupt (see db_interrupt_arm), and
 * whether one asked to. The handler runs on the thread it interrupts, so
 * it never sees a cancel object half freed. */
static PGcancel *volatile interrupt_target;
static volatile sig_atomic_t interrupted;

/* The COPY that db_copy_send() left running, and its name for errors.
 * A ROLLBACK by PQexec() ends it too (libpq fails it first): the
 * connection then no longer has a command running. */
static struct {
	PGconn *conn;
	const char *what, *sql;
} feeding;

/* Copies s into a one-line field: newlines become spaces, trailing space
 * goes. libpq messages end in '\n' and may span lines. */
static void one_line(char *dst, size_t len, const char *s)
{
	size_t i, n = 0;

	if (len == 0)
		return;
	for (i = 0; s && s[i] && n + 1 < len; i++)
		dst[n++] = (s[i] == '\n' || s[i] == '\r' || s[i] == '\t')
				   ? ' '
				   : s[i];
	while (n > 0 && dst[n - 1] == ' ')
		n--;
	dst[n] = '\0';
}

void db_error(char *err, size_t errlen, PGconn *conn, const PGresult *res,
	      const char *what)
{
	char msg[AUDSYNC_ERR_LEN], extra[AUDSYNC_ERR_LEN] = "";
	const char *detail = NULL, *hint = NULL;

	if (res && PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)) {
		one_line(msg, sizeof(msg),
			 PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
		detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
		hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
	} else {
		one_line(msg, sizeof(msg),
			 conn ? PQerrorMessage(conn) : "no connection");
	}
	if (detail || hint) {
		char d[240] = "", h[240] = "";

		one_line(d, sizeof(d), detail);
		one_line(h, sizeof(h), hint);
		snprintf(extra, sizeof(extra), " (%s%s%s)", d,
			 detail && hint ? "; " : "", h);
	}
	snprintf(err, errlen, "%s: %s%s", what, msg, extra);
}

/* Server notices (NOTICE: ... already exists) are for debugging only. */
static void notice_to_log(void *arg, const char *message)
{
	char line[512];

	(void)arg;
	one_line(line, sizeof(line), message);
	log_debug("postgresql notice", "notice", line);
}

/* The operator's server options (options= of conninfo, else PGOPTIONS)
 * between the engine's defaults and the engine's own: appended to, never
 * replaced. Caller frees. */
static char *server_options(const char *conninfo)
{
	/* A default the operator may override: a diff's temporary tables
	 * (a first sync's stage and changes, tens of MB per million
	 * members) stay in the session's buffers instead of going through
	 * the kernel on every scan. Given at connection, so that a
	 * session reset keeps it. */
	static const char defaults[] = "-c temp_buffers=" DB_TEMP_BUFFERS " ";
	static const char ours[] = "-c TimeZone=UTC -c lock_timeout=30000";
	PQconninfoOption *opts = NULL, *o;
	const char *theirs = getenv("PGOPTIONS");
	buf b;

	if (conninfo && *conninfo)
		opts = PQconninfoParse(conninfo, NULL);
	for (o = opts; o && o->keyword; o++)
		if (strcmp(o->keyword, "options") == 0 && o->val && *o->val)
			theirs = o->val;
	buf_init(&b);
	buf_puts(&b, defaults);
	if (theirs && *theirs)
		buf_printf(&b, "%s ", theirs);
	buf_puts(&b, ours);
	PQconninfoFree(opts);
	return buf_steal(&b);
}

/* 1 when a quoted fragment of a libpq message may hold part of the
 * password: when conninfo could not be read at all, when the fragment
 * holds the password or an '@', or when it is no value conninfo gave
 * (libpq quotes the text it stumbled on, and a '%', '@' or '/' left
 * unencoded in a password moves the password into the host, the port or
 * a bad token). A keyword's name is never hidden. */
static int fragment_hidden(const char *frag, PQconninfoOption *opts,
			   int lost_password)
{
	PQconninfoOption *o;
	int named = 0;

	if (!opts || lost_password || strchr(frag, '@'))
		return 1;
	for (o = opts; o->keyword; o++) {
		if (strcmp(o->keyword, frag) == 0)
			named = 1;
		if (!o->val || !*o->val)
			continue;
		if (strcmp(o->keyword, "password") == 0) {
			if (strstr(frag, o->val))
				return 1;
		} else if (strcmp(o->val, frag) == 0) {
			named = 1;
		}
	}
	return !named;
}

/* 1 when conninfo is a URI whose user part has a password ("user:pw@")
 * that libpq did not find in opts: a '/', '?' or '#' in the password ended
 * the user part early, and the rest went into the host, port or path. */
static int uri_password_lost(const char *conninfo, PQconninfoOption *opts)
{
	const char *start = strstr(conninfo, "://"), *at, *colon;
	PQconninfoOption *o;

	if (!start || !opts)
		return 0;
	start += 3;
	at = strrchr(start, '@');
	colon = strchr(start, ':');
	if (!at || !colon || colon > at)
		return 0;
	for (o = opts; o->keyword; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val && *o->val)
			return 0;
	return 1;
}

/* Replaces in msg each quoted fragment of conninfo's text that may hold
 * its password with "(hidden)". */
static void hide_password(char *msg, size_t len, const char *conninfo)
{
	PQconninfoOption *opts;
	char *out, *p = msg;
	size_t n = 0;
	int lost;

	if (!conninfo || !*conninfo)
		return;
	opts = PQconninfoParse(conninfo, NULL);
	lost = uri_password_lost(conninfo, opts);
	out = alloc_calloc(len, 1);
	while (*p && n + 1 < len) {
		char *end = *p == '"' ? strchr(p + 1, '"') : NULL;

		if (end) {
			char *frag =
				alloc_strndup(p + 1, (size_t)(end - p - 1));
			int hide = *frag && strstr(conninfo, frag) &&
				   fragment_hidden(frag, opts, lost);

			n += (size_t)snprintf(out + n, len - n, "\"%s\"",
					      hide ? "(hidden)" : frag);
			free(frag);
			if (n >= len)
				n = len - 1;
			p = end + 1;
			continue;
		}
		out[n++] = *p++;
	}
	out[n] = '\0';
	memcpy(msg, out, n + 1);
	free(out);
	PQconninfoFree(opts);
}

PGconn *db_connect(const char *conninfo, char *err, size_t errlen)
{
	char *options = server_options(conninfo);
	/* client_encoding: JSON text is UTF-8 whatever the database's
	 * encoding; the server converts. */
	const char *keys[] = { "dbname", "fallback_application_name", "options",
			       "client_encoding", NULL };
	const char *vals[] = { conninfo && *conninfo ? conninfo : NULL,
			       "audsync", options, "UTF8", NULL };
	const char *tz;
	PGconn *conn;

	/* expand_dbname: conninfo may be a full connection string or URI. */
	conn = PQconnectdbParams(keys, vals, 1);
	free(options);
	if (!conn) {
		snprintf(err, errlen, "database: out of memory");
		return NULL;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		char msg[AUDSYNC_ERR_LEN];

		one_line(msg, sizeof(msg), PQerrorMessage(conn));
		hide_password(msg, sizeof(msg), conninfo);
		snprintf(err, errlen,
			 "cannot connect to the database: %s "
			 "(set --db, AUDSYNC_DB or PGHOST/PGDATABASE)",
			 msg);
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeProcessor(conn, notice_to_log, NULL);
	/* libpq sends PGTZ after the options, so it wins over them; the
	 * times audsync prints with a Z must be UTC whatever the caller's
	 * environment. */
	tz = PQparameterStatus(conn, "TimeZone");
	if ((!tz || strcmp(tz, "UTC") != 0) &&
	    db_exec(conn, "time zone", "SET TimeZone = 'UTC'", 0, NULL, err,
		    errlen) != 0) {
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

/* The lock connections (db_lock_conn), by the connection they serve. A
 * process has one or two connections; a small table does. pending: begun
 * by db_lock_conn_start(), not yet finished. */
#define DB_MAX_LOCK_CONNS 8
static struct {
	PGconn *owner;
	PGconn *lock;
	int pending;
} lock_conns[DB_MAX_LOCK_CONNS];

/* Begins a second connection with conn's parameters (its server, user,
 * password, options, encoding) without waiting for it, or returns NULL. */
static PGconn *start_like(PGconn *conn)
{
	PQconninfoOption *opts = PQconninfo(conn), *o;
	const char **keys, **vals;
	PGconn *c;
	size_t n = 0;

	if (!opts)
		return NULL;
	for (o = opts; o->keyword; o++)
		n++;
	keys = alloc_calloc(n + 1, sizeof(*keys));
	vals = alloc_calloc(n + 1, sizeof(*vals));
	n = 0;
	for (o = opts; o->keyword; o++) {
		if (!o->val)
			continue;
		keys[n] = o->keyword;
		vals[n++] = o->val;
	}
	c = PQconnectStartParams(keys, vals, 0);
	free(keys);
	free(vals);
	PQconninfoFree(opts);
	return c;
}

/* The connect_timeout of c's parameters in milliseconds, or -1 (none:
 * wait as long as PQconnectdb() would). */
static int timeout_ms(PGconn *c)
{
	PQconninfoOption *opts = PQconninfo(c), *o;
	int ms = -1;

	for (o = opts; o && o->keyword; o++) {
		long secs;

		if (strcmp(o->keyword, "connect_timeout") != 0 || !o->val)
			continue;
		secs = strtol(o->val, NULL, 10);
		if (secs > 0 && secs < 86400)
			ms = (int)secs * 1000;
	}
	PQconninfoFree(opts);
	return ms;
}

/*
 * Moves connection c on: until it is made or has failed when wait is
 * set, otherwise only as far as it goes without waiting (the startup
 * message sent, the server left to start its backend while this process
 * does other work). 1 when made, 0 when not yet, -1 when it failed.
 */
static int drive(PGconn *c, int wait)
{
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	int ms = wait ? timeout_ms(c) : 0;

	if (!c || PQstatus(c) == CONNECTION_BAD)
		return -1;
	for (;;) {
		struct pollfd p = { PQsocket(c), 0, 0 };
		int r;

		if (st == PGRES_POLLING_OK)
			return 1;
		if (st == PGRES_POLLING_FAILED)
			return -1;
		p.events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
		r = poll(&p, 1, ms);
		if (r < 0 && errno != EINTR)
			return -1;
		if (r == 0)
			return wait ? -1 : 0;
		if (r > 0)
			st = PQconnectPoll(c);
	}
}

/* What every lock connection is given once made, or NULL with err set. */
static PGconn *made(PGconn *c, char *err, size_t errlen)
{
	if (!c || PQstatus(c) != CONNECTION_OK) {
		char msg[AUDSYNC_ERR_LEN];

		one_line(msg, sizeof(msg),
			 !c		      ? "out of memory"
			 : *PQerrorMessage(c) ? PQerrorMessage(c)
					      : "timed out (connect_timeout)");
		snprintf(err, errlen, "lock connection: %s", msg);
		PQfinish(c);
		return NULL;
	}
	PQsetNoticeProcessor(c, notice_to_log, NULL);
	/* It sits idle while a long definition runs on conn: a server's
	 * idle_session_timeout (PostgreSQL 14 and later) must not end it
	 * and free the locks it holds. */
	PQclear(PQexec(c, "SELECT set_config('idle_session_timeout',"
			  " '0', false) WHERE current_setting("
			  "'server_version_num')::int >= 140000"));
	return c;
}

/* conn's slot, or a free one (owner NULL), or -1. */
static int slot_of(PGconn *conn)
{
	int i, free_slot = -1;

	for (i = 0; i < DB_MAX_LOCK_CONNS; i++) {
		if (lock_conns[i].owner == conn)
			return i;
		if (!lock_conns[i].owner && free_slot < 0)
			free_slot = i;
	}
	return free_slot;
}

void db_lock_conn_start(PGconn *conn)
{
	int i = slot_of(conn);
	PGconn *c;

	if (i < 0 || lock_conns[i].owner == conn)
		return;
	c = start_like(conn);
	if (drive(c, 0) < 0) {
		/* db_lock_conn() connects again, and says why it cannot. */
		PQfinish(c);
		return;
	}
	lock_conns[i].owner = conn;
	lock_conns[i].lock = c;
	lock_conns[i].pending = 1;
}

PGconn *db_lock_conn(PGconn *conn, char *err, size_t errlen)
{
	int i = slot_of(conn);
	PGconn *l;

	if (i < 0) {
		snprintf(err, errlen, "lock connection: too many connections");
		return NULL;
	}
	if (lock_conns[i].owner == conn && !lock_conns[i].pending) {
		l = lock_conns[i].lock;
		/* Broken (a server restart): its locks went with it, as the
		 * main connection's session did. */
		if (PQstatus(l) != CONNECTION_OK)
			PQreset(l);
		if (PQstatus(l) == CONNECTION_OK)
			return l;
		snprintf(err, errlen, "lock connection: %s",
			 "cannot connect again");
		return NULL;
	}
	l = lock_conns[i].owner == conn ? lock_conns[i].lock : start_like(conn);
	drive(l, 1);
	l = made(l, err, errlen);
	lock_conns[i].owner = l ? conn : NULL;
	lock_conns[i].lock = l;
	lock_conns[i].pending = 0;
	return l;
}

void db_close(PGconn *conn)
{
	int i;

	for (i = 0; conn && i < DB_MAX_LOCK_CONNS; i++) {
		if (lock_conns[i].owner == conn) {
			PQfinish(lock_conns[i].lock);
			lock_conns[i].owner = NULL;
			lock_conns[i].lock = NULL;
			lock_conns[i].pending = 0;
		}
	}
	if (feeding.conn == conn)
		feeding.conn = NULL;
	PQfinish(conn);
}

/*
 * What a definition may not change in its session, read with every name
 * qualified (the definition may have changed search_path): the settings,
 * the user and role, the session's advisory locks, LISTEN channels and
 * prepared statements. One (name, value, source) row each; source is a
 * setting's (pg_settings), empty for the others.
 */
static const char session_state_sql[] =
	"SELECT 'current_user', current_user::pg_catalog.text, ''"
	" UNION ALL SELECT 'session_user', session_user::pg_catalog.text, ''"
	" UNION ALL SELECT 'advisory locks',"
	"  pg_catalog.count(*)::pg_catalog.text, ''"
	"  FROM pg_catalog.pg_lock_status() l"
	"  WHERE l.pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid()"
	"  AND l.locktype OPERATOR(pg_catalog.=) 'advisory'"
	" UNION ALL SELECT 'LISTEN channels',"
	"  pg_catalog.array_agg(c)::pg_catalog.text, ''"
	"  FROM pg_catalog.pg_listening_channels() c"
	" UNION ALL SELECT 'prepared statements',"
	"  pg_catalog.count(*)::pg_catalog.text, ''"
	"  FROM pg_catalog.pg_prepared_statement()"
	" UNION ALL SELECT name, setting, source"
	"  FROM pg_catalog.pg_show_all_settings()";

PGresult *db_session_state(PGconn *conn, char *err, size_t errlen)
{
	return db_query(conn, "session state", session_state_sql, 0, NULL, err,
			errlen);
}

/* The row of r named name, or -1; the search starts at row hint (the
 * rows of two states mostly lie in the same order). */
static int state_row(const PGresult *r, const char *name, int hint)
{
	int n = PQntuples(r), k, j;

	for (k = 0; k < n; k++) {
		j = (hint + k) % n;
		if (strcmp(PQgetvalue(r, j, 0), name) == 0)
			return j;
	}
	return -1;
}

const char *db_session_change(const PGresult *before, const PGresult *after)
{
	int i, j = 0;

	/* By name, the user and role first (another role may see other
	 * settings): a module the definition loads (PL/pgSQL) adds its
	 * settings between the others. */
	for (i = 0; i < PQntuples(before); i++) {
		j = state_row(after, PQgetvalue(before, i, 0), j);
		if (j < 0 || strcmp(PQgetvalue(before, i, 1),
				    PQgetvalue(after, j, 1)) != 0)
			return PQgetvalue(before, i, 0);
	}
	/* A new setting is the loaded module's own, unless the definition
	 * set it (before the module came, or after). */
	for (j = 0; j < PQntuples(after); j++)
		if (strcmp(PQgetvalue(after, j, 2), "session") == 0 &&
		    state_row(before, PQgetvalue(after, j, 0), j) < 0)
			return PQgetvalue(after, j, 0);
	return NULL;
}

/* The session as db_connect() left it. SET SESSION AUTHORIZATION and
 * ROLE first: RESET ALL leaves them. The reset values are the
 * connection's own (its options and encoding); UTC again, as libpq's
 * PGTZ may have set another zone at connection. */
static const char session_reset_sql[] =
	"SET SESSION AUTHORIZATION DEFAULT; RESET ROLE; RESET ALL;"
	" SET TimeZone = 'UTC'; SET client_encoding = 'UTF8';"
	" SELECT pg_catalog.pg_advisory_unlock_all()";

int db_session_reset(PGconn *conn, char *err, size_t errlen)
{
	PGresult *res = PQexec(conn, session_reset_sql);
	int rc = 0;

	/* Several statements: the last one's result, or the first error. */
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		db_error(err, errlen, conn, res, "session reset");
		rc = -1;
	}
	PQclear(res);
	return rc;
}

void db_interrupt_arm(PGconn *conn)
{
	db_interrupt_disarm();
	interrupt_target = PQgetCancel(conn);
}

void db_interrupt_disarm(void)
{
	PGcancel *c = interrupt_target;

	interrupt_target = NULL;
	PQfreeCancel(c);
}

void db_interrupt(void)
{
	/* PQcancel is signal-safe with a local buffer. */
	char errbuf[AUDSYNC_ERR_LEN];
	PGcancel *c = interrupt_target;

	interrupted = 1;
	if (c)
		(void)PQcancel(c, errbuf, sizeof(errbuf));
}

/* 1, with err set, when an armed stretch was interrupted. */
static int stopped(const char *what, char *err, size_t errlen)
{
	if (!interrupted || !interrupt_target)
		return 0;
	snprintf(err, errlen, "%s: stopped by a signal", what);
	return 1;
}

/* The data goes in messages of this size: libpq would copy one message
 * whole into its output buffer, and the server into its input buffer,
 * each growing to the size of all the data (megabytes of fresh pages in
 * both processes). */
#define COPY_CHUNK (64 * 1024)

static int copy_running(PGconn *conn)
{
	if (feeding.conn != conn)
		return 0;
	if (PQtransactionStatus(conn) == PQTRANS_ACTIVE)
		return 1;
	feeding.conn = NULL;
	return 0;
}

int db_copy_end(PGconn *conn, char *err, size_t errlen)
{
	PGresult *res;
	int rc = 0;

	if (!copy_running(conn))
		return 0;
	feeding.conn = NULL;
	if (PQputCopyEnd(conn, NULL) != 1)
		rc = -1;
	res = PQgetResult(conn);
	if (rc != 0 || PQresultStatus(res) != PGRES_COMMAND_OK) {
		db_error(err, errlen, conn, res, feeding.what);
		rc = -1;
	}
	/* A COPY ends with one result; drain any other. */
	for (; res; res = PQgetResult(conn))
		PQclear(res);
	return rc;
}

/* 0 when no COPY runs on conn, or it ended well; else -1, err set. */
static int before_statement(PGconn *conn, const char *what, char *err,
			    size_t errlen)
{
	return stopped(what, err, errlen) ? -1 : db_copy_end(conn, err, errlen);
}

PGresult *db_query(PGconn *conn, const char *what, const char *sql, int nparams,
		   const char *const *params, char *err, size_t errlen)
{
	PGresult *res;
	ExecStatusType st;

	if (before_statement(conn, what, err, errlen) != 0)
		return NULL;
	res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	st = PQresultStatus(res);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return res;
	db_error(err, errlen, conn, res, what);
	PQclear(res);
	return NULL;
}

int db_exec(PGconn *conn, const char *what, const char *sql, int nparams,
	    const char *const *params, char *err, size_t errlen)
{
	PGresult *res = db_query(conn, what, sql, nparams, params, err, errlen);

	if (!res)
		return -1;
	PQclear(res);
	return 0;
}

const char *db_sqlstate(const PGresult *res)
{
	const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	return s ? s : "";
}

int db_copy_send(PGconn *conn, const char *what, const char *copy_sql,
		 const char *data, size_t len, char *err, size_t errlen)
{
	PGresult *res;
	size_t n;

	if (!copy_running(conn) || strcmp(feeding.sql, copy_sql) != 0) {
		if (before_statement(conn, what, err, errlen) != 0)
			return -1;
		res = PQexec(conn, copy_sql);
		if (PQresultStatus(res) != PGRES_COPY_IN) {
			db_error(err, errlen, conn, res, what);
			PQclear(res);
			return -1;
		}
		PQclear(res);
		feeding.conn = conn;
		feeding.what = what;
		feeding.sql = copy_sql;
	}
	for (; len > 0; data += n, len -= n) {
		n = len < COPY_CHUNK ? len : COPY_CHUNK;
		if (PQputCopyData(conn, data, (int)n) != 1) {
			db_error(err, errlen, conn, NULL, what);
			return -1;
		}
	}
	return 0;
}

int db_copy_in(PGconn *conn, const char *what, const char *copy_sql,
	       const char *data, size_t len, char *err, size_t errlen)
{
	if (db_copy_send(conn, what, copy_sql, data, len, err, errlen) != 0)
		return -1;
	return db_copy_end(conn, err, errlen);
}

long long db_int(const char *text)
{
	char *end;
	long long v;

	if (!text || !*text)
		return 0;
	errno = 0;
	v = strtoll(text, &end, 10);
	return errno || *end ? 0 : v;
}
