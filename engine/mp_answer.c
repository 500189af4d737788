/* mp_answer.c - what an answer to a Mixpanel request means for its batch */
#include "audsync/mp_answer.h"

#include "audsync/alloc.h"

#include "audsync/buf.h"

#include <ctype.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mp_answer_one_line(char *out, size_t outlen, const char *s, size_t n)
{
	size_t i, o = 0;

	while (n > 0 && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	for (i = 0; i < n && i < 200 && o + 1 < outlen; i++) {
		unsigned char ch = (unsigned char)s[i];

		out[o++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
}

/* "HTTP 429: <Mixpanel's error, or the start of the body>", with what
 * (when not NULL) saying why the answer cannot be taken as it stands. */
static void answer_error(mp_answer *a, json_object *root, const char *body,
			 size_t len, const char *what)
{
	json_object *e = NULL;
	char text[201];

	if (json_object_is_type(root, json_type_object) &&
	    json_object_object_get_ex(root, "error", &e) &&
	    json_object_is_type(e, json_type_string)) {
		body = json_object_get_string(e);
		len = strlen(body);
	}
	mp_answer_one_line(text, sizeof(text), body ? body : "",
			   body ? len : 0);
	snprintf(a->error, sizeof(a->error), "HTTP %ld: %s%s%s", a->status,
		 what ? what : "", what && text[0] ? ": " : "",
		 text[0] ? text : (what ? "" : "no answer text"));
}

/* The body as one JSON value and nothing after it, or NULL. */
static json_object *parse_whole(const char *body, size_t len)
{
	json_tokener *tok;
	json_object *root = NULL;
	size_t end;

	if (!body || len == 0 || len > INT32_MAX)
		return NULL;
	tok = json_tokener_new();
	if (!tok)
		return NULL;
	root = json_tokener_parse_ex(tok, body, (int)len);
	end = json_tokener_get_parse_end(tok);
	while (root && end < len && isspace((unsigned char)body[end]))
		end++;
	if (root && end != len) {
		json_object_put(root);
		root = NULL;
	}
	json_tokener_free(tok);
	return root;
}

/* An integer member of o, as int64; 0 when absent or of another type. */
static int get_int(json_object *o, const char *key, int64_t *out)
{
	json_object *v = NULL;

	if (!json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_int))
		return 0;
	*out = json_object_get_int64(v);
	return 1;
}

static const char *get_str(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* Reads one failed record; 0 when its index names a record of the
 * batch, -1 when it does not (then nothing is added). */
static int add_failure(mp_answer *a, json_object *fr, size_t nrecords)
{
	mp_failure *f = &a->failures[a->nfailures];
	const char *field, *msg;
	int64_t idx;
	buf m;

	if (!json_object_is_type(fr, json_type_object) ||
	    !get_int(fr, "index", &idx) || idx < 0 || (uint64_t)idx >= nrecords)
		return -1;
	field = get_str(fr, "field");
	msg = get_str(fr, "message");
	buf_init(&m);
	if (field && *field) {
		buf_puts(&m, field);
		buf_puts(&m, ": ");
	}
	buf_puts(&m, msg ? msg : "rejected by Mixpanel");
	f->index = (size_t)idx;
	f->message = buf_steal(&m);
	a->nfailures++;
	return 0;
}

/* The records a list of failures names, each counted once. */
static size_t distinct_failed(const mp_answer *a, size_t nrecords)
{
	unsigned char *seen = alloc_calloc(nrecords, 1);
	size_t i, n = 0;

	for (i = 0; i < a->nfailures; i++) {
		n += !seen[a->failures[i].index];
		seen[a->failures[i].index] = 1;
	}
	free(seen);
	return n;
}

/*
 * failed_records of Mixpanel's 400: 1 when it lists failures that all
 * name records of the batch (and num_records_imported, when given,
 * counts the others), 0 when there is no list, -1 when the list cannot
 * be trusted (nothing kept then).
 */
static int import_failures(mp_answer *a, json_object *root, size_t nrecords)
{
	json_object *arr = NULL;
	int64_t imported;
	size_t i, n;

	if (!json_object_object_get_ex(root, "failed_records", &arr))
		return 0;
	if (!json_object_is_type(arr, json_type_array))
		return -1;
	n = json_object_array_length(arr);
	if (n == 0)
		return 0;
	a->failures = alloc_calloc(n, sizeof(*a->failures));
	for (i = 0; i < n; i++)
		if (add_failure(a, json_object_array_get_idx(arr, i),
				nrecords) != 0)
			return -1;
	if (get_int(root, "num_records_imported", &imported) &&
	    (imported < 0 ||
	     (uint64_t)imported != nrecords - distinct_failed(a, nrecords)))
		return -1;
	return 1;
}

static void classify_import(mp_answer *a, json_object *root, const char *body,
			    size_t len, size_t nrecords)
{
	int64_t code = 0, imported = -1;
	int mine = get_int(root, "code", &code) && code == a->status;
	int f;

	if (a->status >= 200 && a->status < 300) {
		if (mine && code == 200 &&
		    get_int(root, "num_records_imported", &imported) &&
		    imported >= 0 && (uint64_t)imported == nrecords) {
			a->action = MP_ACT_DELIVERED;
			return;
		}
		a->action = MP_ACT_RETRY;
		answer_error(a, root, body, len,
			     mine && code == 200
				     ? "Mixpanel's count of imported records "
				       "does not match the batch"
				     : "not Mixpanel's answer");
		return;
	}
	if (a->status != 400) {
		a->action = MP_ACT_STOP_DEST;
		answer_error(a, root, body, len, NULL);
		return;
	}
	f = mine ? import_failures(a, root, nrecords) : -1;
	if (f < 0) {
		mp_answer_free(a); /* what import_failures kept */
		a->action = MP_ACT_RETRY;
		answer_error(a, root, body, len,
			     mine ? "failed_records that name no record of "
				    "the batch"
				  : "not Mixpanel's answer");
		return;
	}
	a->action = f > 0 ? MP_ACT_PARTIAL : MP_ACT_REJECTED;
	answer_error(a, root, body, len, NULL);
}

/* The verdict of a verbose /engage or /groups answer: 1, 0, or -1 when
 * the body is not {"status":0|1,...}. */
static int engage_verdict(json_object *root, const char *body, size_t len)
{
	json_object *st = NULL;
	const char *s;

	if (json_object_is_type(root, json_type_object)) {
		if (!json_object_object_get_ex(root, "status", &st))
			return -1;
		if (json_object_is_type(st, json_type_int))
			return json_object_get_int64(st) == 1	? 1
			       : json_object_get_int64(st) == 0 ? 0
								: -1;
		if (!json_object_is_type(st, json_type_string))
			return -1;
		s = json_object_get_string(st);
		return strcmp(s, "1") == 0 ? 1 : strcmp(s, "0") == 0 ? 0 : -1;
	}
	/* a long error list cut at the answer cap is no JSON, but still 0 */
	if (!root && body && len > 11 &&
	    strncmp(body, "{\"status\":0,", 12) == 0)
		return 0;
	return -1;
}

static void classify_engage(mp_answer *a, json_object *root, const char *body,
			    size_t len, size_t nrecords)
{
	int v = -1;

	if (a->status == 200 || a->status == 400)
		v = engage_verdict(root, body, len);
	if (v == 1 && a->status == 200) {
		a->action = MP_ACT_DELIVERED;
		return;
	}
	if (v == 0) {
		a->action = nrecords > 1 ? MP_ACT_SPLIT : MP_ACT_REJECTED;
		answer_error(a, root, body, len, NULL);
	} else if ((a->status >= 200 && a->status < 300) || a->status == 400) {
		a->action = MP_ACT_RETRY;
		answer_error(a, root, body, len, "not Mixpanel's answer");
	} else {
		a->action = MP_ACT_STOP_DEST;
		answer_error(a, root, body, len, NULL);
	}
}

void mp_answer_classify(mp_answer *out, mp_endpoint ep, const char *transport,
			long status, const char *body, size_t len,
			size_t nrecords)
{
	json_object *root = NULL;

	memset(out, 0, sizeof(*out));
	if (transport) {
		out->action = MP_ACT_RETRY;
		mp_answer_one_line(out->error, sizeof(out->error), transport,
				   strlen(transport));
		return;
	}
	out->status = status;
	root = parse_whole(body, len);
	if (status == 401 || status == 403) {
		out->action = MP_ACT_STOP_DEST;
	} else if (status == 413) {
		out->action = nrecords > 1 ? MP_ACT_SPLIT : MP_ACT_REJECTED;
	} else if (status == 408 || status == 429 || status >= 500) {
		out->action = MP_ACT_RETRY;
	} else if (ep == MP_EP_IMPORT) {
		classify_import(out, root, body, len, nrecords);
		goto out;
	} else {
		classify_engage(out, root, body, len, nrecords);
		goto out;
	}
	answer_error(out, root, body, len, NULL);
out:
	json_object_put(root);
}

void mp_answer_free(mp_answer *a)
{
	size_t i;

	if (!a)
		return;
	for (i = 0; i < a->nfailures; i++)
		free(a->failures[i].message);
	free(a->failures);
	a->failures = NULL;
	a->nfailures = 0;
}

void mp_answer_stop_reason(char *out, size_t outlen, const mp_answer *a,
			   const char *name, mp_endpoint ep)
{
	if (a->status == 401 || a->status == 403)
		snprintf(out, outlen,
			 "destination %s: Mixpanel refused the credentials "
			 "(HTTP %ld): check the API secret / service account",
			 name, a->status);
	else
		snprintf(out, outlen,
			 "destination %s: unexpected answer from %s (%s): "
			 "check api_base",
			 name, mp_endpoint_path(ep), a->error);
}

const char *mp_answer_action_name(mp_action action)
{
	static const char *const names[] = { "delivered", "partial", "rejected",
					     "split",	  "retry",   "stop",
					     "unsent" };

	if ((unsigned)action >= sizeof(names) / sizeof(names[0]))
		return "?";
	return names[action];
}

void mp_answer_redact(mp_answer *a, const char *const *secrets)
{
	size_t i;
	buf b;

	mp_redact_in_place(a->error, sizeof(a->error), secrets);
	for (i = 0; i < a->nfailures; i++) {
		buf_init(&b);
		mp_redact(&b, a->failures[i].message,
			  strlen(a->failures[i].message), secrets);
		free(a->failures[i].message);
		a->failures[i].message = buf_steal(&b);
	}
}
