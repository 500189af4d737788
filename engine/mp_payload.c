/* mp_payload.c - Mixpanel record shapes: identify mapping, $insert_id */
#include "audsync/mp_payload.h"

#include "audsync/alloc.h"
#include "audsync/buf.h"
#include "audsync/mp_client.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * $insert_id: MurmurHash3_x64_128 (Austin Appleby, public domain) over the
 * parts, each preceded by its length as 8 little-endian bytes so that part
 * boundaries matter. Blocks are read little-endian explicitly: every host
 * that re-sends an event must derive the same id.
 */

static uint64_t rotl64(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static uint64_t fmix64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ULL;
	k ^= k >> 33;
	return k;
}

static uint64_t load_le64(const unsigned char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void murmur3_128(const unsigned char *data, size_t len, uint64_t out[2])
{
	const uint64_t c1 = 0x87c37b91114253d5ULL;
	const uint64_t c2 = 0x4cf5ad432745937fULL;
	uint64_t h1 = 0x9e3779b97f4a7c15ULL, h2 = 0x9e3779b97f4a7c15ULL;
	uint64_t k1, k2;
	size_t i, nblocks = len / 16;
	const unsigned char *tail = data + nblocks * 16;
	unsigned char pad[16] = { 0 };

	for (i = 0; i < nblocks; i++) {
		k1 = load_le64(data + i * 16) * c1;
		k2 = load_le64(data + i * 16 + 8) * c2;
		h1 ^= rotl64(k1, 31) * c2;
		h1 = (rotl64(h1, 27) + h2) * 5 + 0x52dce729;
		h2 ^= rotl64(k2, 33) * c1;
		h2 = (rotl64(h2, 31) + h1) * 5 + 0x38495ab5;
	}
	/* The tail, zero-padded, mixes in as the reference does. */
	if (len & 15)
		memcpy(pad, tail, len & 15);
	k1 = load_le64(pad);
	k2 = load_le64(pad + 8);
	if ((len & 15) > 8)
		h2 ^= rotl64(k2 * c2, 33) * c1;
	if ((len & 15) > 0)
		h1 ^= rotl64(k1 * c1, 31) * c2;
	h1 ^= (uint64_t)len;
	h2 ^= (uint64_t)len;
	h1 += h2;
	h2 += h1;
	h1 = fmix64(h1);
	h2 = fmix64(h2);
	h1 += h2;
	h2 += h1;
	out[0] = h1;
	out[1] = h2;
}

static void format_uuid(char out[MP_INSERT_ID_LEN + 1], const uint64_t h[2])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char bytes[16];
	size_t i, o = 0;

	for (i = 0; i < 8; i++) {
		bytes[i] = (unsigned char)(h[0] >> (56 - 8 * i));
		bytes[8 + i] = (unsigned char)(h[1] >> (56 - 8 * i));
	}
	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[bytes[i] >> 4];
		out[o++] = hex[bytes[i] & 15];
	}
	out[o] = '\0';
}

/* Writes v as 8 little-endian bytes at p. */
static void le64_at(unsigned char *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

void mp_insert_id(char out[MP_INSERT_ID_LEN + 1], const char *const *parts,
		  size_t n)
{
	/* Most ids hash a few short parts: no allocation for those. */
	unsigned char small[512], *in = small;
	uint64_t h[2];
	size_t i, len, total = 0;

	for (i = 0; i < n; i++)
		total += 8 + (parts[i] ? strlen(parts[i]) : 0);
	if (total > sizeof(small)) {
		in = alloc_calloc(1, total);
	}
	total = 0;
	for (i = 0; i < n; i++) {
		/* NULL is a part of its own, distinct from "". */
		len = parts[i] ? strlen(parts[i]) : 0;
		le64_at(in + total, parts[i] ? (uint64_t)len : UINT64_MAX);
		memcpy(in + total + 8, parts[i] ? parts[i] : "", len);
		total += 8 + len;
	}
	murmur3_128(in, total, h);
	if (in != small)
		free(in);
	/* The all-zero UUID is a value Mixpanel refuses; never emit it. */
	if (h[0] == 0 && h[1] == 0)
		h[1] = 1;
	format_uuid(out, h);
}

/* research/mixpanel-api.md §3: values /import refuses as distinct_id. */
static const char *const invalid_ids[] = {
	"00000000-0000-0000-0000-000000000000",
	"anon",
	"anonymous",
	"nil",
	"none",
	"null",
	"n/a",
	"na",
	"undefined",
	"unknown",
	"<nil>",
	"0",
	"-1",
	"true",
	"false",
	"[]",
	"{}"
};

int mp_distinct_id_invalid(const char *s)
{
	size_t len, i;

	if (!s || strlen(s) > MP_DISTINCT_ID_MAX)
		return 1;
	while (isspace((unsigned char)*s))
		s++;
	len = strlen(s);
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		len--;
	if (len == 0)
		return 1;
	for (i = 0; i < sizeof(invalid_ids) / sizeof(invalid_ids[0]); i++) {
		if (strlen(invalid_ids[i]) == len &&
		    strncasecmp(invalid_ids[i], s, len) == 0)
			return 1;
	}
	return 0;
}

/* The opening shared by every /engage update, up to the operation. */
static void put_update_head(buf *out, const mp_update_head *h)
{
	buf_puts(out, "{\"$token\":");
	buf_json_str(out, h->token ? h->token : "");
	buf_puts(out, ",\"$distinct_id\":");
	buf_json_str(out, h->distinct_id ? h->distinct_id : "");
	if (h->ignore_time)
		buf_puts(out, ",\"$ignore_time\":true");
	if (h->ip) {
		buf_puts(out, ",\"$ip\":");
		buf_json_str(out, h->ip);
	}
}

/* Segment's special traits and their Mixpanel reserved names. */
const char *mp_payload_trait_name(const char *key)
{
	static const char *const map[][2] = { { "created", "$created" },
					      { "email", "$email" },
					      { "firstName", "$first_name" },
					      { "lastName", "$last_name" },
					      { "name", "$name" },
					      { "username", "$username" },
					      { "phone", "$phone" } };
	size_t i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (strcmp(map[i][0], key) == 0)
			return map[i][1];
	}
	return NULL;
}

