/*
 * utf8.c - well-formed UTF-8, by the table of RFC 3629 section 4: the lead
 * byte gives the length and the range its first continuation byte must be
 * in (narrower than 0x80-0xbf after E0, ED, F0 and F4, which excludes the
 * overlong forms, the surrogates and what lies past U+10FFFF).
 */
#include "dnsfilter/utf8.h"

size_t dnsf_utf8_char_length(const char *bytes, size_t available)
{
	const unsigned char *s = (const unsigned char *)bytes;
	unsigned char low = 0x80, high = 0xbf;
	size_t length;

	if (available == 0)
		return 0;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		length = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		length = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		length = 4;
	else
		return 0; /* a continuation byte, C0/C1 (overlong) or F5-FF */
	if (s[0] == 0xe0)
		low = 0xa0; /* overlong */
	else if (s[0] == 0xed)
		high = 0x9f; /* surrogates */
	else if (s[0] == 0xf0)
		low = 0x90; /* overlong */
	else if (s[0] == 0xf4)
		high = 0x8f; /* past U+10FFFF */
	if (available < length || s[1] < low || s[1] > high)
		return 0;
	for (size_t i = 2; i < length; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return length;
}

size_t dnsf_utf8_invalid_offset(const char *bytes, size_t length)
{
	size_t at = 0;
	while (at < length) {
		if ((unsigned char)bytes[at] < 0x80) {
			at++;
			continue;
		}
		size_t char_length = dnsf_utf8_char_length(bytes + at, length - at);
		if (char_length == 0)
			return at;
		at += char_length;
	}
	return length;
}
