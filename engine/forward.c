/* forward.c - Segment-spec messages into the outbox (audsync forward)
 *
 * segment_map.c decides the calls; this file reads the messages (lines of
 * a file, or rows of audsync.inbound), keeps each message forwarded once
 * per destination (audsync.forwarded) and queues the calls in the outbox
 * in the same transaction. Delivery is the shared one (deliver_outboxes).
 */
#include "audsync/forward.h"

#include "audsync/alloc.h"
#include "audsync/config.h"
#include "audsync/db.h"
#include "audsync/errbuf.h"
#include "audsync/log.h"
#include "audsync/outbox.h"
#include "audsync/segment_map.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

/* Messages, and bytes of records, queued in one transaction at most. */
#define BATCH_MESSAGES 5000
#define BATCH_BYTES    (8 * 1024 * 1024)
/* Inbound rows claimed at once. */
#define INBOUND_BATCH 1000
#define STR_(x)	      #x
#define STR(x)	      STR_(x)

/* The messageIds of a batch not yet forwarded to the destination, by
 * their 1-based position in $2 (the first of repeated ones). */
static const char dedupe_sql[] =
	"WITH input AS (SELECT DISTINCT ON (m) m, i"
	"  FROM unnest($2::text[]) WITH ORDINALITY AS u(m, i) ORDER BY m, i),"
	" fresh AS (INSERT INTO audsync.forwarded (destination_id, message_id)"
	"  SELECT $1, m FROM input ON CONFLICT DO NOTHING"
	"  RETURNING message_id)"
	" SELECT input.i FROM input JOIN fresh ON fresh.message_id = input.m";

typedef struct fw_call {
	mp_endpoint ep;
	size_t key, rec, len; /* offsets into the batch's data */
} fw_call;

typedef struct fw_msg {
	size_t id; /* messageId, offset into data */
	int first, n;
	int in_part; /* sent without a part (segment_calls.reason) */
} fw_msg;

/* Mapped messages waiting for their transaction. */
typedef struct batch {
	buf data;
	fw_call *calls;
	int ncalls, capcalls;
	fw_msg *msgs;
	int nmsgs, capmsgs;
	unsigned char *fresh;
} batch;

/* A destination ready to forward to. */
typedef struct fw_dest {
	int id;
	char *name;
	segment_settings s;
} fw_dest;

static void *grow(void *p, int *cap, int need, size_t size)
{
	if (need <= *cap)
		return p;
	*cap = *cap ? *cap * 2 : 256;
	if (*cap < need)
		*cap = need;
	p = alloc_realloc(p, (size_t)*cap * size);
	return p;
}

static void batch_reset(batch *b)
{
	buf_reset(&b->data);
	b->ncalls = 0;
	b->nmsgs = 0;
}

static void batch_free(batch *b)
{
	buf_free(&b->data);
	free(b->calls);
	free(b->msgs);
	free(b->fresh);
}

/* Copies the calls of one mapped message into b. */
static void batch_add(batch *b, const segment_calls *c)
{
	fw_msg *m;
	int i;

	b->msgs = grow(b->msgs, &b->capmsgs, b->nmsgs + 1, sizeof(*b->msgs));
	b->calls = grow(b->calls, &b->capcalls, b->ncalls + c->n,
			sizeof(*b->calls));
	m = &b->msgs[b->nmsgs++];
	m->id = b->data.len;
	buf_append(&b->data, segment_calls_message_id(c),
		   strlen(segment_calls_message_id(c)) + 1);
	m->first = b->ncalls;
	m->n = c->n;
	m->in_part = c->reason[0] != '\0';
	for (i = 0; i < c->n; i++) {
		fw_call *k = &b->calls[b->ncalls++];
		const char *key = segment_call_key(c, i), *rec;
		size_t len;

		rec = segment_call_record(c, i, &len);
		k->ep = c->call[i].ep;
		k->key = b->data.len;
		buf_append(&b->data, key, strlen(key) + 1);
		k->rec = b->data.len;
		k->len = len;
		buf_append(&b->data, rec, len);
		buf_putc(&b->data, '\0');
	}
}

