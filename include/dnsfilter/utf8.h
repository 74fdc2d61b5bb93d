/*
 * dnsfilter/utf8.h - well-formed UTF-8 (RFC 3629): no overlong forms, no
 * surrogates (U+D800-U+DFFF), nothing past U+10FFFF.
 *
 * The feed must be valid UTF-8 as a whole (a feed with a bad byte is
 * refused, naming where); the reporter writes strings from the resolver
 * threads into JSON and Prometheus text and replaces each byte that does
 * not start a well-formed sequence with U+FFFD. Both ask the same question
 * of the same bytes, here.
 */
#ifndef DNSFILTER_UTF8_H
#define DNSFILTER_UTF8_H

#include <stddef.h>

/**
 * Length of the well-formed UTF-8 character at the start of bytes.
 * @param bytes: the text.
 * @param available: bytes readable at bytes.
 * @return 1 to 4, or 0 when available is 0 or the bytes there do not start
 *   a well-formed character (a stray continuation byte, a lead byte that
 *   no character has, a sequence cut short, overlong, a surrogate, or past
 *   U+10FFFF).
 */
size_t dnsf_utf8_char_length(const char *bytes, size_t available);

/**
 * Offset of the first byte that is not part of a well-formed character.
 * @param bytes: the text (need not be NUL-terminated; a NUL is U+0000).
 * @param length: its length.
 * @return that offset, or length when all of it is valid UTF-8.
 */
size_t dnsf_utf8_invalid_offset(const char *bytes, size_t length);

#endif
