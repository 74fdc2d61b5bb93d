/* Collected errors: kinds, counts past the kept limit, the joined text. */
#include <check.h>
#include <stdio.h>
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

START_TEST(test_string_arguments_cannot_forge_a_line)
{
	struct dnsf_errors errors = { 0 };

	/* a feed name with a newline and a fake log line after it */
	dnsf_errors_add(&errors, "fqdns[0]: \"%s\": empty label",
			"a..b\nerror: dnsfilter: feed.json: feed rejected");
	ck_assert_str_eq(errors.messages[0], "fqdns[0]: \"a..b\\nerror: dnsfilter: feed.json: "
					     "feed rejected\": empty label");
	ck_assert_ptr_null(strchr(errors.messages[0], '\n'));
	dnsf_errors_clear(&errors);
}
END_TEST

START_TEST(test_quoted_arguments_escape_every_kind_of_byte)
{
	struct dnsf_errors errors = { 0 };

	/* CR, tab, C0, DEL, quote, backslash, a byte that is not UTF-8, a
	 * cut sequence, C1 (U+0085) and the line separator (U+2028) */
	dnsf_errors_add(&errors, "\"%s\"", "\r\t\x01\x7f\"\\\xff\xe3\x81\xc2\x85\xe2\x80\xa8");
	ck_assert_str_eq(errors.messages[0],
			 "\"\\r\\t\\x01\\x7f\\\"\\\\\\xff\\xe3\\x81\\u0085\\u2028\"");
	/* well-formed UTF-8 text stays as it is */
	dnsf_errors_add(&errors, "\"%s\"", "\xe6\x97\xa5\xe6\x9c\xac.example");
	ck_assert_str_eq(errors.messages[1], "\"\xe6\x97\xa5\xe6\x9c\xac.example\"");
	/* outside quotes, a double quote stays; everything else is escaped */
	dnsf_errors_add(&errors, "%s: %s", "/tmp/a\"b\n", "must be \"x\"");
	ck_assert_str_eq(errors.messages[2], "/tmp/a\"b\\n: must be \"x\"");
	/* the format's own text is never escaped */
	dnsf_errors_add(&errors, "\"%s\\x00...\"\t%%", "a");
	ck_assert_str_eq(errors.messages[3], "\"a\\x00...\"\t%");
	dnsf_errors_clear(&errors);
}
END_TEST

START_TEST(test_long_arguments_are_cut_at_a_character)
{
	struct dnsf_errors errors = { 0 };
	char text[DNSF_MESSAGE_ARGUMENT_MAX + 10], expected[DNSF_MESSAGE_ARGUMENT_MAX + 20];

	memset(text, 'x', sizeof(text) - 1);
	text[sizeof(text) - 1] = 0;
	/* a 3-byte character across the limit is not cut in two */
	memcpy(text + DNSF_MESSAGE_ARGUMENT_MAX - 1, "\xe6\x97\xa5", 3);
	dnsf_errors_add(&errors, "\"%s\"", text);
	snprintf(expected, sizeof(expected), "\"%.*s...\"", DNSF_MESSAGE_ARGUMENT_MAX - 1, text);
	ck_assert_str_eq(errors.messages[0], expected);
	/* a precision reads at most that many bytes, as printf */
	dnsf_errors_add(&errors, "[%.3s] [%.*s]", "abcdef", 2, "xy\nz");
	ck_assert_str_eq(errors.messages[1], "[abc] [xy]");
	dnsf_errors_clear(&errors);
}
END_TEST

START_TEST(test_other_conversions_are_printf_s)
{
	/* volatile: gcc would refuse a NULL %s argument it can see */
	const char *volatile nothing = NULL;
	char *message = dnsf_message_format("%zu %d %u %lld %llu %x %5d|%-3s|%3s|%c|%.2f|%%|%s",
					    (size_t)42, -7, 7u, -9LL, 18446744073709551615ULL, 255u,
					    12, "a", "b", '\n', 1.5, nothing);
	ck_assert_str_eq(message,
			 "42 -7 7 -9 18446744073709551615 ff    12|a  |  b|\\n|1.50|%|(null)");
	free(message);
}
END_TEST

START_TEST(test_escape_into_a_buffer)
{
	char out[8];

	ck_assert_uint_eq(dnsf_escape(out, sizeof(out), "a\"\n", 3), 5);
	ck_assert_str_eq(out, "a\\\"\\n");
	/* cut at a whole escape, NUL-terminated, the full length returned */
	ck_assert_uint_eq(dnsf_escape(out, sizeof(out), "abcde\n\n", 7), 9);
	ck_assert_str_eq(out, "abcde\\n");
	/* a NUL inside the text is escaped too */
	ck_assert_uint_eq(dnsf_escape(out, sizeof(out), "a\0b", 3), 6);
	ck_assert_str_eq(out, "a\\x00b");
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
	tcase_add_test(tc, test_string_arguments_cannot_forge_a_line);
	tcase_add_test(tc, test_quoted_arguments_escape_every_kind_of_byte);
	tcase_add_test(tc, test_long_arguments_are_cut_at_a_character);
	tcase_add_test(tc, test_other_conversions_are_printf_s);
	tcase_add_test(tc, test_escape_into_a_buffer);
	suite_add_tcase(suite, tc);
	return run_suite(suite);
}
