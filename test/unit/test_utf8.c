/* Well-formed UTF-8: the boundaries of RFC 3629's table, and offsets. */
#include <check.h>
#include <string.h>

#include "dnsfilter/utf8.h"
#include "unit.h"

static size_t char_length(const char *bytes)
{
	return dnsf_utf8_char_length(bytes, strlen(bytes));
}

START_TEST(test_each_length_at_its_lowest_and_highest)
{
	ck_assert_uint_eq(char_length("a"), 1);
	ck_assert_uint_eq(dnsf_utf8_char_length("\0", 1), 1); /* U+0000 */
	ck_assert_uint_eq(char_length("\x7f"), 1);
	ck_assert_uint_eq(char_length("\xc2\x80"), 2); /* U+0080 */
	ck_assert_uint_eq(char_length("\xdf\xbf"), 2); /* U+07FF */
	ck_assert_uint_eq(char_length("\xe0\xa0\x80"), 3); /* U+0800 */
	ck_assert_uint_eq(char_length("\xed\x9f\xbf"), 3); /* U+D7FF */
	ck_assert_uint_eq(char_length("\xee\x80\x80"), 3); /* U+E000 */
	ck_assert_uint_eq(char_length("\xef\xbf\xbd"), 3); /* U+FFFD */
	ck_assert_uint_eq(char_length("\xf0\x90\x80\x80"), 4); /* U+10000 */
	ck_assert_uint_eq(char_length("\xf4\x8f\xbf\xbf"), 4); /* U+10FFFF */
	/* only the first character counts */
	ck_assert_uint_eq(char_length("\xc3\xa9\xff"), 2);
}
END_TEST

START_TEST(test_ill_formed_sequences_are_refused)
{
	ck_assert_uint_eq(dnsf_utf8_char_length("a", 0), 0);
	ck_assert_uint_eq(char_length("\x80"), 0); /* continuation */
	ck_assert_uint_eq(char_length("\xbf"), 0); /* continuation */
	ck_assert_uint_eq(char_length("\xc0\x80"), 0); /* overlong U+0000 */
	ck_assert_uint_eq(char_length("\xc1\xbf"), 0); /* overlong U+007F */
	ck_assert_uint_eq(char_length("\xe0\x9f\xbf"), 0); /* overlong U+07FF */
	ck_assert_uint_eq(char_length("\xed\xa0\x80"), 0); /* surrogate U+D800 */
	ck_assert_uint_eq(char_length("\xed\xbf\xbf"), 0); /* surrogate U+DFFF */
	ck_assert_uint_eq(char_length("\xf0\x8f\xbf\xbf"), 0); /* overlong U+FFFF */
	ck_assert_uint_eq(char_length("\xf4\x90\x80\x80"), 0); /* U+110000 */
	ck_assert_uint_eq(char_length("\xf5\x80\x80\x80"), 0);
	ck_assert_uint_eq(char_length("\xf8\x88\x80\x80\x80"), 0);
	ck_assert_uint_eq(char_length("\xfe"), 0);
	ck_assert_uint_eq(char_length("\xff"), 0);
	/* a continuation byte missing or not one */
	ck_assert_uint_eq(char_length("\xc3"), 0);
	ck_assert_uint_eq(char_length("\xc3("), 0);
	ck_assert_uint_eq(char_length("\xe2\x82"), 0);
	ck_assert_uint_eq(char_length("\xe2\x82("), 0);
	ck_assert_uint_eq(char_length("\xf0\x9f\x98"), 0);
	ck_assert_uint_eq(char_length("\xf0\x9f\x98\xc3"), 0);
	/* cut by the length given, not by the bytes that follow */
	ck_assert_uint_eq(dnsf_utf8_char_length("\xe2\x82\xac", 2), 0);
	ck_assert_uint_eq(dnsf_utf8_char_length("\xf0\x9f\x98\x80", 3), 0);
}
END_TEST

START_TEST(test_invalid_offset_is_where_the_first_bad_byte_is)
{
	const char *text = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
	ck_assert_uint_eq(dnsf_utf8_invalid_offset(text, strlen(text)), strlen(text));
	ck_assert_uint_eq(dnsf_utf8_invalid_offset("", 0), 0);
	ck_assert_uint_eq(dnsf_utf8_invalid_offset("a\0b", 3), 3);
	ck_assert_uint_eq(dnsf_utf8_invalid_offset("ab\xff", 3), 2);
	ck_assert_uint_eq(dnsf_utf8_invalid_offset("ab\xc3\xa9\xed\xa0\x80z", 8), 4);
	/* a character cut by the end of the text */
	ck_assert_uint_eq(dnsf_utf8_invalid_offset("ab\xe2\x82", 4), 2);
	ck_assert_uint_eq(dnsf_utf8_invalid_offset(text, strlen(text) - 1), 10);
}
END_TEST

/* The definition: a code point, encoded the shortest way, not a surrogate. */
static size_t expected_length(const unsigned char *s, size_t n)
{
	unsigned lead = s[0];
	size_t length;
	unsigned long code;
	if (lead < 0x80)
		return 1;
	if ((lead & 0xe0) == 0xc0) {
		length = 2;
		code = lead & 0x1f;
	} else if ((lead & 0xf0) == 0xe0) {
		length = 3;
		code = lead & 0x0f;
	} else if ((lead & 0xf8) == 0xf0) {
		length = 4;
		code = lead & 0x07;
	} else {
		return 0;
	}
	if (n < length)
		return 0;
	for (size_t i = 1; i < length; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		code = code << 6 | (s[i] & 0x3f);
	}
	static const unsigned long lowest[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	if (code < lowest[length] || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff))
		return 0;
	return length;
}

/* Every first and second byte, with third and fourth bytes at the edges of
 * the continuation range, at every length available. */
START_TEST(test_agrees_with_the_definition)
{
	static const unsigned char edges[] = { 0x00, 0x7f, 0x80, 0x8f, 0x90,
					       0x9f, 0xa0, 0xbf, 0xc0, 0xff };
	const size_t count = sizeof(edges);
	unsigned char s[4];
	long disagreements = 0;
	for (unsigned a = 0; a < 256; a++) {
		for (unsigned b = 0; b < 256; b++) {
			for (size_t c = 0; c < count; c++) {
				for (size_t d = 0; d < count; d++) {
					s[0] = (unsigned char)a;
					s[1] = (unsigned char)b;
					s[2] = edges[c];
					s[3] = edges[d];
					for (size_t n = 1; n <= 4; n++)
						disagreements +=
						    dnsf_utf8_char_length((const char *)s, n) !=
						    expected_length(s, n);
				}
			}
		}
	}
	ck_assert_int_eq(disagreements, 0);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("utf8");
	TCase *tc = tcase_create("utf8");
	tcase_add_test(tc, test_each_length_at_its_lowest_and_highest);
	tcase_add_test(tc, test_ill_formed_sequences_are_refused);
	tcase_add_test(tc, test_invalid_offset_is_where_the_first_bad_byte_is);
	tcase_add_test(tc, test_agrees_with_the_definition);
	suite_add_tcase(suite, tc);
	return run_suite(suite);
}
