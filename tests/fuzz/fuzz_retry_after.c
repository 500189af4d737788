/* fuzz_retry_after.c - libFuzzer target: the Retry-After header value
 *
 * Any bytes: the wait is -1 (not a Retry-After) or between 0 and the
 * longest the parser grants, and the bytes are read within their length.
 */
#include "audsync/mp_policy.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a copy of exactly size bytes: ASan sees a read past the end */
	char *v = malloc(size ? size : 1);
	long ms;

	if (!v)
		return 0;
	memcpy(v, data, size);
	ms = mp_policy_retry_after(v, size, (time_t)1700000000);
	if (ms < -1 || ms > 10000000L * 1000)
		abort();
	free(v);
	return 0;
}
