/*
 * libFuzzer target: the index image reader (index.h, "Images"). Any bytes
 * must be refused with a reason or give an index that passes its invariant
 * walk and answers lookups and deltas safely. The whole-file checksum is skipped, so
 * the fuzzer reaches the structural checks behind it: they alone must stop
 * a hostile image (the seeds are real images made by dnsfilter-check
 * --compile).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dnsfilter/feed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a mapping is page aligned: give the reader an aligned copy */
	uint8_t *bytes = aligned_alloc(8, (size + 8) & ~(size_t)7);
	struct dnsf_errors errors = { 0 };
	struct dnsf_index *index;
	const char *why;

	if (!bytes)
		return 0;
	memcpy(bytes, data, size);
	index = dnsf_index_from_image_bytes(bytes, size, NULL, 0, &errors);
	if (index) {
		struct dnsf_index_info info;
		struct dnsf_entry entry;
		if (!dnsf_index_check(index, &why))
			abort();
		dnsf_index_info(index, &info);
		for (size_t i = 0; i < info.entry_count && i < 64; i++)
			if (!dnsf_index_entry(index, i, &entry) || strlen(entry.id) > size)
				abort();
		/* look up names made of the input's bytes, and a few fixed ones */
		static const char *const names[] = { "c2.example.net", "x.evil.test", "a.b.c.d.e",
						     "com" };
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			uint8_t wire[DNSF_WIRE_MAX];
			size_t length;
			struct dnsf_key key;
			struct dnsf_decision decision;
			if (dnsf_wire_from_text(names[i], wire, &length) &&
			    dnsf_key_from_wire(wire, length, &key))
				dnsf_index_decide(index, &key, 1720000000, &decision);
		}
		for (size_t i = 0; i + 1 < size && i < 32; i++) {
			struct dnsf_key key;
			struct dnsf_decision decision;
			if (dnsf_key_from_wire(data + i, size - i, &key))
				dnsf_index_decide(index, &key, (int64_t)i * 100000000, &decision);
		}
		dnsf_index_next_start(index, 0);
		/* the deltas walk every key of the trie and read every rule
		 * list: against itself nothing differs */
		struct dnsf_delta *delta = dnsf_index_delta(index, index);
		if (delta && dnsf_delta_count(delta) != 0)
			abort();
		dnsf_delta_free(delta);
		delta = dnsf_index_delta(NULL, index);
		dnsf_delta_free(delta);
		delta = dnsf_index_starts(index, INT64_MIN, INT64_MAX);
		dnsf_delta_free(delta);
		dnsf_index_free(index);
	} else if (errors.count == 0) {
		abort(); /* a refused image must say why */
	}
	dnsf_errors_clear(&errors);
	free(bytes);
	return 0;
}
