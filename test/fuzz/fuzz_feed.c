/*
 * libFuzzer target: the feed parser and the index built from it. Any input
 * must give an index or errors, never a crash or leak; an index must pass
 * its invariant walk and answer lookups.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dnsfilter/feed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dnsf_feed_limits limits = { .max_bytes = 1 << 20,
					   .max_entries = 10000,
					   .max_names = 10000 };
	struct dnsf_errors errors = { 0 };
	struct dnsf_index *index =
	    dnsf_index_from_buffer((const char *)data, size, &limits, &errors);
	const char *why;

	if (index) {
		if (!dnsf_index_check(index, &why))
			abort();
		/* look up every prefix of the input as a wire name */
		for (size_t i = 0; i + 1 < size && i < 64; i++) {
			struct dnsf_key key;
			struct dnsf_decision decision;
			if (dnsf_key_from_wire(data + i, size - i, &key))
				dnsf_index_decide(index, &key, (int64_t)i * 1000000, &decision);
		}
		dnsf_index_free(index);
	} else if (errors.count == 0) {
		abort(); /* a refused feed must say why */
	}
	free(dnsf_errors_join(&errors, "; "));
	dnsf_errors_clear(&errors);
	return 0;
}