/* The batch's messageIds as a PostgreSQL text[] literal. */
static void id_array(buf *out, const batch *b)
{
	int i;

	for (i = 0; i < b->nmsgs; i++)
		buf_array_item(out, b->data.data + b->msgs[i].id);
	buf_array_close(out);
}

/* Marks b->fresh[i] for the messages not forwarded before, recording
 * them as forwarded (in the caller's transaction). */
static int mark_fresh(batch *b, PGconn *conn, const fw_dest *d, char *err,
		      size_t errlen)
{
	char id[16];
	const char *p[2] = { id, NULL };
	PGresult *r;
	buf ids;
	int i, n;

	free(b->fresh);
	b->fresh = alloc_calloc((size_t)b->nmsgs + 1, 1);
	snprintf(id, sizeof(id), "%d", d->id);
	buf_init(&ids);
	id_array(&ids, b);
	p[1] = ids.data;
	r = db_query(conn, "record forwarded messages", dedupe_sql, 2, p, err,
		     errlen);
	buf_free(&ids);
	if (!r)
		return -1;
	n = PQntuples(r);
	for (i = 0; i < n; i++) {
		long long at = db_int(PQgetvalue(r, i, 0));

		if (at >= 1 && at <= b->nmsgs)
			b->fresh[at - 1] = 1;
	}
	PQclear(r);
	return 0;
}

/* Queues the calls of the batch's fresh messages, in the caller's
 * transaction. */
static int queue_batch(forward_totals *t, batch *b, PGconn *conn,
		       const fw_dest *d, char *err, size_t errlen)
{
	outbox_writer *w[3] = { NULL, NULL, NULL };
	long long n;
	int i, j, rc = -1;

	if (b->nmsgs == 0)
		return 0;
	if (mark_fresh(b, conn, d, err, errlen) != 0)
		return -1;
	for (i = 0; i < b->nmsgs; i++) {
		const fw_msg *m = &b->msgs[i];

		if (!b->fresh[i]) {
			t->duplicates++;
			continue;
		}
		t->queued++;
		t->in_part += m->in_part;
		for (j = m->first; j < m->first + m->n; j++) {
			const fw_call *k = &b->calls[j];

			if (!w[k->ep])
				w[k->ep] =
					outbox_writer_open(conn, d->id, d->name,
							   0, 0, k->ep, NULL);
			if (outbox_writer_add(w[k->ep], b->data.data + k->key,
					      b->data.data + k->rec, k->len,
					      err, errlen) != 0)
				goto out;
		}
	}
	for (i = 0; i < 3; i++) {
		if (w[i] && outbox_writer_finish(w[i], &n, err, errlen) != 0)
			goto out;
		t->calls += w[i] ? n : 0;
	}
	rc = 0;
out:
	for (i = 0; i < 3; i++)
		outbox_writer_close(w[i]);
	return rc;
}

/* Adds what a committed transaction counted to the run's totals. */
static void totals_add(forward_totals *t, const forward_totals *add)
{
	t->messages += add->messages;
	t->queued += add->queued;
	t->in_part += add->in_part;
	t->skipped += add->skipped;
	t->failed += add->failed;
	t->duplicates += add->duplicates;
	t->calls += add->calls;
}

/* One transaction: the batch's calls and its messageIds. */
static int commit_batch(forward_totals *t, batch *b, PGconn *conn,
			const fw_dest *d, char *err, size_t errlen)
{
	forward_totals add = { 0 };

	if (b->nmsgs == 0)
		return 0;
	if (db_exec(conn, "forward", "BEGIN", 0, NULL, err, errlen) != 0)
		return -1;
	if (queue_batch(&add, b, conn, d, err, errlen) != 0 ||
	    db_exec(conn, "forward", "COMMIT", 0, NULL, err, errlen) != 0) {
		PQclear(PQexec(conn, "ROLLBACK"));
		return -1;
	}
	totals_add(t, &add);
	batch_reset(b);
	return 0;
}

/* ---- destinations ---------------------------------------------------------- */

