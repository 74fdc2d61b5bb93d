/*
 * name.c - domain names turned into lookup keys, and keys and wire names
 * turned into text.
 */
#include "dnsfilter/name.h"

#include <string.h>

#define LABEL_MAX 63
#define FEED_NAME_MAX 253

/* A key byte for each octet: ASCII letters lowercased, the zero octet
 * (DNSF_KEY_LABEL_END in a key) moved to DNSF_KEY_ZERO_OCTET, every other
 * octet itself. A table: this runs for every byte of every name looked up. */
#define ROW(b)                                                                                     \
	KB((b) + 0), KB((b) + 1), KB((b) + 2), KB((b) + 3), KB((b) + 4), KB((b) + 5), KB((b) + 6), \
	    KB((b) + 7), KB((b) + 8), KB((b) + 9), KB((b) + 10), KB((b) + 11), KB((b) + 12),       \
	    KB((b) + 13), KB((b) + 14), KB((b) + 15)
#define KB(o)                                                                                      \
	(uint8_t)((o) >= 'A' && (o) <= 'Z'    ? (o) - 'A' + 'a'                                    \
		  : (o) == DNSF_KEY_LABEL_END ? DNSF_KEY_ZERO_OCTET                                \
					      : (o))
static const uint8_t key_bytes[256] = { ROW(0),   ROW(16),  ROW(32),  ROW(48),  ROW(64),  ROW(80),
					ROW(96),  ROW(112), ROW(128), ROW(144), ROW(160), ROW(176),
					ROW(192), ROW(208), ROW(224), ROW(240) };
#undef KB
#undef ROW

static inline uint8_t key_byte(uint8_t octet)
{
	return key_bytes[octet];
}

int dnsf_key_from_wire(const uint8_t *wire, size_t wire_length, struct dnsf_key *key)
{
	size_t label_start[128];
	size_t labels = 0, pos = 0, out = 0;

	/* First pass: find the labels and check the name is well formed. */
	for (;;) {
		if (pos >= wire_length || pos >= DNSF_WIRE_MAX)
			return 0;
		uint8_t length = wire[pos];
		if (length == 0)
			break;
		if (length > LABEL_MAX || labels == 128 || pos + 1 + length >= wire_length ||
		    pos + 1 + length >= DNSF_WIRE_MAX)
			return 0;
		label_start[labels++] = pos;
		pos += 1 + (size_t)length;
	}
	/* Second pass: labels from the root down. */
	while (labels > 0) {
		size_t start = label_start[--labels];
		uint8_t length = wire[start];
		for (size_t i = 0; i < length; i++)
			key->bytes[out++] = key_byte(wire[start + 1 + i]);
		key->bytes[out++] = DNSF_KEY_LABEL_END;
	}
	key->length = out;
	return 1;
}

static int is_feed_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

int dnsf_key_from_feed_name(const char *text, struct dnsf_key *key, const char **why)
{
	size_t length = strlen(text);
	size_t label_end, out = 0;

	if (length > 0 && text[length - 1] == '.')
		length--;
	if (length == 0) {
		*why = "empty name";
		return 0;
	}
	if (length > FEED_NAME_MAX) {
		*why = "name longer than 253 characters";
		return 0;
	}
	for (size_t i = 0; i < length; i++) {
		if (text[i] == '.')
			continue;
		if (text[i] == '*') {
			*why = "'*' is only allowed as a whole first label, as in *.name";
			return 0;
		}
		if (!is_feed_name_char(text[i])) {
			*why = "character not allowed (letters, digits, '-', '_')";
			return 0;
		}
	}
	/* Labels from the last to the first. */
	label_end = length;
	for (;;) {
		size_t label_start = label_end;
		while (label_start > 0 && text[label_start - 1] != '.')
			label_start--;
		size_t label_length = label_end - label_start;
		if (label_length == 0) {
			*why = "empty label";
			return 0;
		}
		if (label_length > LABEL_MAX) {
			*why = "label longer than 63 octets";
			return 0;
		}
		for (size_t i = label_start; i < label_end; i++)
			key->bytes[out++] = key_byte((uint8_t)text[i]);
		key->bytes[out++] = DNSF_KEY_LABEL_END;
		if (label_start == 0)
			break;
		label_end = label_start - 1;
	}
	key->length = out;
	return 1;
}

/* The text of one octet of a label: a letter (lowercased), digit, '-' or
 * '_' as itself, any other octet as \DDD. @return its length, 1 or 4. */
