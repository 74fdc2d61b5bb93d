/*
 * libFuzzer target: the opt-out file parser (dnsf_cidr_builder_add_file_text)
 * and the set built from it, against an oracle.
 *
 * The input is the file's text. The oracle reads the same text naively
 * (lines, '#' comments, whitespace, a byte order mark, inet_pton) into a
 * list of prefixes. Then:
 *  - the file is taken exactly when the oracle finds no bad line, and when
 *    it is refused nothing of it stays in the builder (the set is empty);
 *  - every error names the file and a line, and is printable UTF-8 (the
 *    text is quoted from the file, escaped);
 *  - the set passes its invariant walk, counts every prefix, has no more
 *    ranges than prefixes, and answers "contains" as the oracle does for
 *    each prefix's first and last address, their neighbours, and addresses
 *    taken from the input.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dnsfilter/cidr.h"
#include "dnsfilter/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PREFIXES 4096
#define FILE_NAME "optout.txt"

/** A prefix as the oracle reads it: 16 bytes, IPv4 as ::ffff:a.b.c.d. */
struct oracle_prefix {
	uint8_t bytes[16];
	/** bits of bytes that count, 96 + n for IPv4 /n */
	unsigned length;
	/** an IPv6 prefix (not IPv4, not IPv4-mapped) */
	int v6;
};

static struct oracle_prefix prefixes[MAX_PREFIXES];
static size_t prefix_count;

static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static int host_bits_clear(const uint8_t *bytes, unsigned size, unsigned length)
{
	for (unsigned bit = length; bit < size * 8; bit++)
		if (bytes[bit / 8] & (0x80 >> (bit % 8)))
			return 0;
	return 1;
}

/* One trimmed, non-empty line: 1 when it is a good prefix (added). */
static int oracle_line(const char *text, size_t size)
{
	char buffer[64];
	const char *slash = memchr(text, '/', size);
	size_t address_size = slash ? (size_t)(slash - text) : size;
	struct oracle_prefix prefix = { { 0 }, 0, 0 };
	uint8_t address[16];
	unsigned length, max;

	if (memchr(text, 0, size) || address_size == 0 || address_size >= sizeof(buffer))
		return 0;
	memcpy(buffer, text, address_size);
	buffer[address_size] = 0;
	int family = strchr(buffer, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(family, buffer, address) != 1)
		return 0;
	max = family == AF_INET ? 32 : 128;
	length = max;
	if (slash) {
		size_t digits = size - address_size - 1;
		if (digits == 0 || digits > 3)
			return 0;
		length = 0;
		for (size_t i = 0; i < digits; i++) {
			char c = slash[1 + i];
			if (c < '0' || c > '9')
				return 0;
			length = length * 10 + (unsigned)(c - '0');
		}
		if (length > max)
			return 0;
	}
	if (!host_bits_clear(address, max / 8, length))
		return 0;
	if (family == AF_INET) {
		memcpy(prefix.bytes, mapped, 12);
		memcpy(prefix.bytes + 12, address, 4);
		prefix.length = 96 + length;
	} else {
		memcpy(prefix.bytes, address, 16);
		prefix.length = length;
		prefix.v6 = !(length >= 96 && memcmp(address, mapped, 12) == 0);
	}
	if (prefix_count < MAX_PREFIXES)
		prefixes[prefix_count++] = prefix;
	return 1;
}

