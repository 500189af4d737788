/* naming.c - Mixpanel property keys from computation and column names */
#include "audsync/naming.h"

#include <string.h>

int naming_key(char *out, size_t outlen, const char *name)
{
	size_t n = 0;
	int pending = 0; /* a '_' is due before the next kept character */

	if (outlen == 0)
		return -1;
	for (; *name; name++) {
		char c = *name;

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
			pending = n > 0;
			continue;
		}
		if (n + (size_t)pending + 1 >= outlen) {
			out[0] = '\0';
			return -1;
		}
		if (pending)
			out[n++] = '_';
		pending = 0;
		out[n++] = c;
	}
	out[n] = '\0';
	return (int)n;
}

const char *naming_key_problem(const char *key)
{
	static const char *const reserved[] = {
		"time",		 "distinct_id", "ip",
		"token",	 "insert_id",	"audience_key",
		"audience_name", "trait_key"
	};
	size_t i;

	if (!key || !*key)
		return "a key may not be empty";
	if (strlen(key) > NAMING_KEY_MAX)
		return "a key is at most 255 bytes (Mixpanel cuts longer "
		       "property names)";
	if (key[0] == '$' || strncmp(key, "mp_", 3) == 0)
		return "keys starting with $ or mp_ are Mixpanel's own";
	for (i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (strcmp(key, reserved[i]) == 0)
			return "the key is reserved: Mixpanel or audsync's own "
			       "records already carry a property of that "
			       "name";
	return NULL;
}
