/*
 * suite.h - running one check suite as a test program: exit status 0 when
 * every test passed, 1 otherwise.
 */
#ifndef DNSFILTER_TEST_SUITE_H
#define DNSFILTER_TEST_SUITE_H

#include <check.h>

static inline int run_suite(Suite *suite)
{
	SRunner *runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed ? 1 : 0;
}

#endif
