/* mp_answer.h - what an answer to a Mixpanel request means for its batch */
#ifndef AUDSYNC_MP_ANSWER_H
#define AUDSYNC_MP_ANSWER_H

#include "audsync/errbuf.h"
#include "audsync/mp_client.h"
#include "audsync/mp_redact.h"

#include <stddef.h>

/*
 * Only Mixpanel's own answer accepts or rejects records (DESIGN §7):
 * /import on {"code":200,"num_records_imported":N} with N the records sent,
 * or on a 400 {"code":400,...,"failed_records":[...]} whose every index is
 * an integer of the batch; /engage and /groups on {"status":1}. Anything
 * else that came back (a proxy's page, an empty body, a count that does
 * not match) is a transport failure: retried, then kept queued.
 */

/* What to do with the records of one answered request. */
typedef enum mp_action {
	MP_ACT_DELIVERED = 0, /* all accepted */
	MP_ACT_PARTIAL = 1,   /* failures[] rejected, the rest accepted */
	MP_ACT_REJECTED = 2,  /* all rejected for good with error */
	MP_ACT_SPLIT = 3,     /* send the halves (413, engage status 0) */
	MP_ACT_RETRY = 4,     /* back off and send again, then keep queued */
	MP_ACT_STOP_DEST = 5, /* 401/403 and the like: stop the destination */
	MP_ACT_UNSENT = 6     /* not sent (a sink's write failed): the lane's
				 records stay queued, not retried */
} mp_action;

typedef struct mp_failure {
	size_t index;  /* in the batch, always < its record count */
	char *message; /* "field: message" */
} mp_failure;

typedef struct mp_answer {
	mp_action action;
	long status; /* the HTTP status; 0 when no answer came */
	char error
		[AUDSYNC_ERR_LEN]; /* one line, for every action but DELIVERED */
	mp_failure *failures;
	size_t nfailures;
} mp_answer;

/*
 * Classifies an answer. transport: the libcurl error text, or NULL when
 * an HTTP answer came; status: its HTTP status; body[0, len): its body
 * (need not be NUL-terminated); nrecords: the batch's record count (>= 1).
 * Pure: reads nothing else. Fills *out; free it with mp_answer_free().
 */
void mp_answer_classify(mp_answer *out, mp_endpoint ep, const char *transport,
			long status, const char *body, size_t len,
			size_t nrecords);
void mp_answer_free(mp_answer *a); /* accepts NULL */

/* Why a MP_ACT_STOP_DEST answer to a request to ep stops destination
 * name, in one line: refused credentials (401, 403), or an answer that
 * is not Mixpanel's (check api_base). */
void mp_answer_stop_reason(char *out, size_t outlen, const mp_answer *a,
			   const char *name, mp_endpoint ep);

/* The action's name for logs ("delivered", "retry", ...). Static. */
const char *mp_answer_action_name(mp_action action);

/* Removes every word of secrets (mp_redact()) from a's error and
 * failure messages: a server may quote a request's credentials back. */
void mp_answer_redact(mp_answer *a, const char *const *secrets);

/* Copies at most 200 bytes of s[0, n) to out as one printable line:
 * control characters become spaces, ends trimmed. */
void mp_answer_one_line(char *out, size_t outlen, const char *s, size_t n);

#endif
