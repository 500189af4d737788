/* outbox.c - calls decided but not yet accepted by Mixpanel */
#include "audsync/outbox.h"

#include "audsync/alloc.h"
#include "audsync/buf.h"
#include "audsync/db.h"
#include "audsync/errbuf.h"
#include "audsync/log.h"
#include "audsync/notify.h"
#include "audsync/progress.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Bytes of records per page before it is written, whatever the count. */
#define PAGE_BYTES (1024 * 1024)
/* Bytes of pages sent in one COPY. */
#define COPY_BYTES (4 * 1024 * 1024)
/* Pages of one lane, and pages in all, that one delivery round sends. */
#define ROUND_PAGES_PER_LANE 2
#define ROUND_PAGES	     100
/* The numbers above as SQL text, to paste into statements. */
#define STR_(x)		   #x
#define STR(x)		   STR_(x)
#define LANES_SQL	   STR(OUTBOX_LANES)
#define PAGES_PER_LANE_SQL STR(ROUND_PAGES_PER_LANE)
#define PAGES_SQL	   STR(ROUND_PAGES)

uint32_t outbox_lane(const char *distinct_id)
{
	uint32_t h = 2166136261u; /* FNV-1a: stable, and fast enough */
	const unsigned char *p = (const unsigned char *)distinct_id;

	for (; *p; p++) {
		h ^= *p;
		h *= 16777619u;
	}
	return h % OUTBOX_LANES;
}

struct outbox_writer {
	PGconn *conn;
	FILE *dry_run;
	char dest_id[16], sync_id[16], run_id[24], endpoint[4];
	const char *dest_name;
	mp_endpoint ep;
	long long records;
	int lanes_ready;
	buf copy; /* pages ready to write, COPY text format */
	buf page[OUTBOX_LANES];
	int count[OUTBOX_LANES];
};

outbox_writer *outbox_writer_open(PGconn *conn, int dest_id,
				  const char *dest_name, int sync_id,
				  long long run_id, mp_endpoint ep,
				  FILE *dry_run)
{
	outbox_writer *w = alloc_calloc(1, sizeof(*w));
	int i;

	w->conn = conn;
	w->dry_run = dry_run;
	w->dest_name = dest_name;
	w->ep = ep;
	snprintf(w->dest_id, sizeof(w->dest_id), "%d", dest_id);
	/* Forwarded messages belong to no sync: NULL in COPY text. */
	if (sync_id > 0)
		snprintf(w->sync_id, sizeof(w->sync_id), "%d", sync_id);
	else
		snprintf(w->sync_id, sizeof(w->sync_id), "\\N");
	snprintf(w->run_id, sizeof(w->run_id), "%lld", run_id);
	snprintf(w->endpoint, sizeof(w->endpoint), "%d", (int)ep);
	for (i = 0; i < OUTBOX_LANES; i++)
		buf_init(&w->page[i]);
	return w;
}

void outbox_writer_close(outbox_writer *w)
{
	int i;

	if (!w)
		return;
	for (i = 0; i < OUTBOX_LANES; i++)
		buf_free(&w->page[i]);
	buf_free(&w->copy);
	free(w);
}

/* Lanes exist as rows so that delivery can lock them. */
static int ensure_lanes(outbox_writer *w, char *err, size_t errlen)
{
	char lanes[16];
	const char *p[2] = { w->dest_id, lanes };

	if (w->lanes_ready)
		return 0;
	w->lanes_ready = 1;
	snprintf(lanes, sizeof(lanes), "%d", OUTBOX_LANES);
	return db_exec(w->conn, "outbox lanes",
		       "INSERT INTO audsync.outbox_lanes (destination_id, lane)"
		       " SELECT $1, g FROM generate_series(0, $2::int - 1) g"
		       " ON CONFLICT DO NOTHING",
		       2, p, err, errlen);
}

/* Pages are written by COPY a few megabytes at a time: thousands of
 * single-row INSERTs cost more than the data. */
static int flush_pages(outbox_writer *w, char *err, size_t errlen)
{
	int rc;

	if (w->copy.len == 0)
		return 0;
	if (ensure_lanes(w, err, errlen) != 0)
		return -1;
	rc = db_copy_in(w->conn, "write outbox",
			"COPY audsync.outbox (destination_id, sync_id, run_id,"
			" lane, endpoint, n, records) FROM STDIN",
			w->copy.data, w->copy.len, err, errlen);
	buf_reset(&w->copy);
	return rc;
}

