/* mp_redact.c - keeps a destination's credentials out of every text */
#include "audsync/mp_redact.h"

#include "audsync/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char mark[] = "[redacted]";

/* Case-insensitive search of needle in s[0, n). */
static const char *find_ci(const char *s, size_t n, const char *needle)
{
	size_t k = strlen(needle), i;

	for (i = 0; k <= n && i <= n - k; i++) {
		if (strncasecmp(s + i, needle, k) == 0)
			return s + i;
	}
	return NULL;
}

/* The length of the word of secrets that starts at p (within n bytes),
 * the longest when several do; 0 when none. */
static size_t secret_at(const char *p, size_t n, const char *const *secrets)
{
	size_t best = 0, k;

	for (; secrets && *secrets; secrets++) {
		k = strlen(*secrets);
		if (k > 0 && k <= n && k > best && memcmp(p, *secrets, k) == 0)
			best = k;
	}
	return best;
}

void mp_redact(buf *out, const char *text, size_t len,
	       const char *const *secrets)
{
	const char *p = text, *end = text + len;

	buf_reserve(out, len);
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *auth, *stop;
		size_t k;

		eol = eol ? eol + 1 : end;
		auth = find_ci(p, (size_t)(eol - p), "authorization:");
		stop = auth ? auth + strlen("authorization:") : eol;
		while (p < stop) {
			k = secret_at(p, (size_t)(stop - p), secrets);
			if (k > 0) {
				buf_puts(out, mark);
				p += k;
			} else {
				buf_putc(out, *p++);
			}
		}
		if (auth) {
			buf_putc(out, ' ');
			buf_puts(out, mark);
			/* keep the line end the header had */
			while (eol > p && (eol[-1] == '\n' || eol[-1] == '\r'))
				eol--;
			p = eol;
		}
	}
}

void mp_redact_in_place(char *s, size_t cap, const char *const *secrets)
{
	buf b;

	buf_init(&b);
	mp_redact(&b, s, strlen(s), secrets);
	/* cut after redaction: a cut never leaves a secret's head */
	snprintf(s, cap, "%s", b.data ? b.data : "");
	buf_free(&b);
}

char *mp_redact_basic_form(const char *user, const char *password)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrst"
		"uvwxyz0123456789+/";
	size_t ul = strlen(user), pl = strlen(password), n = ul + 1 + pl, i,
	       o = 0;
	unsigned char *in = alloc_calloc(1, n + 1);
	char *out = alloc_calloc(1, 4 * ((n + 2) / 3) + 1);

	memcpy(in, user, ul);
	in[ul] = ':';
	memcpy(in + ul + 1, password, pl);
	for (i = 0; i < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16;

		v |= i + 1 < n ? (unsigned)in[i + 1] << 8 : 0;
		v |= i + 2 < n ? in[i + 2] : 0;
		out[o++] = b64[(v >> 18) & 63];
		out[o++] = b64[(v >> 12) & 63];
		out[o++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? b64[v & 63] : '=';
	}
	out[o] = '\0';
	free(in);
	return out;
}

int mp_redact_url_len(const char *url, int cap)
{
	const char *sep = strstr(url, "://");
	const char *rest = sep ? sep + 3 : url;
	size_t n = strlen(url);

	if (memchr(rest, '@', strcspn(rest, "/?#")))
		n = (size_t)(rest - url);
	return n < (size_t)cap ? (int)n : cap;
}
