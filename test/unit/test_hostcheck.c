/* Unit tests: finding the running Unbound's version and configure line,
 * and the layout-relevant options of a configure line (hostcheck.h). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dnsfilter/hostcheck.h"
#include "unit.h"

START_TEST(test_plain_line_features)
{
	ck_assert_uint_eq(dnsf_configure_features("--prefix=/usr --with-dynlibmodule "
						  "--enable-subnet --with-libevent"),
			  DNSF_FEATURE_SUBNET);
	ck_assert_uint_eq(dnsf_configure_features("--with-dynlibmodule"), 0);
	ck_assert_uint_eq(dnsf_configure_features(""), 0);
	ck_assert_uint_eq(dnsf_configure_features(NULL), 0);
}
END_TEST

START_TEST(test_debian_quoted_line)
{
	const char *line = "'--build=x86_64-linux-gnu' '--prefix=/usr' '--enable-subnet' "
			   "'--enable-dnstap' '--enable-cachedb' '--with-libhiredis' "
			   "'--with-libnghttp2' '--with-dynlibmodule' '--enable-dnscrypt'";
	ck_assert_uint_eq(dnsf_configure_features(line), DNSF_FEATURE_SUBNET | DNSF_FEATURE_DNSTAP |
							     DNSF_FEATURE_CACHEDB |
							     DNSF_FEATURE_DNSCRYPT);
}
END_TEST

START_TEST(test_last_word_wins_and_no_turns_off)
{
	ck_assert_uint_eq(dnsf_configure_features("--enable-subnet --disable-subnet"), 0);
	ck_assert_uint_eq(dnsf_configure_features("--disable-subnet --enable-subnet"),
			  DNSF_FEATURE_SUBNET);
	ck_assert_uint_eq(dnsf_configure_features("--enable-subnet=no"), 0);
	ck_assert_uint_eq(dnsf_configure_features("--enable-subnet=yes"), DNSF_FEATURE_SUBNET);
	ck_assert_uint_eq(dnsf_configure_features("--with-libngtcp2=/opt/ngtcp2"),
			  DNSF_FEATURE_NGTCP2);
	ck_assert_uint_eq(dnsf_configure_features("--with-libngtcp2 --without-libngtcp2"), 0);
}
END_TEST

START_TEST(test_similar_words_are_not_features)
{
	ck_assert_uint_eq(dnsf_configure_features("--enable-subnetx --enable-subne "
						  "--with-subnet --enable-cachedbx "
						  "--with-libngtcp2x --xenable-dnstap"),
			  0);
}
END_TEST

START_TEST(test_option_names)
{
	ck_assert_str_eq(dnsf_configure_feature_option(DNSF_FEATURE_SUBNET), "--enable-subnet");
	ck_assert_str_eq(dnsf_configure_feature_option(DNSF_FEATURE_NGTCP2), "--with-libngtcp2");
	for (unsigned bit = 1; bit < (1u << DNSF_FEATURE_COUNT); bit <<= 1)
		ck_assert_uint_eq(dnsf_configure_features(dnsf_configure_feature_option(bit)), bit);
}
END_TEST

START_TEST(test_configure_line_found_between_nuls)
{
	static const char bytes[] = "\x7f"
				    "ELF\0garbage\0unbound 1.17.1\0--prefix=/usr "
				    "--with-dynlibmodule --enable-subnet\0tail\0";
	char path[] = "/tmp/test_hostcheck_XXXXXX";
	char *line;

	make_file(path, bytes, sizeof(bytes));
	ck_assert_int_eq(dnsf_file_configure_line(path, &line), 1);
	ck_assert_str_eq(line, "--prefix=/usr --with-dynlibmodule --enable-subnet");
	free(line);
	ck_assert_int_eq(dnsf_file_contains(path, "unbound 1.17.1", 15), 1);
	ck_assert_int_eq(dnsf_file_contains(path, "unbound 1.17.2", 15), 0);
	unlink(path);

	char other[] = "/tmp/test_hostcheck_XXXXXX";
	make_file(other, "no line here", 12);
	ck_assert_int_eq(dnsf_file_configure_line(other, &line), 0);
	ck_assert_ptr_null(line);
	unlink(other);
	ck_assert_int_eq(dnsf_file_configure_line("/nonexistent/unbound", &line), -1);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("hostcheck");
	TCase *tc = tcase_create("hostcheck");
	tcase_add_test(tc, test_plain_line_features);
	tcase_add_test(tc, test_debian_quoted_line);
	tcase_add_test(tc, test_last_word_wins_and_no_turns_off);
	tcase_add_test(tc, test_similar_words_are_not_features);
	tcase_add_test(tc, test_option_names);
	tcase_add_test(tc, test_configure_line_found_between_nuls);
	suite_add_tcase(suite, tc);
	return run_suite(suite);
}
