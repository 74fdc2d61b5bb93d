/*
 * libFuzzer target: name handling. Wire names and presentation names from
 * any bytes; a key must round-trip through its text form, and a valid feed
 * name's key must equal the key of the same name parsed as a query.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dnsfilter/name.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dnsf_key key, again;
	uint8_t wire[DNSF_WIRE_MAX];
	size_t wire_length;
	char text[DNSF_KEY_MAX * 4 + 2];
	char *input = malloc(size + 1);
	const char *why;

	if (!input)
		return 0;
	memcpy(input, data, size);
	input[size] = 0;
	if (dnsf_key_from_wire(data, size, &key)) {
		if (key.length > DNSF_KEY_MAX || !dnsf_key_to_text(&key, text, sizeof(text)))
			abort();
		/* the text form parses back to the same key */
		if (!dnsf_wire_from_text(text, wire, &wire_length) ||
		    !dnsf_key_from_wire(wire, wire_length, &again) || again.length != key.length ||
		    memcmp(again.bytes, key.bytes, key.length))
			abort();
	}
	if (dnsf_wire_from_text(input, wire, &wire_length) &&
	    !dnsf_key_from_wire(wire, wire_length, &key))
		abort(); /* wire made from text is always well formed */
	if (dnsf_key_from_feed_name(input, &key, &why)) {
		if (!dnsf_wire_from_text(input, wire, &wire_length) ||
		    !dnsf_key_from_wire(wire, wire_length, &again) || again.length != key.length ||
		    memcmp(again.bytes, key.bytes, key.length))
			abort();
	}
	free(input);
	return 0;
}