static int write_page(outbox_writer *w, int lane, char *err, size_t errlen)
{
	if (w->count[lane] == 0)
		return 0;
	buf_printf(&w->copy, "%s\t%s\t%s\t%d\t%s\t%d\t", w->dest_id, w->sync_id,
		   w->run_id, lane, w->endpoint, w->count[lane]);
	buf_copy_text(&w->copy, w->page[lane].data);
	buf_putc(&w->copy, '\n');
	buf_reset(&w->page[lane]);
	w->count[lane] = 0;
	if (w->copy.len >= COPY_BYTES)
		return flush_pages(w, err, errlen);
	return 0;
}

static void print_dry_run(outbox_writer *w, const char *record, size_t len)
{
	buf line;

	buf_init(&line);
	buf_puts(&line, "{\"destination\":");
	buf_json_str(&line, w->dest_name);
	buf_printf(&line,
		   ",\"endpoint\":\"%s\",\"record\":", mp_endpoint_path(w->ep));
	buf_append(&line, record, len);
	buf_puts(&line, "}\n");
	fwrite(line.data, 1, line.len, w->dry_run);
	buf_free(&line);
}

int outbox_writer_add(outbox_writer *w, const char *distinct_id,
		      const char *record, size_t len, char *err, size_t errlen)
{
	uint32_t lane = outbox_lane(distinct_id);
	buf *b = &w->page[lane];

	w->records++;
	if (w->dry_run) {
		print_dry_run(w, record, len);
		return 0;
	}
	if (w->count[lane] > 0)
		buf_putc(b, '\n');
	buf_append(b, record, len);
	w->count[lane]++;
	if (w->count[lane] >= OUTBOX_PAGE_RECORDS || b->len >= PAGE_BYTES)
		return write_page(w, (int)lane, err, errlen);
	return 0;
}

int outbox_writer_finish(outbox_writer *w, long long *out, char *err,
			 size_t errlen)
{
	int i;

	for (i = 0; !w->dry_run && i < OUTBOX_LANES; i++)
		if (write_page(w, i, err, errlen) != 0)
			return -1;
	if (flush_pages(w, err, errlen) != 0)
		return -1;
	*out = w->records;
	return 0;
}

/* One claimed page during a delivery round. */
typedef struct page {
	char id[24], sync_id[16], run_id[24], lane[8], endpoint[4];
	char *text; /* records, split in place at '\n' */
	int n;
	int settled; /* records [0, settled) are settled in the database */
	int upto;    /* settle_answered's next settled */
	char **rec;
	unsigned char *outcome;
	char **msg; /* reasons of rejected / not delivered */
} page;

typedef struct round {
	char *lanes; /* the lanes claimed, as a PostgreSQL array */
	page *pages;
	int n;
	outbox_stats st;
	PGconn *conn; /* where settle_answered() settles, during a flush */
	const char *dest_id;
	int settle_failed; /* settle the rest at the end of the round */
} round;

static void round_free(round *r)
{
	int i, j;

	for (i = 0; i < r->n; i++) {
		for (j = 0; j < r->pages[i].n; j++)
			free(r->pages[i].msg[j]);
		free(r->pages[i].text);
		free(r->pages[i].rec);
		free(r->pages[i].outcome);
		free(r->pages[i].msg);
	}
	free(r->pages);
	free(r->lanes);
	memset(r, 0, sizeof(*r));
}

static void on_result(void *ud, uint64_t tag, mp_outcome outcome,
		      const char *message)
{
	round *r = ud;
	page *p = &r->pages[tag >> 32];
	uint32_t i = (uint32_t)tag;

	p->outcome[i] = (unsigned char)outcome;
	if (outcome != MP_OUT_NOT_DELIVERED)
		progress_delivered(1);
	free(p->msg[i]);
	p->msg[i] = alloc_strdup(message);
}

