/* fuzz_rules.c - libFuzzer target: the rule compiler (rules.h)
 *
 * Any text as an audience's or a trait's definition (the first byte
 * chooses): it compiles to a statement whose every parameter is bound,
 * or is refused with one line that starts with the JSON path.
 */
#include "audsync/rules.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const rules_target targets[] = {
	{ "a", 0, "{\"performed\": {\"event\": \"A\"}}", NULL, "7 days" },
	{ "s", 0, NULL,
	  "SELECT profile_id FROM audsync.events WHERE ts >= $2 AND ts < $1",
	  "1 day" },
	{ "t", 1, "{\"event_counter\": {\"event\": \"A\"}}", NULL, NULL },
	{ "c1", 0, "{\"member_of\": \"c2\"}", NULL, NULL },
	{ "c2", 0,
	  "{\"or\": [{\"member_of\": \"a\"}, {\"member_of\": \"c1\"}]}", NULL,
	  NULL },
};

/* Every $N of sql is $1, $2 or a bound value. */
static int params_bound(const rules_sql *r)
{
	const char *p;

	for (p = strchr(r->sql, '$'); p; p = strchr(p + 1, '$')) {
		long n;

		if (!isdigit((unsigned char)p[1]))
			continue;
		n = strtol(p + 1, NULL, 10);
		if (n < 1 || (n > 2 && n < r->first) ||
		    n >= r->first + r->nparams)
			return 0;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	rules_catalog cat = { targets, sizeof(targets) / sizeof(*targets) };
	char err[1024], *text;
	rules_sql r;
	int is_trait;

	if (size == 0)
		return 0;
	is_trait = data[0] & 1;
	text = malloc(size);
	if (!text)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	memset(&r, 0, sizeof(r));
	if (rules_compile(&r, "self", is_trait, text, &cat, 3, err,
			  sizeof(err)) == 0) {
		if (!r.sql || r.nparams > RULES_MAX_PARAMS || !params_bound(&r))
			abort();
		rules_sql_free(&r);
	} else if (strncmp(err, "definition", 10) != 0 || strchr(err, '\n') ||
		   r.sql) {
		abort();
	}
	free(text);
	return 0;
}