static void dest_free(fw_dest *d)
{
	free(d->name);
	segment_settings_free(&d->s);
	memset(d, 0, sizeof(*d));
}

/* Fills d from a loaded destination; -1 with err set when it cannot
 * take forwarded messages. */
static int dest_from_def(fw_dest *d, const dest_def *def, char *err,
			 size_t errlen)
{
	json_object *o;
	int rc;

	memset(d, 0, sizeof(*d));
	if (def->problem) {
		snprintf(err, errlen, "%s", def->problem);
		return -1;
	}
	o = json_tokener_parse(def->settings ? def->settings : "{}");
	rc = segment_settings_parse(&d->s, o, def->project_token,
				    def->use_people, err, errlen);
	json_object_put(o);
	if (rc != 0)
		return -1;
	d->id = def->id;
	d->name = alloc_strdup(def->name);
	return 0;
}

/* The destination named (or the only one); -1 with err set, or
 * FORWARD_EUSAGE when the command line must say which one. */
static int dest_open(fw_dest *d, PGconn *conn, const char *name, char *err,
		     size_t errlen)
{
	sync_list l;
	int rc = -1;

	if (config_load_destinations(&l, conn, name, err, errlen) != 0)
		return -1;
	if (l.ndests == 0 && name)
		snprintf(err, errlen, "no destination is named %s", name);
	else if (l.ndests == 0)
		snprintf(err, errlen, "no destination exists to forward to");
	else if (l.ndests > 1) {
		snprintf(err, errlen,
			 "%d destinations exist: say which one with "
			 "--destination NAME",
			 l.ndests);
		rc = FORWARD_EUSAGE;
	} else {
		rc = dest_from_def(d, &l.dests[0], err, errlen);
	}
	config_free(&l);
	return rc;
}

/* ---- lines ------------------------------------------------------------------- */

/*
 * Reads one line into line (without its '\n'), keeping at most cap bytes;
 * *len is its whole length and *nul is set when it holds a NUL byte
 * (byte by byte: fgets() and strlen() would end the line at the NUL and
 * glue the next one to it). Returns 1, or 0 at the end of in, or -1 on a
 * read error.
 */
static int read_line(buf *line, size_t *len, int *nul, FILE *in, size_t cap)
{
	int c, e, any = 0;

	buf_reset(line);
	*len = 0;
	*nul = 0;
	flockfile(in);
	for (;;) {
		c = getc_unlocked(in);
		if (c == EOF)
			break;
		any = 1;
		if (c == '\n')
			break;
		*nul |= c == '\0';
		if (line->len < cap)
			buf_putc(line, (char)c);
		(*len)++;
	}
	e = errno; /* for the caller's message */
	funlockfile(in);
	errno = e;
	if (c == EOF && ferror(in))
		return -1;
	return any;
}

static void report(const char *what, long long where, const char *reason)
{
	log_warn("message not forwarded", LOG_INT(what, where), "reason",
		 reason);
}

/* Maps one message into b, counting it in t. */
static void take(forward_totals *t, batch *b, segment_calls *c,
		 const fw_dest *d, const char *text, size_t len,
		 const char *what, long long where)
{
	segment_result r = segment_map_text(c, text, len, &d->s);

	t->messages++;
	if (r == SEGMENT_MAPPED) {
		if (c->reason[0])
			log_warn("message forwarded in part",
				 LOG_INT(what, where), "reason", c->reason);
		batch_add(b, c);
		return;
	}
	if (r == SEGMENT_SKIPPED) {
		t->skipped++;
		log_debug("message skipped", LOG_INT(what, where), "reason",
			  c->reason);
		return;
	}
	t->failed++;
	report(what, where, c->reason);
}

/* Counts and reports a message refused before it is mapped. */
static void refuse(forward_totals *t, const char *what, long long where,
		   const char *reason)
{
	t->messages++;
	t->failed++;
	report(what, where, reason);
}

static int blank(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return 0;
	return 1;
}