/* The whole file: 1 when every line is good. */
static int oracle_file(const char *text, size_t size)
{
	const char *cursor = text, *end = text + size;
	int good = 1;

	prefix_count = 0;
	if (size >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		cursor += 3;
	while (cursor < end) {
		const char *newline = memchr(cursor, '\n', (size_t)(end - cursor));
		const char *line = cursor, *line_end = newline ? newline : end;
		const char *comment = memchr(line, '#', (size_t)(line_end - line));
		if (comment)
			line_end = comment;
		while (line < line_end && is_space(*line))
			line++;
		while (line_end > line && is_space(line_end[-1]))
			line_end--;
		if (line < line_end && !oracle_line(line, (size_t)(line_end - line)))
			good = 0;
		cursor = newline ? newline + 1 : end;
	}
	return good;
}

/* Does the oracle's list hold the address (16 bytes, IPv4 as mapped)? */
static int oracle_contains(const uint8_t *address)
{
	int is_mapped = memcmp(address, mapped, 12) == 0;
	for (size_t i = 0; i < prefix_count; i++) {
		const struct oracle_prefix *p = &prefixes[i];
		/* an IPv4-mapped client is an IPv4 client: IPv6 prefixes do not
		 * cover it, and IPv4 prefixes cover only such clients */
		if (p->v6 == is_mapped)
			continue;
		if (p->length > 128)
			abort();
		unsigned whole = p->length / 8, rest = p->length % 8;
		if (memcmp(p->bytes, address, whole))
			continue;
		if (rest && ((p->bytes[whole] ^ address[whole]) & (uint8_t)(0xff00 >> rest)))
			continue;
		return 1;
	}
	return 0;
}

/* The set and the oracle agree on an address. */
static void probe(const struct dnsf_cidr_set *set, const uint8_t *address)
{
	int expected = oracle_contains(address);
	int found = dnsf_cidr_set_contains(set, AF_INET6, address);
	if (found != expected)
		abort();
	/* an IPv4 client asks the same whether its address comes as IPv4 */
	if (memcmp(address, mapped, 12) == 0 &&
	    dnsf_cidr_set_contains(set, AF_INET, address + 12) != expected)
		abort();
}

/* address + delta (-1 or +1), as 128-bit numbers; wraps. */
static void step(uint8_t *address, int delta)
{
	for (int i = 15; i >= 0; i--) {
		uint8_t before = address[i];
		address[i] = (uint8_t)(address[i] + delta);
		if ((delta > 0 && address[i] > before) || (delta < 0 && address[i] < before))
			break;
	}
}

static void probe_prefix(const struct dnsf_cidr_set *set, const struct oracle_prefix *p)
{
	uint8_t first[16], last[16];

	memcpy(first, p->bytes, 16);
	memcpy(last, p->bytes, 16);
	for (unsigned bit = p->length; bit < 128; bit++)
		last[bit / 8] |= (uint8_t)(0x80 >> (bit % 8));
	probe(set, first);
	probe(set, last);
	step(first, -1);
	step(last, +1);
	probe(set, first);
	probe(set, last);
}

static void check_messages(const struct dnsf_errors *errors)
{
	for (size_t i = 0; i < errors->count_kept; i++) {
		const char *message = errors->messages[i];
		size_t length = strlen(message);
		if (strncmp(message, FILE_NAME ": line ", strlen(FILE_NAME ": line ")) != 0)
			abort();
		if (dnsf_utf8_invalid_offset(message, length) != length)
			abort();
		for (size_t j = 0; j < length; j++)
			if ((unsigned char)message[j] < 0x20 || message[j] == 0x7f)
				abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dnsf_errors errors = { 0 };
	struct dnsf_cidr_builder *builder = dnsf_cidr_builder_new(MAX_PREFIXES);
	const char *text = (const char *)data;
	const char *why;

	if (!builder)
		return 0;
	int good = oracle_file(text, size);
	int taken = dnsf_cidr_builder_add_file_text(builder, text, size, FILE_NAME, &errors);
	if (taken != (errors.count == 0))
		abort(); /* taken exactly when nothing was said against it */
	if (prefix_count < MAX_PREFIXES && taken != good)
		abort();
	check_messages(&errors);
	struct dnsf_cidr_set *set = dnsf_cidr_set_build(builder, &errors);
	if (!set)
		abort(); /* only memory can fail here */
	if (!dnsf_cidr_set_check(set, &why))
		abort();
	if (!taken) {
		prefix_count = 0; /* rolled back: nothing of the file stays */
		if (dnsf_cidr_set_prefix_count(set) != 0)
			abort();
	} else if (dnsf_cidr_set_prefix_count(set) != prefix_count) {
		abort();
	}
	if (dnsf_cidr_set_range_count(set, AF_INET) + dnsf_cidr_set_range_count(set, AF_INET6) >
	    dnsf_cidr_set_prefix_count(set))
		abort();
	for (size_t i = 0; i < prefix_count && i < 256; i++)
		probe_prefix(set, &prefixes[i]);
	/* addresses from the input bytes, as IPv6 and as IPv4 */
	for (size_t i = 0; i + 16 <= size && i < 256; i += 16) {
		uint8_t address[16];
		memcpy(address, data + i, 16);
		probe(set, address);
		memcpy(address, mapped, 12);
		memcpy(address + 12, data + i, 4);
		probe(set, address);
	}
	dnsf_cidr_set_free(set);
	dnsf_errors_clear(&errors);
	return 0;
}
