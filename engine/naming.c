/* naming.c - Mixpanel property keys from computation and column names */
#include "audsync/naming.h"

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