/* Splits a page into its records; a page's count is what it holds. */
static void load_page(page *p, const PGresult *res, int row)
{
	char *s;
	int i;

	snprintf(p->id, sizeof(p->id), "%s", PQgetvalue(res, row, 0));
	snprintf(p->lane, sizeof(p->lane), "%s", PQgetvalue(res, row, 1));
	snprintf(p->endpoint, sizeof(p->endpoint), "%s",
		 PQgetvalue(res, row, 2));
	snprintf(p->sync_id, sizeof(p->sync_id), "%s", PQgetvalue(res, row, 4));
	snprintf(p->run_id, sizeof(p->run_id), "%s", PQgetvalue(res, row, 5));
	p->text = alloc_strdup(PQgetvalue(res, row, 3));
	p->n = 1;
	for (s = p->text; *s; s++)
		p->n += *s == '\n';
	p->rec = alloc_calloc((size_t)p->n, sizeof(*p->rec));
	p->outcome = alloc_calloc((size_t)p->n, 1);
	p->msg = alloc_calloc((size_t)p->n, sizeof(*p->msg));
	p->rec[0] = p->text;
	for (i = 1, s = p->text; *s; s++) {
		if (*s == '\n') {
			*s = '\0';
			p->rec[i++] = s + 1;
		}
	}
	for (i = 0; i < p->n; i++)
		p->outcome[i] = MP_OUT_NOT_DELIVERED;
}

/* Advisory lock class of "one deliverer per lane" ('AUDL'); the key is
 * destination_id * OUTBOX_LANES + lane: LANE_KEY then the lane's column,
 * with the destination's id as $1. */
#define LANE_LOCK_CLASS "1096107084"
#define LANE_KEY	"$1::int * " LANES_SQL " + "

/*
 * A lane is claimed with a session advisory lock, taken in one short
 * statement and held by the lock connection (db_lock_conn(), which never
 * runs a definition), not by a transaction: nothing stays open while
 * Mixpanel answers, several processes on several hosts still never send
 * one lane at once, and a process that dies (kill -9, a lost connection,
 * a server restart) lets its lanes go with its session. The lock is tried only on lanes with records (the subquery
 * filters first: a volatile condition is never pushed into it).
 */
static const char claim_sql[] =
	"SELECT array_agg(lane) FROM (SELECT l.lane"
	" FROM audsync.outbox_lanes l WHERE l.destination_id = $1"
	" AND EXISTS (SELECT 1 FROM audsync.outbox o"
	"  WHERE o.destination_id = l.destination_id AND o.lane = l.lane)"
	" ORDER BY l.lane) x"
	" WHERE pg_try_advisory_lock(" LANE_LOCK_CLASS ", " LANE_KEY "lane)";

static const char release_sql[] =
	"SELECT count(pg_advisory_unlock(" LANE_LOCK_CLASS ", " LANE_KEY "l))"
	" FROM unnest($2::int[]) l";

/* The pages are chosen by id first: the records column of the pages
 * not chosen is never read. */
static const char pages_sql[] =
	"SELECT id, lane, endpoint, records, coalesce(sync_id::text, ''),"
	" coalesce(run_id::text, '') FROM audsync.outbox WHERE id IN ("
	" SELECT id FROM (SELECT id, lane,"
	"  row_number() OVER (PARTITION BY lane ORDER BY id) AS rn"
	"  FROM audsync.outbox WHERE destination_id = $1"
	"  AND lane = ANY ($2::smallint[])) x"
	" WHERE rn <= " PAGES_PER_LANE_SQL " ORDER BY lane, id"
	" LIMIT " PAGES_SQL ") ORDER BY lane, id";

/* Claims free lanes with records: r->lanes is their list ("{1,5}"), or
 * NULL when there were none. */
