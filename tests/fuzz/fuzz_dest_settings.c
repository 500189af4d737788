/* fuzz_dest_settings.c - libFuzzer target: a destination's settings jsonb
 *
 * Any text: the settings (audience and forwarding ones) either apply with
 * values in their documented ranges, or leave one problem that names the
 * destination.
 */
#include "audsync/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	dest_def d;
	char *text = malloc(size + 1);

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	memset(&d, 0, sizeof(d));
	d.name = strdup("fuzz");
	d.project_token = "tok";
	d.use_people = size > 0 && data[0] & 1;
	d.enter_event = strdup("Audience Entered");
	d.exit_event = strdup("Audience Exited");
	d.trait_event = strdup("Trait Computed");
	d.ignore_time = 1;
	config_parse_settings(&d, text);
	if (d.problem && !strstr(d.problem, "fuzz"))
		abort();
	if (!d.problem &&
	    (d.max_rate < 0 || d.concurrency < 0 || d.concurrency > 64 ||
	     d.batch_size < 0 || d.batch_size > MP_MAX_BATCH ||
	     !d.enter_event || !*d.enter_event || !d.exit_event ||
	     !*d.exit_event || !d.trait_event || !*d.trait_event))
		abort();
	free(d.name);
	free(d.enter_event);
	free(d.exit_event);
	free(d.trait_event);
	free(d.problem);
	free(text);
	return 0;
}
