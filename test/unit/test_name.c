/* Name keys: case folding, trailing dots, escapes, label boundaries. */
#include <check.h>
#include <string.h>

#include "dnsfilter/name.h"
#include "unit.h"

static struct dnsf_key key_of_feed_name(const char *text)
{
	struct dnsf_key key;
	const char *why = NULL;
	ck_assert_msg(dnsf_key_from_feed_name(text, &key, &why), "%s: %s", text, why);
	return key;
}

START_TEST(test_key_reverses_labels_and_ends_each)
{
	struct dnsf_key key = key_of_feed_name("c2.example.net");
	ck_assert_uint_eq(key.length, 15);
	ck_assert_int_eq(memcmp(key.bytes, "net\0example\0c2\0", 15), 0);
}
END_TEST

START_TEST(test_key_folds_case)
{
	struct dnsf_key upper = key_of_text("C2.EXAMPLE.Net"),
			lower = key_of_text("c2.example.net");
	ck_assert_uint_eq(upper.length, lower.length);
	ck_assert_int_eq(memcmp(upper.bytes, lower.bytes, lower.length), 0);
	struct dnsf_key feed = key_of_feed_name("C2.Example.NET");
	ck_assert_int_eq(memcmp(feed.bytes, lower.bytes, lower.length), 0);
}
END_TEST

START_TEST(test_trailing_dot_is_the_same_name)
{
	struct dnsf_key dotted = key_of_text("a.b."), plain = key_of_text("a.b");
	ck_assert_uint_eq(dotted.length, plain.length);
	ck_assert_int_eq(memcmp(dotted.bytes, plain.bytes, plain.length), 0);
	struct dnsf_key feed = key_of_feed_name("a.b.");
	ck_assert_int_eq(memcmp(feed.bytes, plain.bytes, plain.length), 0);
}
END_TEST

START_TEST(test_escaped_dot_stays_inside_its_label)
{
	/* "a\.b.com" has two labels: "a.b" and "com"; it is not below b.com */
	struct dnsf_key escaped = key_of_text("a\\.b.com");
	struct dnsf_key parent = key_of_feed_name("b.com");
	ck_assert_uint_eq(escaped.length, 8);
	ck_assert_int_eq(memcmp(escaped.bytes, "com\0a.b\0", 8), 0);
	ck_assert_int_ne(memcmp(escaped.bytes, parent.bytes, parent.length), 0);
}
END_TEST

START_TEST(test_decimal_escape_and_zero_octet)
{
	/* \065 is 'A' (folded to 'a'); \000 must not end the label */
	struct dnsf_key a = key_of_text("\\065.com");
	ck_assert_int_eq(memcmp(a.bytes, "com\0a\0", 6), 0);
	struct dnsf_key zero = key_of_text("a\\000b.com");
	ck_assert_uint_eq(zero.length, 8);
	ck_assert_uint_eq(zero.bytes[5], DNSF_KEY_ZERO_OCTET);
	struct dnsf_key below_a = key_of_feed_name("a.com");
	/* "a\000b.com" must not look like a name below or equal to "a.com" */
	ck_assert_int_ne(memcmp(zero.bytes, below_a.bytes, below_a.length), 0);
}
END_TEST

START_TEST(test_bad_text_names_are_refused)
{
	uint8_t wire[DNSF_WIRE_MAX];
	size_t length;
	char long_label[80];
	memset(long_label, 'a', 64);
	strcpy(long_label + 64, ".com");
	ck_assert(!dnsf_wire_from_text("a..b", wire, &length));
	ck_assert(!dnsf_wire_from_text("", wire, &length));
	ck_assert(!dnsf_wire_from_text("a\\", wire, &length));
	ck_assert(!dnsf_wire_from_text("a\\256.b", wire, &length));
	ck_assert(!dnsf_wire_from_text(long_label, wire, &length));
	ck_assert(dnsf_wire_from_text(".", wire, &length));
	ck_assert_uint_eq(length, 1);
}
END_TEST

START_TEST(test_feed_name_rules)
{
	struct dnsf_key key;
	const char *why;
	char name[300];
	ck_assert(!dnsf_key_from_feed_name("", &key, &why));
	ck_assert(!dnsf_key_from_feed_name(".", &key, &why));
	ck_assert(!dnsf_key_from_feed_name("a..b", &key, &why));
	ck_assert_str_eq(why, "empty label");
	ck_assert(!dnsf_key_from_feed_name("a b.com", &key, &why));
	ck_assert(!dnsf_key_from_feed_name("*.a.com", &key, &why));
	ck_assert(!dnsf_key_from_feed_name("a.*.com", &key, &why));
	ck_assert(dnsf_key_from_feed_name("_dmarc.x-y.com", &key, &why));
	memset(name, 'a', 63);
	strcpy(name + 63, ".com");
	ck_assert(dnsf_key_from_feed_name(name, &key, &why));
	memset(name, 'a', 64);
	strcpy(name + 64, ".com");
	ck_assert(!dnsf_key_from_feed_name(name, &key, &why));
	ck_assert_str_eq(why, "label longer than 63 octets");
	/* 253 characters is the limit */
	for (int i = 0; i < 126; i++) {
		name[2 * i] = 'a';
		name[2 * i + 1] = '.';
	}
	name[251] = 'b';
	name[252] = 'c';
	name[253] = 0;
	ck_assert(dnsf_key_from_feed_name(name, &key, &why));
	name[253] = 'd';
	name[254] = 0;
	ck_assert(!dnsf_key_from_feed_name(name, &key, &why));
}
END_TEST

