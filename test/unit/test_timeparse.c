/* Feed dates and timestamps. */
#include <check.h>

#include "dnsfilter/timeparse.h"
#include "unit.h"

START_TEST(test_date_is_midnight_in_the_offset)
{
	int64_t t;
	ck_assert(dnsf_parse_time("2024-04-16", 0, &t));
	ck_assert_int_eq(t, 1713225600);
	ck_assert(dnsf_parse_time("2024-04-16", 9 * 3600, &t)); /* JST */
	ck_assert_int_eq(t, 1713225600 - 9 * 3600);
}
END_TEST

START_TEST(test_rfc3339_timestamps)
{
	int64_t t;
	ck_assert(dnsf_parse_time("2024-06-30T12:00:00+09:00", 0, &t));
	ck_assert_int_eq(t, 1719716400);
	ck_assert(dnsf_parse_time("2024-06-30T03:00:00Z", 3600, &t));
	ck_assert_int_eq(t, 1719716400);
	ck_assert(dnsf_parse_time("2024-06-30T03:00:00.999z", 0, &t));
	ck_assert_int_eq(t, 1719716400);
	ck_assert(dnsf_parse_time("1970-01-01T00:00:00Z", 0, &t));
	ck_assert_int_eq(t, 0);
}
END_TEST

START_TEST(test_bad_times_are_refused)
{
	int64_t t;
	ck_assert(!dnsf_parse_time("2024-02-30", 0, &t));
	ck_assert(!dnsf_parse_time("2023-02-29", 0, &t));
	ck_assert(dnsf_parse_time("2024-02-29", 0, &t));
	ck_assert(!dnsf_parse_time("2024-13-01", 0, &t));
	ck_assert(!dnsf_parse_time("2024-4-16", 0, &t));
	ck_assert(!dnsf_parse_time("2024-04-16T10:00:00", 0, &t)); /* no offset */
	ck_assert(!dnsf_parse_time("2024-04-16T24:00:00Z", 0, &t));
	ck_assert(!dnsf_parse_time("2024-04-16x", 0, &t));
	ck_assert(!dnsf_parse_time("", 0, &t));
}
END_TEST

START_TEST(test_offsets)
{
	int32_t s;
	ck_assert(dnsf_parse_utc_offset("+09:00", &s));
	ck_assert_int_eq(s, 32400);
	ck_assert(dnsf_parse_utc_offset("-05:30", &s));
	ck_assert_int_eq(s, -19800);
	ck_assert(dnsf_parse_utc_offset("Z", &s));
	ck_assert_int_eq(s, 0);
	ck_assert(!dnsf_parse_utc_offset("+9", &s));
	ck_assert(!dnsf_parse_utc_offset("JST", &s));
}
END_TEST

START_TEST(test_format_round_trip)
{
	char text[32];
	int64_t t;
	dnsf_format_time(1719716400, text);
	ck_assert_str_eq(text, "2024-06-30T03:00:00Z");
	ck_assert(dnsf_parse_time(text, 0, &t));
	ck_assert_int_eq(t, 1719716400);
	dnsf_format_time(-1, text);
	ck_assert_str_eq(text, "1969-12-31T23:59:59Z");
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("timeparse");
	TCase *tc = tcase_create("times");
	tcase_add_test(tc, test_date_is_midnight_in_the_offset);
	tcase_add_test(tc, test_rfc3339_timestamps);
	tcase_add_test(tc, test_bad_times_are_refused);
	tcase_add_test(tc, test_offsets);
	tcase_add_test(tc, test_format_round_trip);
	suite_add_tcase(suite, tc);
	return run_suite(suite);
}
