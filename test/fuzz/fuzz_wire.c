/*
 * libFuzzer target: query names in wire format, as Unbound hands them to
 * the module (a question's qname and qname_len, an alias target's rdata),
 * through everything the module does with one: the lookup key
 * (dnsf_key_from_wire), the text of logs and events (dnsf_wire_to_text,
 * dnsf_key_to_text, dnsf_event_set_qname_wire) and the decision against a
 * small feed.
 *
 * The input is the wire bytes; they are read with their whole length and
 * again with the length the name itself claims (the root label's end), as
 * Unbound passes it. Invariants, not only the absence of crashes:
 *  - the key and the text agree on whether the name is well formed;
 *  - a well-formed name's text is the key's text, lowercase, made of
 *    letters, digits, '-', '_', dots and whole \DDD escapes, and parses
 *    back to the same wire name (lowercased) and the same key;
 *  - the key has one label end per label and no uppercase letter;
 *  - the event's qname is the text without its trailing dot, or cut with
 *    "..." at a character, always NUL-terminated in its field;
 *  - the decision against the feed is what a plain comparison of the text
 *    with the listed names gives.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dnsfilter/feed.h"
#include "dnsfilter/name.h"
#include "dnsfilter/report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The feed the names are decided against: an exact name, a wildcard, an
 * allow-listed name below the wildcard, and names with digits, '-', '_'. */
static const char feed_text[] =
    "{\"format\":\"dnsfilter-feed/1\",\"entries\":["
    "{\"id\":\"E1\",\"fqdns\":[\"c2.example.net\",\"a-b_c.x1\"],\"start\":\"2000-01-01\"},"
    "{\"id\":\"E2\",\"fqdns\":[\"*.example.com\"],\"start\":\"2000-01-01\","
    "\"action\":\"monitor\"}],"
    "\"allow\":[\"ok.example.com\"]}";
static struct dnsf_index *feed_index;

static int ends_with(const char *text, const char *tail)
{
	size_t length = strlen(text), tail_length = strlen(tail);
	return length >= tail_length && strcmp(text + length - tail_length, tail) == 0;
}

/* The verdict by comparing texts: the text of a label can hold a dot only
 * as \046, so comparing on dots is comparing on labels. */
static enum dnsf_verdict expected_verdict(const char *text)
{
	if (strcmp(text, "ok.example.com.") == 0)
		return DNSF_VERDICT_ALLOW;
	if (strcmp(text, "c2.example.net.") == 0 || strcmp(text, "a-b_c.x1.") == 0)
		return DNSF_VERDICT_BLOCK;
	if (ends_with(text, ".example.com."))
		return DNSF_VERDICT_MONITOR;
	return DNSF_VERDICT_NONE;
}

/* Letters lowercase; a backslash starts \DDD with DDD <= 255. */
static void check_text(const char *text, size_t length)
{
	for (size_t i = 0; i < length; i++) {
		char c = text[i];
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		    c == '.')
			continue;
		if (c != '\\' || i + 3 >= length || !(text[i + 1] >= '0' && text[i + 1] <= '2'))
			abort();
		for (int d = 1; d <= 3; d++)
			if (text[i + d] < '0' || text[i + d] > '9')
				abort();
		if ((text[i + 1] - '0') * 100 + (text[i + 2] - '0') * 10 + (text[i + 3] - '0') >
		    255)
			abort();
		i += 3;
	}
}

static void check_event(const uint8_t *wire, size_t length, const char *text, int whole)
{
	struct dnsf_event event;
	size_t text_length = strlen(text);

	memset(&event, 'x', sizeof(event));
	int fits = dnsf_event_set_qname_wire(&event, wire, length);
	const char *end = memchr(event.qname, 0, sizeof(event.qname));
	if (!end)
		abort(); /* NUL-terminated in its field */
	size_t qname_length = (size_t)(end - event.qname);
	/* no whole name's text has "..." (labels are never empty): a cut */
	int cut = qname_length >= 3 && strcmp(event.qname + qname_length - 3, "...") == 0;
	check_text(event.qname, cut ? qname_length - 3 : qname_length);
	if (cut && fits)
		abort();
	if (!whole) {
		if (fits)
			abort();
		return;
	}
	/* the text without its trailing dot; the root stays "." */
	size_t expected_length = text_length > 1 ? text_length - 1 : text_length;
	if (fits) {
		if (qname_length != expected_length || memcmp(event.qname, text, expected_length))
			abort();
		return;
	}
	/* cut: a prefix of the text, then "..." */
	if (expected_length < sizeof(event.qname) || qname_length < 3 ||
	    strcmp(event.qname + qname_length - 3, "...") ||
	    memcmp(event.qname, text, qname_length - 3))
		abort();
}

