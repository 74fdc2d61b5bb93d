/* The opt-out network set: parsing, errors, lookups, and an oracle. */
#include <arpa/inet.h>
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dnsfilter/cidr.h"
#include "../support/splitmix.h"
#include "unit.h"

/* ---- helpers ---- */

static struct dnsf_cidr_set *set_from_list(const char *const *texts, size_t count)
{
	struct dnsf_errors errors = { 0 };
	struct dnsf_cidr_builder *builder = dnsf_cidr_builder_new(100);
	const char *why;
	ck_assert_ptr_nonnull(builder);
	int ok = dnsf_cidr_builder_add_list(builder, texts, count, "optout.networks", &errors);
	char *all = dnsf_errors_join(&errors, " | ");
	ck_assert_msg(ok, "list refused: %s", all);
	free(all);
	struct dnsf_cidr_set *set = dnsf_cidr_set_build(builder, &errors);
	ck_assert_ptr_nonnull(set);
	ck_assert_msg(dnsf_cidr_set_check(set, &why), "%s", why);
	dnsf_errors_clear(&errors);
	return set;
}

#define SET_FROM(...)                                                                              \
	set_from_list((const char *const[]){ __VA_ARGS__ },                                        \
		      sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(char *))

/* The list is refused; returns the errors for the caller to inspect. */
static struct dnsf_errors list_errors(const char *const *texts, size_t count, size_t max_prefixes)
{
	struct dnsf_errors errors = { 0 };
	struct dnsf_cidr_builder *builder = dnsf_cidr_builder_new(max_prefixes);
	ck_assert(!dnsf_cidr_builder_add_list(builder, texts, count, "optout.networks", &errors));
	dnsf_cidr_builder_free(builder);
	return errors;
}

#define LIST_ERRORS(max, ...)                                                                      \
	list_errors((const char *const[]){ __VA_ARGS__ },                                          \
		    sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(char *), max)

/* One value is refused with a message naming optout.networks[0] and part. */
static void assert_value_refused(const char *text, const char *part)
{
	struct dnsf_errors errors = LIST_ERRORS(100, text);
	ck_assert_uint_eq(errors.count, 1);
	assert_errors_mention(&errors, "optout.networks[0]: ", part);
	dnsf_errors_clear(&errors);
}

static int has4(const struct dnsf_cidr_set *set, const char *text)
{
	struct in_addr address;
	ck_assert_int_eq(inet_pton(AF_INET, text, &address), 1);
	return dnsf_cidr_set_contains(set, AF_INET, &address);
}

static int has6(const struct dnsf_cidr_set *set, const char *text)
{
	struct in6_addr address;
	ck_assert_int_eq(inet_pton(AF_INET6, text, &address), 1);
	return dnsf_cidr_set_contains(set, AF_INET6, &address);
}

/* ---- lookups ---- */

START_TEST(test_ipv4_prefix_covers_exactly_its_range)
{
	struct dnsf_cidr_set *set = SET_FROM("192.0.2.0/24");
	ck_assert(has4(set, "192.0.2.0"));
	ck_assert(has4(set, "192.0.2.128"));
	ck_assert(has4(set, "192.0.2.255"));
	ck_assert(!has4(set, "192.0.1.255"));
	ck_assert(!has4(set, "192.0.3.0"));
	ck_assert(!has6(set, "2001:db8::"));
	ck_assert_uint_eq(dnsf_cidr_set_prefix_count(set), 1);
	ck_assert_uint_eq(dnsf_cidr_set_range_count(set, AF_INET), 1);
	dnsf_cidr_set_free(set);
}
END_TEST