int forward_stream(forward_totals *out, int *eof, long long *line, PGconn *conn,
		   FILE *in, const char *destination, long long max_messages,
		   char *err, size_t errlen)
{
	fw_dest d;
	batch b = { 0 };
	segment_calls c;
	buf text;
	size_t len;
	long long taken = 0;
	int r = 1, rc = -1, nul;

	*eof = 0;
	rc = dest_open(&d, conn, destination, err, errlen);
	if (rc != 0)
		return rc;
	rc = -1;
	buf_init(&text);
	buf_init(&b.data);
	segment_calls_init(&c);
	while (max_messages <= 0 || taken < max_messages) {
		r = read_line(&text, &len, &nul, in, SEGMENT_MAX_MESSAGE + 1);
		if (r <= 0)
			break;
		(*line)++;
		if (blank(text.data ? text.data : "", text.len) &&
		    len == text.len)
			continue;
		taken++;
		/* A line over the cap is refused on its whole length. */
		if (nul)
			refuse(out, "line", *line,
			       "the line holds a NUL byte, which JSON text "
			       "never does (in a string it is written "
			       "\\u0000)");
		else
			take(out, &b, &c, &d, text.data,
			     len > text.len ? len : text.len, "line", *line);
		if ((b.nmsgs >= BATCH_MESSAGES || b.data.len >= BATCH_BYTES) &&
		    commit_batch(out, &b, conn, &d, err, errlen) != 0)
			goto done;
	}
	if (r < 0) {
		snprintf(err, errlen,
			 "reading the messages failed at line %lld: %s",
			 *line + 1, strerror(errno));
		goto done;
	}
	if (commit_batch(out, &b, conn, &d, err, errlen) != 0)
		goto done;
	*eof = r == 0;
	rc = 0;
done:
	buf_free(&text);
	batch_free(&b);
	segment_calls_free(&c);
	dest_free(&d);
	return rc;
}

/* ---- audsync.inbound ----------------------------------------------------------- */

static const char claim_sql[] =
	"SELECT id, message::text FROM audsync.inbound WHERE destination = $1"
	" ORDER BY id LIMIT " STR(INBOUND_BATCH) " FOR UPDATE SKIP LOCKED";

static const char reject_sql[] =
	"INSERT INTO audsync.inbound_rejected (id, destination, message,"
	" received_at, reason)"
	" SELECT i.id, i.destination, i.message, i.received_at, x.reason"
	" FROM unnest($1::bigint[], $2::text[]) AS x(id, reason)"
	" JOIN audsync.inbound i ON i.id = x.id";

static const char delete_sql[] =
	"DELETE FROM audsync.inbound WHERE id = ANY($1::bigint[])";

/* The claimed rows: every id (to delete), and the rejected ones with
 * their reasons. */
typedef struct claimed {
	buf all, bad_ids, bad_reasons;
} claimed;

/* Maps the claimed rows of r into b; rows that cannot be mapped are
 * logged and listed in k. */
static void take_rows(forward_totals *t, batch *b, claimed *k, segment_calls *c,
		      const fw_dest *d, const PGresult *r)
{
	int i, n = PQntuples(r);

	for (i = 0; i < n; i++) {
		const char *id = PQgetvalue(r, i, 0);
		long long failed = t->failed;

		buf_array_item(&k->all, id);
		take(t, b, c, d, PQgetvalue(r, i, 1),
		     (size_t)PQgetlength(r, i, 1), "inbound_id", db_int(id));
		if (t->failed == failed)
			continue;
		buf_array_item(&k->bad_ids, id);
		buf_array_item(&k->bad_reasons, c->reason);
	}
}

/* The end of a drained batch: rejected rows kept, claimed rows gone. */
static int settle_rows(PGconn *conn, claimed *k, char *err, size_t errlen)
{
	const char *p[2];

	buf_array_close(&k->all);
	buf_array_close(&k->bad_ids);
	buf_array_close(&k->bad_reasons);
	p[0] = k->bad_ids.data;
	p[1] = k->bad_reasons.data;
	if (k->bad_ids.len > 2 && db_exec(conn, "keep rejected inbound rows",
					  reject_sql, 2, p, err, errlen) != 0)
		return -1;
	p[0] = k->all.data;
	return db_exec(conn, "delete forwarded inbound rows", delete_sql, 1, p,
		       err, errlen);
}

