/* unit.h - what every unit test binary shares: it needs no database, no
 * audsync binary and no fake Mixpanel, and runs in well under a second */
#ifndef AUDSYNC_TESTS_UNIT_H
#define AUDSYNC_TESTS_UNIT_H

#include <check.h>
#include <stdlib.h>

/* Runs the suite (and frees it): EXIT_SUCCESS when no test failed. */
static inline int ut_run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
