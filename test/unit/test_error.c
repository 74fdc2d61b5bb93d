/* Collected errors: kinds, counts past the kept limit, the joined text. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "dnsfilter/error.h"
#include "unit.h"

START_TEST(test_add_is_invalid_and_add_kind_keeps_the_kind)
{
	struct dnsf_errors errors = { 0 };

	dnsf_errors_add(&errors, "entry %d: id: missing", 3);
	dnsf_errors_add_kind(&errors, DNSF_ERROR_IO, "cannot open: %s",
			     "No such file or directory");
	dnsf_errors_add_kind(&errors, DNSF_ERROR_LIMIT, "%d entries, more than the limit of %d", 2,
			     1);
	dnsf_errors_add_kind(&errors, DNSF_ERROR_MEMORY, "out of memory");
	ck_assert_uint_eq(errors.count, 4);
	ck_assert_uint_eq(errors.count_kept, 4);
	ck_assert_str_eq(errors.messages[0], "entry 3: id: missing");
	ck_assert_int_eq(errors.kinds[0], DNSF_ERROR_INVALID);
	ck_assert_str_eq(errors.messages[1], "cannot open: No such file or directory");
	ck_assert_int_eq(errors.kinds[1], DNSF_ERROR_IO);
	ck_assert_int_eq(errors.kinds[2], DNSF_ERROR_LIMIT);
	ck_assert_int_eq(errors.kinds[3], DNSF_ERROR_MEMORY);
	for (int kind = 0; kind < DNSF_ERROR_KINDS; kind++)
		ck_assert_uint_eq(dnsf_errors_count_kind(&errors, (enum dnsf_error_kind)kind), 1);
	dnsf_errors_clear(&errors);
	ck_assert_uint_eq(errors.count, 0);
	ck_assert_uint_eq(errors.count_kept, 0);
	ck_assert_uint_eq(dnsf_errors_count_kind(&errors, DNSF_ERROR_IO), 0);
}
END_TEST

START_TEST(test_kinds_are_counted_past_the_kept_limit)
{
	struct dnsf_errors errors = { 0 };

	for (int i = 0; i < DNSF_ERRORS_KEPT; i++)
		dnsf_errors_add(&errors, "error %d", i);
	dnsf_errors_add_kind(&errors, DNSF_ERROR_LIMIT, "one more, over a limit");
	dnsf_errors_add_kind(&errors, DNSF_ERROR_MEMORY, "and out of memory");
	ck_assert_uint_eq(errors.count, DNSF_ERRORS_KEPT + 2);
	ck_assert_uint_eq(errors.count_kept, DNSF_ERRORS_KEPT);
	ck_assert_uint_eq(dnsf_errors_count_kind(&errors, DNSF_ERROR_INVALID), DNSF_ERRORS_KEPT);
	ck_assert_uint_eq(dnsf_errors_count_kind(&errors, DNSF_ERROR_LIMIT), 1);
	ck_assert_uint_eq(dnsf_errors_count_kind(&errors, DNSF_ERROR_MEMORY), 1);
	ck_assert_uint_eq(dnsf_errors_count_kind(&errors, DNSF_ERROR_IO), 0);
	char *joined = dnsf_errors_join(&errors, "; ");
	ck_assert_ptr_nonnull(strstr(joined, "error 199; (and 2 more errors)"));
	free(joined);
	dnsf_errors_clear(&errors);
}
END_TEST

START_TEST(test_an_unknown_kind_counts_as_invalid)
{
	struct dnsf_errors errors = { 0 };

	dnsf_errors_add_kind(&errors, (enum dnsf_error_kind)99, "odd");
	ck_assert_int_eq(errors.kinds[0], DNSF_ERROR_INVALID);
	ck_assert_uint_eq(dnsf_errors_count_kind(&errors, DNSF_ERROR_INVALID), 1);
	ck_assert_uint_eq(dnsf_errors_count_kind(&errors, (enum dnsf_error_kind)99), 0);
	dnsf_errors_clear(&errors);
}
END_TEST

START_TEST(test_kind_names)
{
	ck_assert_str_eq(dnsf_error_kind_name(DNSF_ERROR_INVALID), "invalid");
	ck_assert_str_eq(dnsf_error_kind_name(DNSF_ERROR_IO), "io");
	ck_assert_str_eq(dnsf_error_kind_name(DNSF_ERROR_LIMIT), "limit");
	ck_assert_str_eq(dnsf_error_kind_name(DNSF_ERROR_MEMORY), "memory");
}
END_TEST

START_TEST(test_join)
{
	struct dnsf_errors errors = { 0 };
	char *joined = dnsf_errors_join(&errors, " | ");

	ck_assert_str_eq(joined, "");
	free(joined);
	dnsf_errors_add(&errors, "a");
	dnsf_errors_add_kind(&errors, DNSF_ERROR_IO, "b");
	joined = dnsf_errors_join(&errors, " | ");
	ck_assert_str_eq(joined, "a | b");
	free(joined);
	dnsf_errors_clear(&errors);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("error");
	TCase *tc = tcase_create("error");
	tcase_add_test(tc, test_add_is_invalid_and_add_kind_keeps_the_kind);
	tcase_add_test(tc, test_kinds_are_counted_past_the_kept_limit);
	tcase_add_test(tc, test_an_unknown_kind_counts_as_invalid);
	tcase_add_test(tc, test_kind_names);
	tcase_add_test(tc, test_join);
	suite_add_tcase(suite, tc);
	return run_suite(suite);
}
