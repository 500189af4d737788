/* mp_redact.h - keeps a destination's credentials out of every text */
#ifndef AUDSYNC_MP_REDACT_H
#define AUDSYNC_MP_REDACT_H

#include "audsync/buf.h"

#include <stddef.h>

/*
 * Appends text[0, len) to out with every occurrence of each word of
 * secrets (a NULL-terminated list; NULL or empty words are skipped) and
 * the value of an Authorization header replaced by "[redacted]".
 */
void mp_redact(buf *out, const char *text, size_t len,
	       const char *const *secrets);

/* Redacts the NUL-terminated text s of a cap-byte buffer in place; what
 * no longer fits is cut. */
void mp_redact_in_place(char *s, size_t cap, const char *const *secrets);

/* How much of url an error may quote, at most cap bytes: up to its
 * "://" when the part before its path holds an '@' (user:password@ or
 * token@), else all of it. Use as "%.*s". */
int mp_redact_url_len(const char *url, int cap);

/* base64 of "user:password", the form HTTP Basic sends: a new string
 * the caller frees. */
char *mp_redact_basic_form(const char *user, const char *password);

#endif