START_TEST(test_malformed_wire_is_refused)
{
	struct dnsf_key key;
	const uint8_t no_root[] = { 1, 'a' };
	const uint8_t too_long_label[] = { 64, 'a' };
	ck_assert(!dnsf_key_from_wire(no_root, sizeof(no_root), &key));
	ck_assert(!dnsf_key_from_wire(too_long_label, sizeof(too_long_label), &key));
	uint8_t root[] = { 0 };
	ck_assert(dnsf_key_from_wire(root, 1, &key));
	ck_assert_uint_eq(key.length, 0);
	/* 255-octet name: 127 labels of one octet would be 255 bytes */
	uint8_t big[256];
	size_t n = 0;
	for (int i = 0; i < 127; i++) {
		big[n++] = 1;
		big[n++] = 'x';
	}
	big[n++] = 0; /* 255 octets */
	ck_assert(dnsf_key_from_wire(big, n, &key));
	ck_assert_uint_eq(key.length, 254);
}
END_TEST

START_TEST(test_key_to_text_round_trip)
{
	char text[DNSF_KEY_MAX * 4 + 2];
	struct dnsf_key key = key_of_text("WWW.Example.COM");
	ck_assert(dnsf_key_to_text(&key, text, sizeof(text)));
	ck_assert_str_eq(text, "www.example.com.");
	key = key_of_text("a\\.b.com");
	ck_assert(dnsf_key_to_text(&key, text, sizeof(text)));
	ck_assert_str_eq(text, "a\\046b.com.");
}
END_TEST

START_TEST(test_wire_to_text_is_the_key_text)
{
	const char *names[] = { "WWW.Example.COM", "a\\.b.com", "x\\\\y\\000\\255_-.test", "." };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		uint8_t wire[DNSF_WIRE_MAX];
		size_t length;
		struct dnsf_key key;
		char from_key[DNSF_KEY_MAX * 4 + 2], from_wire[DNSF_WIRE_TEXT_SIZE];
		ck_assert(dnsf_wire_from_text(names[i], wire, &length));
		ck_assert(dnsf_key_from_wire(wire, length, &key));
		ck_assert(dnsf_key_to_text(&key, from_key, sizeof(from_key)));
		ck_assert(dnsf_wire_to_text(wire, length, from_wire));
		ck_assert_str_eq(from_wire, from_key);
	}
}
END_TEST

START_TEST(test_wire_to_text_escapes_and_reports_malformed_names)
{
	char text[DNSF_WIRE_TEXT_SIZE];
	ck_assert(dnsf_wire_to_text((const uint8_t *)"\x06"
						     "a.B\\\x00\xff\x01_",
				    10, text));
	ck_assert_str_eq(text, "a\\046b\\092\\000\\255._.");
	ck_assert(dnsf_wire_to_text((const uint8_t *)"", 1, text));
	ck_assert_str_eq(text, ".");
	/* malformed: the labels read before the problem */
	ck_assert(!dnsf_wire_to_text((const uint8_t *)"\x02"
						      "ab\x05"
						      "cd",
				     6, text));
	ck_assert_str_eq(text, "ab.");
	ck_assert(!dnsf_wire_to_text((const uint8_t *)"\x02"
						      "ab",
				     3, text));
	ck_assert_str_eq(text, "ab.");
	ck_assert(!dnsf_wire_to_text((const uint8_t *)"\x40", 1, text));
	ck_assert_str_eq(text, "");
	ck_assert(!dnsf_wire_to_text((const uint8_t *)"", 0, text));
	ck_assert_str_eq(text, "");
	/* the longest text: 63 escaped octets in each label of a 255-octet name */
	uint8_t wire[DNSF_WIRE_MAX];
	size_t at = 0;
	for (int label = 0; label < 4; label++) {
		int size = label < 3 ? 63 : 61;
		wire[at++] = (uint8_t)size;
		memset(wire + at, '*', (size_t)size);
		at += (size_t)size;
	}
	wire[at++] = 0;
	ck_assert_uint_eq(at, DNSF_WIRE_MAX);
	ck_assert(dnsf_wire_to_text(wire, at, text));
	ck_assert_uint_eq(strlen(text), 4 * 250 + 4);
	/* a last label that leaves no room for the root within 255 octets */
	uint8_t longer[DNSF_WIRE_MAX + 1];
	memcpy(longer, wire, 192);
	longer[192] = 62;
	memset(longer + 193, '*', 62);
	longer[255] = 0;
	ck_assert(!dnsf_wire_to_text(longer, sizeof(longer), text));
	ck_assert_uint_eq(strlen(text), 3 * (63 * 4 + 1));
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("name");
	TCase *tc = tcase_create("keys");
	tcase_add_test(tc, test_key_reverses_labels_and_ends_each);
	tcase_add_test(tc, test_key_folds_case);
	tcase_add_test(tc, test_trailing_dot_is_the_same_name);
	tcase_add_test(tc, test_escaped_dot_stays_inside_its_label);
	tcase_add_test(tc, test_decimal_escape_and_zero_octet);
	tcase_add_test(tc, test_bad_text_names_are_refused);
	tcase_add_test(tc, test_feed_name_rules);
	tcase_add_test(tc, test_malformed_wire_is_refused);
	tcase_add_test(tc, test_key_to_text_round_trip);
	tcase_add_test(tc, test_wire_to_text_is_the_key_text);
	tcase_add_test(tc, test_wire_to_text_escapes_and_reports_malformed_names);
	suite_add_tcase(suite, tc);
	return run_suite(suite);
}
