/*
 * splitmix.h - splitmix64, a reproducible generator for tests and
 * benchmarks, independent of libc's rand. Seed with splitmix_state.
 */
#ifndef DNSFILTER_TEST_SPLITMIX_H
#define DNSFILTER_TEST_SPLITMIX_H

#include <stdint.h>

static uint64_t splitmix_state;

static inline uint64_t next_random(void)
{
	uint64_t z = (splitmix_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/** A number in [0, n). */
static inline unsigned random_below(unsigned n)
{
	return (unsigned)(next_random() % n);
}

#endif