static void check_name(const uint8_t *wire, size_t length)
{
	struct dnsf_key key, again;
	/* exactly DNSF_WIRE_TEXT_SIZE, so a write past it is caught by ASan */
	char *text = malloc(DNSF_WIRE_TEXT_SIZE);
	char key_text[4 * DNSF_KEY_MAX + 2];
	uint8_t parsed[DNSF_WIRE_MAX];
	size_t parsed_length, labels = 0, ends = 0;

	if (!text)
		return;
	int keyed = dnsf_key_from_wire(wire, length, &key);
	int whole = dnsf_wire_to_text(wire, length, text);
	size_t text_length = strlen(text);
	if (keyed != whole || text_length >= DNSF_WIRE_TEXT_SIZE)
		abort();
	check_text(text, text_length);
	check_event(wire, length, text, whole);
	if (!whole) {
		free(text);
		return;
	}
	/* the key: no uppercase, one label end a label, at most 254 bytes */
	for (size_t at = 0; wire[at]; at += 1 + wire[at])
		labels++;
	for (size_t i = 0; i < key.length; i++) {
		if (key.bytes[i] >= 'A' && key.bytes[i] <= 'Z')
			abort();
		ends += key.bytes[i] == DNSF_KEY_LABEL_END;
	}
	if (ends != labels || key.length > DNSF_KEY_MAX - 1 ||
	    (key.length && key.bytes[key.length - 1] != DNSF_KEY_LABEL_END))
		abort();
	/* the same text from the key, but for one thing the key does not
	 * keep: a zero octet and an 0x01 octet are the same key byte
	 * (DNSF_KEY_ZERO_OCTET), written "\000" */
	if (!dnsf_key_to_text(&key, key_text, sizeof(key_text)))
		abort();
	char *canonical = strdup(text);
	if (!canonical)
		abort();
	for (char *escape = canonical; (escape = strstr(escape, "\\001")); escape += 4)
		memcpy(escape, "\\000", 4);
	if (strcmp(key_text, canonical))
		abort();
	free(canonical);
	/* the text parses back to the lowercased wire name and the same key */
	if (!dnsf_wire_from_text(text, parsed, &parsed_length))
		abort();
	size_t name_length = 0;
	while (wire[name_length])
		name_length += 1 + wire[name_length];
	name_length++;
	if (parsed_length != name_length)
		abort();
	for (size_t i = 0; i < name_length; i++) {
		uint8_t c = wire[i];
		if (c >= 'A' && c <= 'Z')
			c = (uint8_t)(c - 'A' + 'a');
		if (parsed[i] != c)
			abort();
	}
	if (!dnsf_key_from_wire(parsed, parsed_length, &again) || again.length != key.length ||
	    memcmp(again.bytes, key.bytes, key.length))
		abort();
	/* the decision, against the oracle */
	struct dnsf_decision decision;
	dnsf_index_decide(feed_index, &key, 1700000000, &decision);
	if (decision.verdict != expected_verdict(text))
		abort();
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!feed_index) {
		struct dnsf_errors errors = { 0 };
		feed_index = dnsf_index_from_buffer(feed_text, strlen(feed_text), NULL, &errors);
		if (!feed_index)
			abort();
	}
	/* a copy of exactly size bytes: a read past it is caught */
	uint8_t *wire = malloc(size ? size : 1);
	if (!wire)
		return 0;
	memcpy(wire, data, size);
	check_name(wire, size);
	/* the length the name claims, as Unbound gives qname_len */
	size_t at = 0;
	while (at < size && at < DNSF_WIRE_MAX && wire[at] && wire[at] <= 63)
		at += 1 + wire[at];
	if (at < size && wire[at] == 0 && at + 1 != size)
		check_name(wire, at + 1);
	free(wire);
	return 0;
}