static size_t octet_text(uint8_t octet, char out[4])
{
	if (octet >= 'A' && octet <= 'Z')
		octet = (uint8_t)(octet - 'A' + 'a');
	if (is_feed_name_char((char)octet)) {
		out[0] = (char)octet;
		return 1;
	}
	out[0] = '\\';
	out[1] = (char)('0' + octet / 100);
	out[2] = (char)('0' + (octet / 10) % 10);
	out[3] = (char)('0' + octet % 10);
	return 4;
}

static int parse_escape(const char **cursor, uint8_t *octet)
{
	const char *p = *cursor; /* just past the backslash */

	if (p[0] >= '0' && p[0] <= '9') {
		if (!(p[1] >= '0' && p[1] <= '9' && p[2] >= '0' && p[2] <= '9'))
			return 0;
		int value = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
		if (value > 255)
			return 0;
		*octet = (uint8_t)value;
		*cursor = p + 3;
		return 1;
	}
	if (p[0] == 0)
		return 0;
	*octet = (uint8_t)p[0];
	*cursor = p + 1;
	return 1;
}

int dnsf_wire_from_text(const char *text, uint8_t *wire, size_t *wire_length)
{
	const char *cursor = text;
	size_t label_pos = 0, out = 1;

	if (strcmp(text, ".") == 0) {
		wire[0] = 0;
		*wire_length = 1;
		return 1;
	}
	if (*text == 0)
		return 0;
	while (*cursor) {
		uint8_t octet;
		if (*cursor == '.') {
			size_t label_length = out - label_pos - 1;
			if (label_length == 0)
				return 0;
			wire[label_pos] = (uint8_t)label_length;
			label_pos = out++;
			cursor++;
			if (out > DNSF_WIRE_MAX)
				return 0;
			continue;
		}
		if (*cursor == '\\') {
			cursor++;
			if (!parse_escape(&cursor, &octet))
				return 0;
		} else {
			octet = (uint8_t)*cursor++;
		}
		if (out - label_pos - 1 >= LABEL_MAX || out >= DNSF_WIRE_MAX)
			return 0;
		wire[out++] = octet;
	}
	if (out - label_pos - 1 > 0) { /* no trailing dot: end the label */
		wire[label_pos] = (uint8_t)(out - label_pos - 1);
		label_pos = out++;
	}
	if (out > DNSF_WIRE_MAX)
		return 0;
	wire[label_pos] = 0;
	*wire_length = out;
	return 1;
}

int dnsf_key_to_text(const struct dnsf_key *key, char *out, size_t out_size)
{
	size_t label_end = key->length, pos = 0;

	if (key->length == 0) {
		if (out_size < 2)
			return 0;
		strcpy(out, ".");
		return 1;
	}
	/* Labels are stored root first: walk them from the end. */
	while (label_end > 0) {
		size_t label_start = label_end - 1; /* at the label end byte */
		while (label_start > 0 && key->bytes[label_start - 1] != DNSF_KEY_LABEL_END)
			label_start--;
		for (size_t i = label_start; i < label_end - 1; i++) {
			uint8_t c = key->bytes[i];
			char text[4];
			size_t length = octet_text(c == DNSF_KEY_ZERO_OCTET ? 0 : c, text);
			if (pos + length >= out_size)
				return 0;
			memcpy(out + pos, text, length);
			pos += length;
		}
		if (pos + 1 >= out_size)
			return 0;
		out[pos++] = '.';
		label_end = label_start;
	}
	out[pos] = 0;
	return 1;
}

int dnsf_wire_to_text(const uint8_t *wire, size_t wire_length, char *out)
{
	size_t pos = 0, at = 0;
	int whole = 0;

	while (at < wire_length && at < DNSF_WIRE_MAX) {
		size_t length = wire[at];
		if (length == 0) {
			whole = 1;
			break;
		}
		/* a label past the buffer or leaving no room for the root */
		if (length > LABEL_MAX || at + 1 + length > wire_length ||
		    at + 1 + length >= DNSF_WIRE_MAX)
			break;
		for (size_t i = 0; i < length; i++)
			pos += octet_text(wire[at + 1 + i], out + pos);
		out[pos++] = '.';
		at += 1 + length;
	}
	if (whole && pos == 0)
		out[pos++] = '.';
	out[pos] = 0;
	return whole;
}