void mp_payload_update(buf *out, const mp_update_head *h, const char *op,
		       const char *value)
{
	put_update_head(out, h);
	buf_putc(out, ',');
	buf_json_str(out, op);
	buf_putc(out, ':');
	buf_puts(out, value);
	buf_putc(out, '}');
}

void mp_payload_engage(buf *out, const char *token, const char *distinct_id,
		       int ignore_time, const char *op, const char *value)
{
	mp_update_head h = { token, distinct_id, ignore_time, NULL };

	mp_payload_update(out, &h, op, value);
}

/* Appends the members of object text obj ("{...}"), after a comma. */
static void splice_members(buf *out, const char *obj)
{
	const char *p = obj, *end;

	while (isspace((unsigned char)*p))
		p++;
	if (*p != '{')
		return;
	p++;
	end = p + strlen(p);
	while (end > p && isspace((unsigned char)end[-1]))
		end--;
	if (end > p && end[-1] == '}')
		end--;
	while (p < end && isspace((unsigned char)*p))
		p++;
	if (p == end)
		return;
	buf_putc(out, ',');
	buf_append(out, p, (size_t)(end - p));
}

void mp_payload_event(buf *out, const char *event, const char *distinct_id,
		      int64_t time_ms, const char *insert_id,
		      const char *extra_props)
{
	buf_puts(out, "{\"event\":");
	buf_json_str(out, event ? event : "");
	buf_puts(out, ",\"properties\":{\"distinct_id\":");
	buf_json_str(out, distinct_id ? distinct_id : "");
	buf_puts(out, ",\"time\":");
	buf_int(out, time_ms);
	if (insert_id) {
		buf_puts(out, ",\"$insert_id\":");
		buf_json_str(out, insert_id);
	}
	if (extra_props)
		splice_members(out, extra_props);
	buf_puts(out, "}}");
}

/* 1 when text holds n digits in a row. */
static int has_digit_run(const char *text, size_t n)
{
	size_t run = 0;

	for (; *text; text++) {
		run = (*text >= '0' && *text <= '9') ? run + 1 : 0;
		if (run >= n)
			return 1;
	}
	return 0;
}

/* The end of the number token that starts at p (a '-' or a digit). */
static const char *number_end(const char *p)
{
	if (*p == '-')
		p++;
	while (*p && strchr("0123456789.eE+-", *p))
		p++;
	return p;
}

/* 1 when the integer token [p, end) lies outside json-c's 64-bit range. */
static int integer_too_wide(const char *p, const char *end)
{
	size_t n = (size_t)(end - p), digits = n - (*p == '-');
	char tok[64];

	if (digits < 19 || memchr(p, '.', n) || memchr(p, 'e', n) ||
	    memchr(p, 'E', n))
		return 0;
	if (n >= sizeof(tok))
		return 1;
	memcpy(tok, p, n);
	tok[n] = '\0';
	errno = 0;
	if (*p == '-')
		(void)strtoll(tok, NULL, 10);
	else
		(void)strtoull(tok, NULL, 10);
	return errno == ERANGE;
}

/* text with ".0" after every integer too wide for 64 bits (caller frees),
 * or NULL when it has none. Strings are copied as they are. */
static char *widen_integers(const char *text)
{
	const char *p = text, *end;
	int in_string = 0, changed = 0;
	buf b;

	buf_init(&b);
	while (*p) {
		if (in_string) {
			if (*p == '\\' && p[1]) {
				buf_append(&b, p, 2);
				p += 2;
				continue;
			}
			in_string = *p != '"';
		} else if (*p == '"') {
			in_string = 1;
		} else if (*p == '-' || (*p >= '0' && *p <= '9')) {
			end = number_end(p);
			buf_append(&b, p, (size_t)(end - p));
			if (integer_too_wide(p, end)) {
				buf_puts(&b, ".0");
				changed = 1;
			}
			p = end;
			continue;
		}
		buf_putc(&b, *p++);
	}
	if (!changed) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}

json_object *mp_json_parse_exact(const char *text)
{
	json_tokener *tok;
	json_object *o;
	char *wide = NULL;

	/* A run of 19 digits is the only sign of a too-wide integer; most
	 * values ("true", short numbers and strings) go the fast way. */
	if (has_digit_run(text, 19))
		wide = widen_integers(text);
	o = json_tokener_parse(wide ? wide : text);
	if (!o && (tok = json_tokener_new_ex(MP_JSON_MAX_DEPTH)) != NULL) {
		o = json_tokener_parse_ex(tok, wide ? wide : text, -1);
		if (json_tokener_get_error(tok) != json_tokener_success) {
			json_object_put(o);
			o = NULL;
		}
		json_tokener_free(tok);
	}
	free(wide);
	return o;
}

static const char *const ep_path[MP_EP_COUNT] = { "/engage", "/groups",
						  "/import" };

const char *mp_endpoint_path(mp_endpoint ep)
{
	return ep_path[ep];
}
