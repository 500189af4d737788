/* fuzz_mp_answer.c - libFuzzer target: the answer classifier
 *
 * Input: byte 0 picks the endpoint and whether the answer is a transport
 * error, bytes 1-2 the HTTP status, bytes 3-4 the batch size; the rest
 * is the body. Whatever the answer, the verdict must be one of the six,
 * a failure must name a record of the batch, and the error one line.
 */
#include "audsync/mp_answer.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const long statuses[] = { 200, 201, 204, 400, 401, 403, 404,
				 408, 413, 429, 500, 502, 503 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	mp_answer a;
	mp_endpoint ep;
	long status;
	size_t n, i;
	char *body;

	if (size < 5)
		return 0;
	ep = (mp_endpoint)(data[0] % 3);
	status = (data[1] & 0x80) ? statuses[data[2] % (sizeof(statuses) /
							sizeof(statuses[0]))]
				  : 100 + ((data[1] << 8 | data[2]) % 500);
	n = 1 + ((size_t)(data[3] << 8 | data[4]) % 2000);
	/* the body as libcurl hands it over: not NUL-terminated */
	body = malloc(size - 5 + 1);
	if (!body)
		return 0;
	memcpy(body, data + 5, size - 5);
	mp_answer_classify(&a, ep, (data[0] & 0x80) ? "Connection reset" : NULL,
			   status, body, size - 5, n);
	if ((unsigned)a.action > MP_ACT_STOP_DEST)
		abort();
	if (a.action != MP_ACT_PARTIAL && a.nfailures)
		abort();
	if (a.action == MP_ACT_PARTIAL && a.nfailures == 0)
		abort();
	for (i = 0; i < a.nfailures; i++)
		if (a.failures[i].index >= n || !a.failures[i].message)
			abort();
	if (strchr(a.error, '\n') || strchr(a.error, '\r'))
		abort();
	if (a.action == MP_ACT_DELIVERED && (status < 200 || status > 299))
		abort();
	mp_answer_free(&a);
	free(body);
	return 0;
}