static int claim_lanes(round *r, PGconn *conn, const char *dest_id, char *err,
		       size_t errlen)
{
	const char *p[1] = { dest_id };
	PGconn *lock = db_lock_conn(conn, err, errlen);
	PGresult *res;

	if (!lock)
		return -1;
	res = db_query(lock, "claim outbox lanes", claim_sql, 1, p, err,
		       errlen);
	if (!res)
		return -1;
	if (!PQgetisnull(res, 0, 0))
		r->lanes = alloc_strdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

/* Lets the lanes of r go. A failure is only logged: the locks go with
 * the session anyway, and the next claim of this session takes them. */
static void release_lanes(round *r, PGconn *conn, const char *dest_id)
{
	const char *p[2] = { dest_id, r->lanes };
	char err[AUDSYNC_ERR_LEN];
	PGconn *lock;

	if (!r->lanes)
		return;
	lock = db_lock_conn(conn, err, sizeof(err));
	if (!lock || db_exec(lock, "release outbox lanes", release_sql, 2, p,
			     err, sizeof(err)) != 0)
		log_warn("outbox lanes not released", "error", err);
}

/* Reads the first pages of the claimed lanes into r. */
static int read_pages(round *r, PGconn *conn, const char *dest_id, char *err,
		      size_t errlen)
{
	const char *p[2] = { dest_id, r->lanes };
	PGresult *res;
	int i;

	res = db_query(conn, "read outbox", pages_sql, 2, p, err, errlen);
	if (!res)
		return -1;
	r->n = PQntuples(res);
	r->pages = alloc_calloc((size_t)r->n + 1, sizeof(*r->pages));
	for (i = 0; i < r->n; i++)
		load_page(&r->pages[i], res, i);
	PQclear(res);
	return 0;
}

static void settle_answered(void *ud);

static int submit_round(round *r, mp_client *c, int mp_dest, char *err,
			size_t errlen)
{
	int i, j;

	for (i = 0; i < r->n; i++) {
		page *p = &r->pages[i];

		for (j = 0; j < p->n; j++) {
			uint64_t tag = ((uint64_t)i << 32) | (uint32_t)j;

			if (mp_client_submit(
				    c, mp_dest, (int)db_int(p->endpoint),
				    (uint32_t)db_int(p->lane), p->rec[j],
				    strlen(p->rec[j]), tag) == 0)
				continue;
			/* Larger than Mixpanel takes: reject it. */
			p->outcome[j] = MP_OUT_REJECTED;
			p->msg[j] = alloc_strdup(mp_client_error(c));
		}
	}
	if (mp_client_flush(c, on_result, settle_answered, r) < 0) {
		snprintf(err, errlen, "%s", mp_client_error(c));
		return -1;
	}
	return 0;
}

static int dead_letter(PGconn *conn, const char *dest_id, const page *p, int j,
		       char *err, size_t errlen)
{
	const char *v[7] = { dest_id,
			     p->sync_id[0] ? p->sync_id : NULL,
			     p->run_id[0] ? p->run_id : NULL,
			     p->lane,
			     p->endpoint,
			     p->rec[j],
			     p->msg[j] ? p->msg[j] : "rejected by Mixpanel" };

	return db_exec(conn, "dead letter",
		       "INSERT INTO audsync.dead_letters (destination_id,"
		       " sync_id, run_id, lane, endpoint, record, reason)"
		       " VALUES ($1, $2, $3, $4, $5, $6, $7)",
		       7, v, err, errlen);
}

/* Adds page id to done, the pages Mixpanel is done with: a bigint[]
 * literal that delete_pages() closes. */
static void add_done(buf *done, const char *id)
{
	buf_printf(done, "%s%s", done->len > 1 ? "," : "", id);
}

/* Deletes the pages of done (add_done()) in one statement, and empties
 * done. */
static int delete_pages(PGconn *conn, buf *done, char *err, size_t errlen)
{
	const char *v[1];
	int rc = 0;

	buf_putc(done, '}');
	v[0] = done->data;
	if (done->len > 2)
		rc = db_exec(conn, "settle outbox",
			     "DELETE FROM audsync.outbox"
			     " WHERE id = ANY ($1::bigint[])",
			     1, v, err, errlen);
	buf_reset(done);
	buf_putc(done, '{');
	return rc;
}

/* Keeps what is left of a page, or adds its id to done (a page Mixpanel
 * is done with, for settle_round() to delete with the others). */
static int settle_page(PGconn *conn, const char *dest_id, page *p,
		       outbox_stats *st, buf *done, char *err, size_t errlen)
{
	const char *last_error = NULL;
	char n_s[16];
	buf left;
	int j, kept = 0, rc = -1;

	buf_init(&left);
	for (j = 0; j < p->n; j++) {
		if (p->outcome[j] == MP_OUT_DELIVERED) {
			st->delivered++;
		} else if (p->outcome[j] == MP_OUT_REJECTED) {
			st->rejected++;
			if (j >= p->settled &&
			    dead_letter(conn, dest_id, p, j, err, errlen) != 0)
				goto out;
		} else {
			st->not_delivered++;
			if (kept++)
				buf_putc(&left, '\n');
			buf_puts(&left, p->rec[j]);
			if (p->msg[j])
				last_error = p->msg[j];
		}
	}
	if (p->settled == p->n) {
		rc = 0; /* deleted as Mixpanel answered (settle_answered) */
	} else if (kept == 0) {
		add_done(done, p->id);
		rc = 0;
	} else {
		const char *v[4] = { p->id, left.data, n_s, last_error };

		snprintf(n_s, sizeof(n_s), "%d", kept);
		rc = db_exec(conn, "settle outbox",
			     "UPDATE audsync.outbox SET records = $2, n = $3,"
			     " attempts = attempts + 1, last_error = $4"
			     " WHERE id = $1",
			     4, v, err, errlen);
	}
out:
	buf_free(&left);
	return rc;
}

/* Settles records [p->settled, p->upto) of p, every one delivered or
 * rejected: dead letters for the rejected, and the page added to done,
 * or left with the records after them. */
static int settle_prefix(PGconn *conn, const char *dest_id, const page *p,
			 buf *done, char *err, size_t errlen)
{
	const char *v[3] = { p->id, NULL, NULL };
	char n_s[16];
	buf rest;
	int j, rc;

	for (j = p->settled; j < p->upto; j++)
		if (p->outcome[j] == MP_OUT_REJECTED &&
		    dead_letter(conn, dest_id, p, j, err, errlen) != 0)
			return -1;
	if (p->upto == p->n) {
		add_done(done, p->id);
		return 0;
	}
	buf_init(&rest);
	for (j = p->upto; j < p->n; j++) {
		if (j > p->upto)
			buf_putc(&rest, '\n');
		buf_puts(&rest, p->rec[j]);
	}
	snprintf(n_s, sizeof(n_s), "%d", p->n - p->upto);
	v[1] = rest.data;
	v[2] = n_s;
	rc = db_exec(conn, "settle outbox",
		     "UPDATE audsync.outbox SET records = $2, n = $3"
		     " WHERE id = $1",
		     3, v, err, errlen);
	buf_free(&rest);
	return rc;
}

/*
 * The client's answered callback: what Mixpanel has just accepted or
 * rejected leaves the outbox now, in one short transaction, not at the
 * end of the round, so that a crash re-sends only what was in flight,
 * not every batch of the round. A page's records are answered in order
 * (one lane, one slot), so what is settled is a prefix of each page. A
 * failure is logged and leaves the rest to settle_round().
 */
static void settle_answered(void *ud)
{
	char err[AUDSYNC_ERR_LEN];
	round *r = ud;
	buf done;
	int i, any = 0;

	if (r->settle_failed)
		return;
	for (i = 0; i < r->n; i++) {
		page *p = &r->pages[i];

		for (p->upto = p->settled;
		     p->upto < p->n &&
		     p->outcome[p->upto] != MP_OUT_NOT_DELIVERED;
		     p->upto++)
			;
		any |= p->upto > p->settled;
	}
	if (!any)
		return;
	buf_init(&done);
	buf_putc(&done, '{');
	if (db_exec(r->conn, "settle outbox", "BEGIN", 0, NULL, err,
		    sizeof(err)) != 0)
		goto fail;
	for (i = 0; i < r->n; i++)
		if (r->pages[i].upto > r->pages[i].settled &&
		    settle_prefix(r->conn, r->dest_id, &r->pages[i], &done, err,
				  sizeof(err)) != 0)
			goto rollback;
	if (delete_pages(r->conn, &done, err, sizeof(err)) != 0 ||
	    db_exec(r->conn, "settle outbox", "COMMIT", 0, NULL, err,
		    sizeof(err)) != 0)
		goto rollback;
	for (i = 0; i < r->n; i++)
		r->pages[i].settled = r->pages[i].upto;
	buf_free(&done);
	return;
rollback:
	PQclear(PQexec(r->conn, "ROLLBACK"));
fail:
	buf_free(&done);
	r->settle_failed = 1;
	log_warn("outbox not settled as Mixpanel answered", "error", err);
}

/* Settles every page of r in one short transaction, after the flush:
 * what settle_answered() left (records not delivered, or all of a round
 * whose answered settle failed); the pages Mixpanel is done with go in
 * one statement. */
static int settle_round(round *r, PGconn *conn, const char *dest_id, char *err,
			size_t errlen)
{
	buf done;
	int i;

	buf_init(&done);
	buf_putc(&done, '{');
	if (db_exec(conn, "settle outbox", "BEGIN", 0, NULL, err, errlen) != 0)
		goto out;
	for (i = 0; i < r->n; i++)
		if (settle_page(conn, dest_id, &r->pages[i], &r->st, &done, err,
				errlen) != 0)
			goto fail;
	if (delete_pages(conn, &done, err, errlen) != 0 ||
	    db_exec(conn, "settle outbox", "COMMIT", 0, NULL, err, errlen) != 0)
		goto fail;
	buf_free(&done);
	return 0;
fail:
	PQclear(PQexec(conn, "ROLLBACK"));
out:
	buf_free(&done);
	return -1;
}

/*
 * One round: claim lanes, read their first pages, send them, settle what
 * Mixpanel said, let the lanes go. No transaction is open while the
 * client waits for Mixpanel. r->n is 0 when nothing was left to claim.
 */
static int deliver_round(round *r, PGconn *conn, mp_client *c, int mp_dest,
			 const char *dest_id, char *err, size_t errlen)
{
	int rc = -1;

	if (claim_lanes(r, conn, dest_id, err, errlen) != 0)
		return -1;
	if (!r->lanes)
		return 0;
	r->conn = conn;
	r->dest_id = dest_id;
	if (read_pages(r, conn, dest_id, err, errlen) == 0 &&
	    (r->n == 0 || submit_round(r, c, mp_dest, err, errlen) == 0) &&
	    settle_round(r, conn, dest_id, err, errlen) == 0)
		rc = 0;
	release_lanes(r, conn, dest_id);
	return rc;
}

/* Records queued in the lanes no other process is delivering right now
 * (no one else holds their lock): after the last round, what was not
 * delivered. */
static const char queued_sql[] =
	"SELECT coalesce(sum(o.n), 0) FROM audsync.outbox o"
	" WHERE o.destination_id = $1 AND NOT EXISTS (SELECT 1"
	"  FROM pg_locks k WHERE k.locktype = 'advisory'"
	"  AND k.classid = " LANE_LOCK_CLASS "::oid"
	"  AND k.objid = (" LANE_KEY "o.lane)::oid"
	"  AND k.objsubid = 2 AND k.granted"
	"  AND k.pid <> pg_backend_pid() AND k.database = (SELECT"
	"  oid FROM pg_database WHERE datname = current_database()))";

static int count_queued(long long *out, PGconn *conn, const char *dest_id,
			char *err, size_t errlen)
{
	const char *p[1] = { dest_id };
	PGresult *r;

	/* On the lock connection: its own lanes are not another's. */
	conn = db_lock_conn(conn, err, errlen);
	if (!conn)
		return -1;
	r = db_query(conn, "outbox size", queued_sql, 1, p, err, errlen);
	if (!r)
		return -1;
	*out = db_int(PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}

int outbox_deliver(outbox_stats *out, PGconn *conn, mp_client *c, int mp_dest,
		   int dest_id, volatile int *stop, char *err, size_t errlen)
{
	const struct timespec pause = { 0, 20 * 1000 * 1000 };
	char dest_s[16];
	long long left = 0;

	snprintf(dest_s, sizeof(dest_s), "%d", dest_id);
	while (!(stop && *stop)) {
		round r = { 0 };
		int rc, pages, progress;

		notify_watchdog();
		progress_tick();
		rc = deliver_round(&r, conn, c, mp_dest, dest_s, err, errlen);
		out->delivered += r.st.delivered;
		out->rejected += r.st.rejected;
		pages = r.n;
		progress = r.st.delivered + r.st.rejected > 0;
		round_free(&r);
		if (rc != 0)
			return rc;
		if (pages > 0 && !progress)
			break; /* stuck: what is left waits for next time */
		/* Refused credentials (401/403) stop the destination for
		 * the rest of this delivery, not only for this round's
		 * flush: what is left waits for next time. */
		if (mp_client_stopped(c, mp_dest))
			break;
		if (pages > 0)
			continue;
		/* Nothing to claim. Done, unless another process delivering
		 * beside this one let go of lanes between two of its rounds:
		 * then they are claimed again, a moment later. */
		if (count_queued(&left, conn, dest_s, err, errlen) != 0)
			return -1;
		if (left == 0)
			return 0;
		nanosleep(&pause, NULL);
	}
	if (count_queued(&left, conn, dest_s, err, errlen) != 0)
		return -1;
	out->not_delivered += left;
	return 0;
}