START_TEST(test_ipv6_prefix_covers_exactly_its_range)
{
	struct dnsf_cidr_set *set = SET_FROM("2001:db8::/32", "2001:db8:1:2::/63");
	ck_assert(has6(set, "2001:db8::"));
	ck_assert(has6(set, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"));
	ck_assert(!has6(set, "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff"));
	ck_assert(!has6(set, "2001:db9::"));
	ck_assert(!has4(set, "32.1.13.184"));
	ck_assert_uint_eq(dnsf_cidr_set_range_count(set, AF_INET6), 1);
	dnsf_cidr_set_free(set);

	/* an edge inside the low 64 bits */
	set = SET_FROM("2001:db8::8000:0:0:0/65");
	ck_assert(has6(set, "2001:db8::8000:0:0:0"));
	ck_assert(has6(set, "2001:db8::ffff:ffff:ffff:ffff"));
	ck_assert(!has6(set, "2001:db8::7fff:ffff:ffff:ffff"));
	ck_assert(!has6(set, "2001:db8:0:1::"));
	dnsf_cidr_set_free(set);
}
END_TEST

START_TEST(test_bare_address_is_one_host)
{
	struct dnsf_cidr_set *set = SET_FROM("192.0.2.7", "2001:db8::7");
	ck_assert(has4(set, "192.0.2.7"));
	ck_assert(!has4(set, "192.0.2.6"));
	ck_assert(!has4(set, "192.0.2.8"));
	ck_assert(has6(set, "2001:db8::7"));
	ck_assert(!has6(set, "2001:db8::6"));
	ck_assert(!has6(set, "2001:db8::8"));
	ck_assert_uint_eq(dnsf_cidr_set_prefix_count(set), 2);
	dnsf_cidr_set_free(set);
}
END_TEST

START_TEST(test_slash_zero_covers_one_whole_family)
{
	struct dnsf_cidr_set *set = SET_FROM("0.0.0.0/0");
	ck_assert(has4(set, "0.0.0.0"));
	ck_assert(has4(set, "255.255.255.255"));
	ck_assert(!has6(set, "::1"));
	dnsf_cidr_set_free(set);

	set = SET_FROM("::/0");
	ck_assert(has6(set, "::"));
	ck_assert(has6(set, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
	ck_assert(!has4(set, "192.0.2.1"));
	dnsf_cidr_set_free(set);
}
END_TEST

START_TEST(test_first_and_last_addresses_of_the_space)
{
	struct dnsf_cidr_set *set =
	    SET_FROM("0.0.0.0", "255.255.255.255", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
		     "255.255.255.254/31");
	ck_assert(has4(set, "0.0.0.0"));
	ck_assert(!has4(set, "0.0.0.1"));
	ck_assert(has4(set, "255.255.255.254"));
	ck_assert(has4(set, "255.255.255.255"));
	ck_assert(!has4(set, "255.255.255.253"));
	ck_assert(has6(set, "::"));
	ck_assert(!has6(set, "::2"));
	ck_assert(has6(set, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
	ck_assert(!has6(set, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"));
	ck_assert_uint_eq(dnsf_cidr_set_range_count(set, AF_INET), 2);
	dnsf_cidr_set_free(set);
}
END_TEST

START_TEST(test_mapped_client_is_looked_up_as_ipv4)
{
	struct dnsf_cidr_set *set = SET_FROM("192.0.2.0/24", "::/0");
	ck_assert(has6(set, "::ffff:192.0.2.9"));
	ck_assert(!has6(set, "::ffff:192.0.3.9"));
	dnsf_cidr_set_free(set);

	/* a mapped prefix is the IPv4 prefix it maps */
	set = SET_FROM("::ffff:198.51.100.0/120", "::ffff:203.0.113.5");
	ck_assert(has4(set, "198.51.100.77"));
	ck_assert(!has4(set, "198.51.101.0"));
	ck_assert(has4(set, "203.0.113.5"));
	ck_assert(has6(set, "::ffff:198.51.100.1"));
	ck_assert_uint_eq(dnsf_cidr_set_range_count(set, AF_INET), 2);
	ck_assert_uint_eq(dnsf_cidr_set_range_count(set, AF_INET6), 0);
	dnsf_cidr_set_free(set);
}
END_TEST

START_TEST(test_ipv6_prefix_shorter_than_96_does_not_cover_ipv4_clients)
{
	struct dnsf_cidr_set *set = SET_FROM("::/0", "::fffe:0:0/95");
	ck_assert(!has6(set, "::ffff:192.0.2.1"));
	ck_assert(!has4(set, "192.0.2.1"));
	ck_assert(has6(set, "::fffe:c000:201"));
	dnsf_cidr_set_free(set);
}
END_TEST

START_TEST(test_overlapping_nested_and_adjacent_prefixes_merge)
{
	struct dnsf_cidr_set *set = SET_FROM(
	    "10.0.0.0/8", "10.1.0.0/16", "10.255.255.255", "11.0.0.0/8", "10.0.0.0/8", "13.0.0.0/8",
	    "2001:db8::/33", "2001:db8:8000::/33", "2001:db8:1::/48", "2001:db9::1");
	ck_assert_uint_eq(dnsf_cidr_set_prefix_count(set), 10);
	ck_assert_uint_eq(dnsf_cidr_set_range_count(set, AF_INET), 2);
	ck_assert_uint_eq(dnsf_cidr_set_range_count(set, AF_INET6), 2);
	ck_assert(!has4(set, "9.255.255.255"));
	ck_assert(has4(set, "10.0.0.0"));
	ck_assert(has4(set, "10.255.255.255"));
	ck_assert(has4(set, "11.0.0.0"));
	ck_assert(has4(set, "11.255.255.255"));
	ck_assert(!has4(set, "12.0.0.0"));
	ck_assert(!has4(set, "12.255.255.255"));
	ck_assert(has4(set, "13.0.0.0"));
	ck_assert(has6(set, "2001:db8:7fff:ffff:ffff:ffff:ffff:ffff"));
	ck_assert(has6(set, "2001:db8:8000::"));
	ck_assert(!has6(set, "2001:db9::"));
	ck_assert(has6(set, "2001:db9::1"));
	ck_assert(!has6(set, "2001:db9::2"));
	dnsf_cidr_set_free(set);
}
END_TEST

START_TEST(test_empty_set_and_other_families_contain_nothing)
{
	struct dnsf_errors errors = { 0 };
	struct dnsf_cidr_set *set = dnsf_cidr_set_build(dnsf_cidr_builder_new(10), &errors);
	uint8_t address[16] = { 0 };
	const char *why;
	ck_assert_ptr_nonnull(set);
	ck_assert(dnsf_cidr_set_check(set, &why));
	ck_assert(!has4(set, "0.0.0.0"));
	ck_assert(!has6(set, "::"));
	ck_assert_uint_eq(dnsf_cidr_set_prefix_count(set), 0);
	ck_assert_uint_gt(dnsf_cidr_set_memory(set), 0);
	dnsf_cidr_set_free(set);
	ck_assert(!dnsf_cidr_set_contains(NULL, AF_INET, address));

	set = SET_FROM("0.0.0.0/0", "::/0");
	ck_assert(!dnsf_cidr_set_contains(set, AF_UNIX, address));
	ck_assert_uint_eq(dnsf_cidr_set_range_count(set, AF_UNIX), 0);
	dnsf_cidr_set_free(set);
}
END_TEST

/* ---- the file ---- */

START_TEST(test_file_allows_comments_blank_lines_and_whitespace)
{
	const char *text = "# opt-out list, written by the portal\n"
			   "\n"
			   "   \t\n"
			   "  192.0.2.0/24   # customer 1\n"
			   "\t2001:db8::/48\r\n"
			   "198.51.100.7#no space before the comment\n"
			   "#192.0.2.99\n"
			   "203.0.113.0/25"; /* no final newline */
	struct dnsf_errors errors = { 0 };
	struct dnsf_cidr_builder *builder = dnsf_cidr_builder_new(100);
	ck_assert(
	    dnsf_cidr_builder_add_file_text(builder, text, strlen(text), "optout.txt", &errors));
	ck_assert_uint_eq(errors.count, 0);
	struct dnsf_cidr_set *set = dnsf_cidr_set_build(builder, &errors);
	ck_assert_uint_eq(dnsf_cidr_set_prefix_count(set), 4);
	ck_assert(has4(set, "192.0.2.200"));
	ck_assert(has6(set, "2001:db8:0:ffff::1"));
	ck_assert(has4(set, "198.51.100.7"));
	ck_assert(has4(set, "203.0.113.127"));
	ck_assert(!has4(set, "203.0.113.128"));
	dnsf_cidr_set_free(set);
}
END_TEST

START_TEST(test_byte_order_mark_and_crlf_are_accepted)
{
	const char *text = "\xef\xbb\xbf"
			   "192.0.2.0/24\r\n2001:db8::/32\r\n";
	struct dnsf_errors errors = { 0 };
	struct dnsf_cidr_builder *builder = dnsf_cidr_builder_new(100);
	ck_assert(
	    dnsf_cidr_builder_add_file_text(builder, text, strlen(text), "optout.txt", &errors));
	struct dnsf_cidr_set *set = dnsf_cidr_set_build(builder, &errors);
	ck_assert_uint_eq(dnsf_cidr_set_prefix_count(set), 2);
	ck_assert(has4(set, "192.0.2.1"));
	dnsf_cidr_set_free(set);
}
END_TEST

START_TEST(test_empty_file_gives_an_empty_set)
{
	struct dnsf_errors errors = { 0 };
	struct dnsf_cidr_builder *builder = dnsf_cidr_builder_new(100);
	ck_assert(dnsf_cidr_builder_add_file_text(builder, "", 0, "empty.txt", &errors));
	ck_assert(
	    dnsf_cidr_builder_add_file_text(builder, "# nothing\n\n", 11, "comments.txt", &errors));
	struct dnsf_cidr_set *set = dnsf_cidr_set_build(builder, &errors);
	ck_assert_uint_eq(dnsf_cidr_set_prefix_count(set), 0);
	dnsf_cidr_set_free(set);
}
END_TEST

START_TEST(test_bad_line_names_file_and_line)
{
	const char *text = "192.0.2.0/24\n"
			   "# a comment\n"
			   "  192.0.2.300   # typo\n"
			   "198.51.100.0/24\n";
	struct dnsf_errors errors = { 0 };
	struct dnsf_cidr_builder *builder = dnsf_cidr_builder_new(100);
	ck_assert(!dnsf_cidr_builder_add_file_text(builder, text, strlen(text),
						   "/etc/unbound/optout.txt", &errors));
	ck_assert_uint_eq(errors.count, 1);
	assert_errors_mention(&errors, "/etc/unbound/optout.txt: line 3: \"192.0.2.300\": ",
			      "not an IPv4 or IPv6 address");
	dnsf_errors_clear(&errors);
	/* the whole file is rejected: not even its good lines are in the set */
	struct dnsf_cidr_set *set = dnsf_cidr_set_build(builder, &errors);
	ck_assert_uint_eq(dnsf_cidr_set_prefix_count(set), 0);
	ck_assert(!has4(set, "192.0.2.1"));
	dnsf_cidr_set_free(set);
}
END_TEST

START_TEST(test_every_bad_line_is_reported)
{
	const char *text = "bogus\n192.0.2.0/24\n10.0.0.0/33\n\n2001:db8::/129\n"
			   "10.1.2.3/8\n2001:db8::1/32\n";
	struct dnsf_errors errors = { 0 };
	struct dnsf_cidr_builder *builder = dnsf_cidr_builder_new(100);
	ck_assert(
	    !dnsf_cidr_builder_add_file_text(builder, text, strlen(text), "optout.txt", &errors));
	ck_assert_uint_eq(errors.count, 5);
	assert_errors_mention(&errors, "optout.txt: line 1: \"bogus\": ", "not an IPv4");
	assert_errors_mention(&errors, "optout.txt: line 3: \"10.0.0.0/33\": ",
			      "prefix length must be a number from 0 to 32");
	assert_errors_mention(&errors, "optout.txt: line 5: \"2001:db8::/129\": ", "from 0 to 128");
	assert_errors_mention(&errors, "optout.txt: line 6: \"10.1.2.3/8\": host bits are set",
			      "write 10.0.0.0/8 for the network, or 10.1.2.3 for the one address");
	assert_errors_mention(&errors, "optout.txt: line 7: ", "write 2001:db8::/32");
	dnsf_errors_clear(&errors);
	dnsf_cidr_builder_free(builder);
}
END_TEST

START_TEST(test_rejected_file_keeps_earlier_sources)
{
	const char *good = "192.0.2.0/24\n";
	const char *bad = "198.51.100.0/24\nnope\n";
	struct dnsf_errors errors = { 0 };
	struct dnsf_cidr_builder *builder = dnsf_cidr_builder_new(100);
	ck_assert(dnsf_cidr_builder_add_file_text(builder, good, strlen(good), "a", &errors));
	ck_assert(!dnsf_cidr_builder_add_file_text(builder, bad, strlen(bad), "b", &errors));
	ck_assert_uint_eq(errors.count, 1);
	dnsf_errors_clear(&errors);
	struct dnsf_cidr_set *set = dnsf_cidr_set_build(builder, &errors);
	ck_assert_uint_eq(dnsf_cidr_set_prefix_count(set), 1);
	ck_assert(has4(set, "192.0.2.1"));
	ck_assert(!has4(set, "198.51.100.1"));
	dnsf_cidr_set_free(set);
}
END_TEST

START_TEST(test_nul_and_control_bytes_are_refused_and_escaped)
{
	const char text[] = "192.0.2.0/24\n192.0.2.1\0x\n\x1b[31m192.0.2.2\n";
	struct dnsf_errors errors = { 0 };
	struct dnsf_cidr_builder *builder = dnsf_cidr_builder_new(100);
	ck_assert(!dnsf_cidr_builder_add_file_text(builder, text, sizeof(text) - 1, "optout.txt",
						   &errors));
	ck_assert_uint_eq(errors.count, 2);
	assert_errors_mention(&errors, "line 2: \"192.0.2.1\\x00...\": contains a NUL byte", NULL);
	assert_errors_mention(&errors, "line 3: \"\\x1b[31m192.0.2.2\": ", NULL);
	dnsf_errors_clear(&errors);
	dnsf_cidr_builder_free(builder);
}
END_TEST

START_TEST(test_long_bad_line_is_quoted_shortened)
{
	char text[1000];
	memset(text, 'x', sizeof(text));
	struct dnsf_errors errors = { 0 };
	struct dnsf_cidr_builder *builder = dnsf_cidr_builder_new(100);
	ck_assert(
	    !dnsf_cidr_builder_add_file_text(builder, text, sizeof(text), "optout.txt", &errors));
	assert_errors_mention(&errors, "line 1: \"xxxxxxxx", "...\": not an IPv4");
	/* the quoted line is cut to DNSF_MESSAGE_ARGUMENT_MAX bytes and "..." */
	char longer[DNSF_MESSAGE_ARGUMENT_MAX + 2];
	memset(longer, 'x', DNSF_MESSAGE_ARGUMENT_MAX + 1);
	longer[DNSF_MESSAGE_ARGUMENT_MAX + 1] = 0;
	ck_assert_ptr_null(strstr(errors.messages[0], longer));
	longer[DNSF_MESSAGE_ARGUMENT_MAX] = 0;
	ck_assert_ptr_nonnull(strstr(errors.messages[0], longer));
	dnsf_errors_clear(&errors);
	dnsf_cidr_builder_free(builder);
}
END_TEST

START_TEST(test_file_is_read_from_disk)
{
	char path[] = "/tmp/test_cidr_XXXXXX";
	const char *text = "192.0.2.0/24\n2001:db8::/32 # v6\n";
	struct dnsf_errors errors = { 0 };
	make_file(path, text, strlen(text));
	struct dnsf_cidr_builder *builder = dnsf_cidr_builder_new(100);
	ck_assert(dnsf_cidr_builder_add_file(builder, path, &errors));
	unlink(path);
	ck_assert(!dnsf_cidr_builder_add_file(builder, path, &errors));
	assert_errors_mention(&errors, path, "cannot open: No such file or directory");
	ck_assert(!dnsf_cidr_builder_add_file(builder, "/tmp", &errors));
	assert_errors_mention(&errors, "/tmp: not a regular file", NULL);
	dnsf_errors_clear(&errors);
	struct dnsf_cidr_set *set = dnsf_cidr_set_build(builder, &errors);
	ck_assert_uint_eq(dnsf_cidr_set_prefix_count(set), 2);
	ck_assert(has6(set, "2001:db8:1::1"));
	dnsf_cidr_set_free(set);
}
END_TEST

/* ---- the list ---- */

START_TEST(test_bad_list_value_names_its_index)
{
	struct dnsf_errors errors =
	    LIST_ERRORS(100, "192.0.2.0/24", "nonsense", "10.0.0.0/33", "2001:db8::1/32");
	ck_assert_uint_eq(errors.count, 3);
	assert_errors_mention(&errors, "optout.networks[1]: \"nonsense\": ", "not an IPv4");
	assert_errors_mention(&errors, "optout.networks[2]: \"10.0.0.0/33\": ", "from 0 to 32");
	assert_errors_mention(&errors, "optout.networks[3]: \"2001:db8::1/32\": ",
			      "write 2001:db8::/32 for the network");
	dnsf_errors_clear(&errors);
}
END_TEST

START_TEST(test_missing_list_value_is_not_a_string)
{
	struct dnsf_errors errors = LIST_ERRORS(100, "192.0.2.0/24", NULL);
	ck_assert_uint_eq(errors.count, 1);
	assert_errors_mention(&errors, "optout.networks[1]: not a string", NULL);
	dnsf_errors_clear(&errors);
}
END_TEST

START_TEST(test_rejected_list_adds_none_of_its_values)
{
	const char *const list[] = { "192.0.2.0/24", "bad" };
	struct dnsf_errors errors = { 0 };
	struct dnsf_cidr_builder *builder = dnsf_cidr_builder_new(100);
	ck_assert(!dnsf_cidr_builder_add_list(builder, list, 2, "optout.networks", &errors));
	struct dnsf_cidr_set *set = dnsf_cidr_set_build(builder, &errors);
	ck_assert_uint_eq(dnsf_cidr_set_prefix_count(set), 0);
	ck_assert(!has4(set, "192.0.2.1"));
	dnsf_cidr_set_free(set);
	dnsf_errors_clear(&errors);
}
END_TEST

START_TEST(test_malformed_values_are_refused)
{
	const char *const not_addresses[] = {
		"",
		" 192.0.2.0/24",
		"192.0.2",
		"192.0.2.0 /24",
		"192.0.2.0.0",
		"192.0.2.01",
		"0x7f.0.0.1",
		"2001:db8::1%eth0",
		"2001:db8:::1",
		"[2001:db8::1]",
		"/24",
		"localhost",
		"2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff:1111:2222:3333:4444:5555",
	};
	const char *const bad_lengths[] = {
		"192.0.2.0/",     "192.0.2.0/-1",        "192.0.2.0/+8",   "192.0.2.0/0x10",
		"192.0.2.0/ 8",   "192.0.2.0/0024",      "192.0.2.0/24/8", "192.0.2.0/24 ",
		"2001:db8::/200", "10.0.0.0/4294967304",
	};
	for (size_t i = 0; i < sizeof(not_addresses) / sizeof(*not_addresses); i++)
		assert_value_refused(not_addresses[i], i == 0 ? "empty" : "not an IPv4");
	for (size_t i = 0; i < sizeof(bad_lengths) / sizeof(*bad_lengths); i++)
		assert_value_refused(bad_lengths[i], "prefix length must be a number");
}
END_TEST

START_TEST(test_valid_spellings_are_accepted)
{
	struct dnsf_cidr_set *set = SET_FROM("192.0.2.0/024", "2001:DB8::/32", "::ffff:0:0/96",
					     "0:0:0:0:0:0:0:1/128", "192.0.2.0/32");
	ck_assert(has6(set, "2001:db8::1"));
	ck_assert(has4(set, "8.8.8.8")); /* ::ffff:0:0/96 is every IPv4 client */
	ck_assert(has6(set, "::1"));
	dnsf_cidr_set_free(set);
}
END_TEST

START_TEST(test_limit_refuses_more_prefixes)
{
	struct dnsf_errors errors =
	    LIST_ERRORS(3, "192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5", "bad");
	/* the limit once, and the syntax errors after it still */
	ck_assert_uint_eq(errors.count, 2);
	assert_errors_mention(&errors, "optout.networks[3]: \"192.0.2.4\": ",
			      "more than 3 opt-out networks, the limit");
	assert_errors_mention(&errors, "optout.networks[5]: \"bad\"", NULL);
	dnsf_errors_clear(&errors);
}
END_TEST

START_TEST(test_limit_counts_every_source)
{
	const char *const list[] = { "192.0.2.1", "192.0.2.2" };
	const char *text = "198.51.100.1\n198.51.100.2\n";
	struct dnsf_errors errors = { 0 };
	struct dnsf_cidr_builder *builder = dnsf_cidr_builder_new(3);
	ck_assert(dnsf_cidr_builder_add_list(builder, list, 2, "optout.networks", &errors));
	ck_assert(
	    !dnsf_cidr_builder_add_file_text(builder, text, strlen(text), "optout.txt", &errors));
	assert_errors_mention(&errors, "optout.txt: line 2: \"198.51.100.2\": more than 3", NULL);
	struct dnsf_cidr_set *set = dnsf_cidr_set_build(builder, &errors);
	ck_assert_uint_eq(dnsf_cidr_set_prefix_count(set), 2);
	dnsf_cidr_set_free(set);
	dnsf_errors_clear(&errors);
}
END_TEST

/* ---- differential: the set against a linear scan ---- */

/* Every prefix as 128 bits: IPv4 ones as ::ffff:a.b.c.d/(96 + length). */
struct oracle_prefix {
	uint64_t hi, lo, mask_hi, mask_lo;
};

static uint64_t mask_bits(unsigned keep)
{
	return keep >= 64 ? ~(uint64_t)0 : keep == 0 ? 0 : ~(uint64_t)0 << (64 - keep);
}

static struct oracle_prefix oracle_prefix_make(uint64_t hi, uint64_t lo, unsigned length)
{
	struct oracle_prefix p;
	p.mask_hi = mask_bits(length);
	p.mask_lo = length > 64 ? mask_bits(length - 64) : 0;
	p.hi = hi & p.mask_hi;
	p.lo = lo & p.mask_lo;
	return p;
}

static const uint64_t MAPPED_HI = 0, MAPPED_LO = 0x0000ffff00000000ull;

static int is_mapped(uint64_t hi, uint64_t lo)
{
	return hi == MAPPED_HI && (lo >> 32) == 0xffff;
}

/* Host bits of a prefix length: mostly few, sometimes up to 15. */
static unsigned random_host_bits(void)
{
	return random_below(1 + random_below(16));
}

/* The crowded regions: 10.0.0.0/7, 2001:db8::/96, 2001:db8::/39. */
#define CROWDED_V4(x) (0x0a000000u | ((uint32_t)(x)&0x01ffffffu))
#define CROWDED_V6_LOW(x) ((x)&0x1ffffffffull)
#define CROWDED_V6_HIGH(x) (0x20010db800000000ull | ((x)&0x1ffffffull))

/*
 * A random prefix: most in a few crowded regions, with lengths chosen so
 * that they overlap and nest a lot yet cover only about half of a region.
 */
static struct oracle_prefix random_prefix(unsigned *length_out)
{
	unsigned kind = random_below(10), length;
	uint64_t hi = next_random(), lo = next_random();

	if (kind < 5) { /* IPv4: crowded, or anywhere */
		uint32_t v4 = kind < 4 ? CROWDED_V4(lo) : (uint32_t)lo;
		length = kind < 4 ? 32 - random_host_bits() : 12 + random_below(21);
		hi = MAPPED_HI;
		lo = MAPPED_LO | v4;
		length += 96;
	} else if (kind == 5) { /* IPv6, edges in the low 64 bits */
		hi = 0x20010db800000000ull;
		lo = CROWDED_V6_LOW(lo);
		length = 128 - random_host_bits();
	} else if (kind < 8) { /* IPv6, edges in the high 64 bits, or inside a /64 */
		hi = CROWDED_V6_HIGH(hi);
		length = kind == 6 ? 64 - random_host_bits() : 65 + random_below(64);
	} else if (kind == 8) { /* IPv6 anywhere */
		length = 16 + random_below(113);
	} else { /* IPv6 next to and inside the mapped space, not all of it */
		length = random_below(2) ? 88 + random_below(8) : 112 + random_below(17);
		hi = MAPPED_HI;
		lo = MAPPED_LO | (lo & 0x0100000000ffffffull);
	}
	*length_out = length;
	return oracle_prefix_make(hi, lo, length);
}

static void prefix_text(const struct oracle_prefix *p, unsigned length, char *out)
{
	uint8_t bytes[16];
	char address[INET6_ADDRSTRLEN];
	for (int i = 0; i < 8; i++) {
		bytes[i] = (uint8_t)(p->hi >> (56 - 8 * i));
		bytes[8 + i] = (uint8_t)(p->lo >> (56 - 8 * i));
	}
	if (p->hi == MAPPED_HI && (p->lo >> 32) == 0xffff && length >= 96 && random_below(4) != 0) {
		/* mostly written as IPv4, sometimes as ::ffff:a.b.c.d/N */
		inet_ntop(AF_INET, bytes + 12, address, sizeof(address));
		length -= 96;
	} else {
		inet_ntop(AF_INET6, bytes, address, sizeof(address));
	}
	sprintf(out, "%s/%u", address, length);
}

/* A query: anywhere, in a crowded region, inside a prefix or at its edges. */
static void random_query(const struct oracle_prefix *prefixes, size_t count, uint64_t *hi,
			 uint64_t *lo)
{
	const struct oracle_prefix *p = &prefixes[random_below((unsigned)count)];
	unsigned kind = random_below(10);
	int64_t delta = (int64_t)random_below(5) - 2;

	*hi = next_random();
	*lo = next_random();
	if (kind == 0)
		return;
	if (kind <= 2) { /* any IPv4 address, or one in the crowded region */
		*lo = MAPPED_LO | (kind == 1 ? (uint32_t)*lo : CROWDED_V4(*lo));
		*hi = MAPPED_HI;
	} else if (kind == 3) {
		*hi = 0x20010db800000000ull;
		*lo = CROWDED_V6_LOW(*lo);
	} else if (kind == 4) {
		*hi = CROWDED_V6_HIGH(*hi);
	} else if (kind <= 6) { /* inside p */
		*hi = p->hi | (*hi & ~p->mask_hi);
		*lo = p->lo | (*lo & ~p->mask_lo);
	} else { /* p's first or last address, moved by delta */
		uint64_t old_lo = kind == 7 ? p->lo : p->lo | ~p->mask_lo;
		*hi = kind == 7 ? p->hi : p->hi | ~p->mask_hi;
		*lo = old_lo + (uint64_t)delta;
		if (delta > 0 && *lo < old_lo)
			(*hi)++;
		if (delta < 0 && *lo > old_lo)
			(*hi)--;
	}
}

/*
 * The truth, by the header's rules, found by a linear scan: an address is
 * in the set when some prefix's network equals it under the prefix's mask;
 * an IPv4 client (a mapped address) is matched only by IPv4 prefixes, given
 * as a.b.c.d/N or ::ffff:a.b.c.d/(96 + N), and an IPv6 client only by the
 * others. The prefixes are kept apart by family so that a query scans only
 * its own family's, in compact arrays; the scan is otherwise naive.
 */
struct oracle {
	/** IPv4 networks and masks */
	uint32_t *v4_network, *v4_mask;
	/** number of IPv4 prefixes */
	size_t v4_count;
	/** IPv6 prefixes */
	struct oracle_prefix *v6;
	/** number of IPv6 prefixes */
	size_t v6_count;
};

static void oracle_add(struct oracle *oracle, const struct oracle_prefix *p)
{
	if (is_mapped(p->hi, p->lo) && p->mask_lo >> 32 == 0xffffffffull) {
		oracle->v4_network[oracle->v4_count] = (uint32_t)p->lo;
		oracle->v4_mask[oracle->v4_count++] = (uint32_t)p->mask_lo;
	} else {
		oracle->v6[oracle->v6_count++] = *p;
	}
}

static size_t block_end(size_t i, size_t count)
{
	return i + 256 < count ? i + 256 : count;
}

/* Blocks without an early exit let the compiler vectorise the scan. */
static int oracle_contains(const struct oracle *oracle, uint64_t hi, uint64_t lo)
{
	int found = 0;
	if (is_mapped(hi, lo)) {
		uint32_t address = (uint32_t)lo;
		for (size_t i = 0; i < oracle->v4_count && !found; i += 256) {
			size_t end = block_end(i, oracle->v4_count);
			for (size_t j = i; j < end; j++)
				found |= (address & oracle->v4_mask[j]) == oracle->v4_network[j];
		}
		return found;
	}
	for (size_t i = 0; i < oracle->v6_count && !found; i += 256) {
		size_t end = block_end(i, oracle->v6_count);
		for (size_t j = i; j < end; j++) {
			const struct oracle_prefix *p = &oracle->v6[j];
			found |= ((hi & p->mask_hi) == p->hi) & ((lo & p->mask_lo) == p->lo);
		}
	}
	return found;
}

/* Ask the set the way a client would arrive: IPv4, or mapped/plain IPv6. */
static int set_contains(const struct dnsf_cidr_set *set, uint64_t hi, uint64_t lo, int as_ipv4)
{
	uint8_t bytes[16];
	for (int i = 0; i < 8; i++) {
		bytes[i] = (uint8_t)(hi >> (56 - 8 * i));
		bytes[8 + i] = (uint8_t)(lo >> (56 - 8 * i));
	}
	if (as_ipv4 && is_mapped(hi, lo))
		return dnsf_cidr_set_contains(set, AF_INET, bytes + 12);
	return dnsf_cidr_set_contains(set, AF_INET6, bytes);
}

START_TEST(test_random_prefixes_match_a_linear_scan)
{
	enum { PREFIXES = 100000, QUERIES = 200000 };
	struct oracle_prefix *prefixes = malloc(PREFIXES * sizeof(*prefixes));
	struct oracle oracle = { malloc(PREFIXES * 4), malloc(PREFIXES * 4), 0,
				 malloc(PREFIXES * sizeof(*oracle.v6)), 0 };
	char *text = malloc(PREFIXES * 64);
	size_t text_length = 0, hits = 0;
	struct dnsf_errors errors = { 0 };
	const char *why;

	splitmix_state = 20240416;
	for (size_t i = 0; i < PREFIXES; i++) {
		unsigned length;
		prefixes[i] = random_prefix(&length);
		oracle_add(&oracle, &prefixes[i]);
		prefix_text(&prefixes[i], length, text + text_length);
		text_length += strlen(text + text_length);
		text[text_length++] = '\n';
	}
	struct dnsf_cidr_builder *builder = dnsf_cidr_builder_new(PREFIXES);
	ck_assert(
	    dnsf_cidr_builder_add_file_text(builder, text, text_length, "random.txt", &errors));
	struct dnsf_cidr_set *set = dnsf_cidr_set_build(builder, &errors);
	ck_assert_ptr_nonnull(set);
	ck_assert_msg(dnsf_cidr_set_check(set, &why), "%s", why);
	ck_assert_uint_eq(dnsf_cidr_set_prefix_count(set), PREFIXES);
	ck_assert_uint_lt(dnsf_cidr_set_range_count(set, AF_INET), PREFIXES / 2);
	for (size_t q = 0; q < QUERIES; q++) {
		uint64_t hi, lo;
		random_query(prefixes, PREFIXES, &hi, &lo);
		int expected = oracle_contains(&oracle, hi, lo);
		int got = set_contains(set, hi, lo, (int)(q & 1));
		ck_assert_msg(got == expected,
			      "query %zu %016llx%016llx: set %d, "
			      "linear scan %d",
			      q, (unsigned long long)hi, (unsigned long long)lo, got, expected);
		hits += (size_t)expected;
	}
	/* the queries probe both sides of the edges */
	ck_assert_msg(hits > QUERIES / 4 && hits < QUERIES * 3 / 4, "%zu hits", hits);
	dnsf_cidr_set_free(set);
	free(text);
	free(prefixes);
	free(oracle.v4_network);
	free(oracle.v4_mask);
	free(oracle.v6);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("cidr");
	TCase *tc = tcase_create("cidr");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_ipv4_prefix_covers_exactly_its_range);
	tcase_add_test(tc, test_ipv6_prefix_covers_exactly_its_range);
	tcase_add_test(tc, test_bare_address_is_one_host);
	tcase_add_test(tc, test_slash_zero_covers_one_whole_family);
	tcase_add_test(tc, test_first_and_last_addresses_of_the_space);
	tcase_add_test(tc, test_mapped_client_is_looked_up_as_ipv4);
	tcase_add_test(tc, test_ipv6_prefix_shorter_than_96_does_not_cover_ipv4_clients);
	tcase_add_test(tc, test_overlapping_nested_and_adjacent_prefixes_merge);
	tcase_add_test(tc, test_empty_set_and_other_families_contain_nothing);
	tcase_add_test(tc, test_file_allows_comments_blank_lines_and_whitespace);
	tcase_add_test(tc, test_byte_order_mark_and_crlf_are_accepted);
	tcase_add_test(tc, test_empty_file_gives_an_empty_set);
	tcase_add_test(tc, test_bad_line_names_file_and_line);
	tcase_add_test(tc, test_every_bad_line_is_reported);
	tcase_add_test(tc, test_rejected_file_keeps_earlier_sources);
	tcase_add_test(tc, test_nul_and_control_bytes_are_refused_and_escaped);
	tcase_add_test(tc, test_long_bad_line_is_quoted_shortened);
	tcase_add_test(tc, test_file_is_read_from_disk);
	tcase_add_test(tc, test_bad_list_value_names_its_index);
	tcase_add_test(tc, test_missing_list_value_is_not_a_string);
	tcase_add_test(tc, test_rejected_list_adds_none_of_its_values);
	tcase_add_test(tc, test_malformed_values_are_refused);
	tcase_add_test(tc, test_valid_spellings_are_accepted);
	tcase_add_test(tc, test_limit_refuses_more_prefixes);
	tcase_add_test(tc, test_limit_counts_every_source);
	tcase_add_test(tc, test_random_prefixes_match_a_linear_scan);
	suite_add_tcase(suite, tc);
	return run_suite(suite);
}