/* One transaction over up to INBOUND_BATCH rows of d. *n is the number
 * claimed. */
static int drain_batch(forward_totals *t, int *n, PGconn *conn,
		       const fw_dest *d, batch *b, segment_calls *c, char *err,
		       size_t errlen)
{
	const char *p[1] = { d->name };
	forward_totals add = { 0 };
	claimed k;
	PGresult *r = NULL;
	int rc = -1;

	buf_init(&k.all);
	buf_init(&k.bad_ids);
	buf_init(&k.bad_reasons);
	batch_reset(b);
	*n = 0;
	if (db_exec(conn, "forward inbound", "BEGIN", 0, NULL, err, errlen) !=
	    0)
		goto out;
	r = db_query(conn, "claim inbound rows", claim_sql, 1, p, err, errlen);
	if (!r)
		goto rollback;
	*n = PQntuples(r);
	take_rows(&add, b, &k, c, d, r);
	if (queue_batch(&add, b, conn, d, err, errlen) != 0 ||
	    (*n > 0 && settle_rows(conn, &k, err, errlen) != 0) ||
	    db_exec(conn, "forward inbound", "COMMIT", 0, NULL, err, errlen) !=
		    0)
		goto rollback;
	totals_add(t, &add);
	rc = 0;
	goto out;
rollback:
	PQclear(PQexec(conn, "ROLLBACK"));
out:
	PQclear(r);
	buf_free(&k.all);
	buf_free(&k.bad_ids);
	buf_free(&k.bad_reasons);
	return rc;
}

static int drain_dest(forward_totals *t, PGconn *conn, const dest_def *def,
		      volatile sig_atomic_t *stop, char *err, size_t errlen)
{
	fw_dest d;
	batch b = { 0 };
	segment_calls c;
	char why[AUDSYNC_ERR_LEN];
	int n = 1, rc = 0;

	if (dest_from_def(&d, def, why, sizeof(why)) != 0) {
		log_warn("inbound rows held: destination misconfigured",
			 "destination", def->name, "error", why);
		return 0;
	}
	buf_init(&b.data);
	segment_calls_init(&c);
	while (rc == 0 && n > 0 && !(stop && *stop))
		rc = drain_batch(t, &n, conn, &d, &b, &c, err, errlen);
	batch_free(&b);
	segment_calls_free(&c);
	dest_free(&d);
	return rc;
}

/* Rows addressed to a destination no row of audsync.destinations names:
 * they wait for it (README), and a loader's typo would wait forever. */
static const char orphans_sql[] =
	"SELECT i.destination, count(*) FROM audsync.inbound i"
	" WHERE NOT EXISTS (SELECT 1 FROM audsync.destinations d"
	" WHERE d.name = i.destination)"
	" GROUP BY i.destination ORDER BY i.destination";

static int warn_orphans(PGconn *conn, char *err, size_t errlen)
{
	PGresult *r = db_query(conn, "inbound rows held", orphans_sql, 0, NULL,
			       err, errlen);
	int i;

	if (!r)
		return -1;
	for (i = 0; i < PQntuples(r); i++)
		log_warn("inbound rows held: no such destination",
			 "destination", PQgetvalue(r, i, 0), "rows",
			 PQgetvalue(r, i, 1));
	PQclear(r);
	return 0;
}

int forward_drain_inbound(forward_totals *out, PGconn *conn,
			  const char *destination, volatile sig_atomic_t *stop,
			  char *err, size_t errlen)
{
	sync_list l;
	int i, rc = 0;

	if (config_load_destinations(&l, conn, destination, err, errlen) != 0)
		return -1;
	if (l.ndests == 0 && destination) {
		snprintf(err, errlen, "no destination is named %s",
			 destination);
		rc = -1;
	}
	for (i = 0; i < l.ndests && rc == 0; i++)
		rc = drain_dest(out, conn, &l.dests[i], stop, err, errlen);
	config_free(&l);
	if (rc == 0 && !destination)
		rc = warn_orphans(conn, err, errlen);
	return rc;
}
