/*
 * bench_cidr - the opt-out network set with a million prefixes: build time,
 * memory, and lookup latency. A benchmark, not a test: it prints figures
 * and never fails on a timing.
 *
 * Usage: bench_cidr [PREFIXES [LOOKUPS]]   (defaults 1000000 1000000)
 *
 * Two sets are measured: "mixed", prefixes as an ISP's opt-out file would
 * hold them (IPv4 hosts and small blocks, IPv6 /128s, /64s and /48-/63
 * customer prefixes, in public space), and "ipv4-hosts", only IPv4 /32s.
 * The prefixes are written as the text of an opt-out file, so the build
 * time includes parsing. Lookups are timed in batches of BATCH with
 * clock_gettime (one lookup is too short to time alone); the median and
 * 99th percentile are of the per-lookup mean of each batch. Half the
 * lookups are at or next to a stored prefix, half anywhere; 10% arrive as
 * IPv4-mapped IPv6 addresses.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "dnsfilter/cidr.h"
#include "../support/splitmix.h"

/** Lookups timed together. */
#define BATCH 100

/** One generated prefix. */
struct prefix {
	/** AF_INET or AF_INET6 */
	int family;
	/** network, network order */
	uint8_t bytes[16];
	/** length in bits */
	unsigned length;
};

/** One lookup. */
struct query {
	/** AF_INET or AF_INET6 */
	int family;
	/** address, network order */
	uint8_t bytes[16];
};

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static void random_bytes(uint8_t *bytes, size_t size)
{
	for (size_t i = 0; i < size; i += 8) {
		uint64_t r = next_random();
		memcpy(bytes + i, &r, size - i < 8 ? size - i : 8);
	}
}

static void clear_host_bits(uint8_t *bytes, unsigned size, unsigned length)
{
	for (unsigned i = length / 8; i < size; i++)
		bytes[i] &= (uint8_t)(0xff << (8 - (i == length / 8 ? length % 8 : 0)));
}

/* An ISP-like prefix: IPv4 unicast 1-223.x, IPv6 in 2000::/3. */
static void mixed_prefix(struct prefix *p)
{
	unsigned r = random_below(100);

	memset(p, 0, sizeof(*p));
	if (r < 60) {
		p->family = AF_INET;
		random_bytes(p->bytes, 4);
		p->bytes[0] = (uint8_t)(1 + random_below(223));
		p->length = r < 42 ? 32 : 20 + random_below(12);
	} else {
		p->family = AF_INET6;
		random_bytes(p->bytes, 16);
		p->bytes[0] = (uint8_t)(0x20 | (p->bytes[0] & 0x1f));
		p->length = r < 80 ? 128 : r < 92 ? 64 : 48 + random_below(16);
	}
	clear_host_bits(p->bytes, p->family == AF_INET ? 4 : 16, p->length);
}

static void ipv4_host_prefix(struct prefix *p)
{
	memset(p, 0, sizeof(*p));
	p->family = AF_INET;
	random_bytes(p->bytes, 4);
	p->length = 32;
}

/* The opt-out file text of the prefixes; malloc'd. */
static char *file_text(const struct prefix *prefixes, size_t count, size_t *length)
{
	char *text = malloc(count * 48 + 1), address[INET6_ADDRSTRLEN];
	size_t n = 0;

	if (!text)
		return NULL;
	for (size_t i = 0; i < count; i++) {
		inet_ntop(prefixes[i].family, prefixes[i].bytes, address, sizeof(address));
		n += (size_t)sprintf(text + n, "%s/%u\n", address, prefixes[i].length);
	}
	*length = n;
	return text;
}

/* Half at or next to a stored prefix's first address, half anywhere. */
static void make_query(const struct prefix *prefixes, size_t count, struct query *q)
{
	const struct prefix *p = &prefixes[random_below((unsigned)count)];
	unsigned size;

	q->family = random_below(2) ? p->family : (random_below(2) ? AF_INET : AF_INET6);
	size = q->family == AF_INET ? 4 : 16;
	random_bytes(q->bytes, 16);
	if (q->family == p->family && random_below(2)) {
		memcpy(q->bytes, p->bytes, size);
		q->bytes[size - 1] = (uint8_t)(q->bytes[size - 1] + random_below(3) - 1);
	}
	if (q->family == AF_INET && random_below(5) == 0) {
		memmove(q->bytes + 12, q->bytes, 4);
		memset(q->bytes, 0, 10);
		q->bytes[10] = q->bytes[11] = 0xff;
		q->family = AF_INET6;
	}
}

static int compare_doubles(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static struct dnsf_cidr_set *build(const char *name, const struct prefix *prefixes, size_t count)
{
	struct dnsf_errors errors = { 0 };
	size_t length = 0;
	char *text = file_text(prefixes, count, &length);
	struct dnsf_cidr_builder *builder = dnsf_cidr_builder_new(count);
	struct dnsf_cidr_set *set = NULL;
	double start, parsed, built;

	if (!text || !builder)
		goto cleanup;
	start = now_ns();
	if (!dnsf_cidr_builder_add_file_text(builder, text, length, name, &errors))
		goto cleanup;
	parsed = now_ns();
	set = dnsf_cidr_set_build(builder, &errors);
	builder = NULL;
	built = now_ns();
	if (!set)
		goto cleanup;
	printf("  file     %.1f MiB of text\n", (double)length / 1048576);
	printf("  build    %.1f ms: parse %.1f ms, sort + merge + index %.1f ms\n",
	       (built - start) / 1e6, (parsed - start) / 1e6, (built - parsed) / 1e6);
	printf("  ranges   IPv4 %zu, IPv6 %zu\n", dnsf_cidr_set_range_count(set, AF_INET),
	       dnsf_cidr_set_range_count(set, AF_INET6));
	printf("  memory   %.1f MiB, %.1f bytes per prefix\n",
	       (double)dnsf_cidr_set_memory(set) / 1048576,
	       (double)dnsf_cidr_set_memory(set) / (double)dnsf_cidr_set_prefix_count(set));
cleanup:
	if (errors.count) {
		char *all = dnsf_errors_join(&errors, "\n");
		fprintf(stderr, "bench_cidr: %s\n", all ? all : "out of memory");
		free(all);
	}
	dnsf_errors_clear(&errors);
	dnsf_cidr_builder_free(builder);
	free(text);
	return set;
}

static void time_lookups(const struct dnsf_cidr_set *set, const struct query *queries, size_t count)
{
	size_t batches = count / BATCH, found = 0;
	double *ns = malloc((batches ? batches : 1) * sizeof(*ns)), total = 0;

	if (!ns || batches == 0)
		goto cleanup;
	for (size_t b = 0; b < batches; b++) {
		const struct query *q = queries + b * BATCH;
		double start = now_ns();
		for (size_t i = 0; i < BATCH; i++)
			found += (size_t)dnsf_cidr_set_contains(set, q[i].family, q[i].bytes);
		ns[b] = (now_ns() - start) / BATCH;
		total += ns[b];
	}
	qsort(ns, batches, sizeof(*ns), compare_doubles);
	printf("  lookup   %zu in batches of %d: median %.1f ns, p99 %.1f ns, "
	       "mean %.1f ns; %.1f%% found\n",
	       batches * BATCH, BATCH, ns[batches / 2], ns[batches * 99 / 100],
	       total / (double)batches, 100.0 * (double)found / (double)(batches * BATCH));
cleanup:
	free(ns);
}

static int run(const char *name, void (*make_prefix)(struct prefix *), size_t prefix_count,
	       size_t lookup_count)
{
	struct prefix *prefixes = malloc(prefix_count * sizeof(*prefixes));
	struct query *queries = malloc(lookup_count * sizeof(*queries));
	struct dnsf_cidr_set *set = NULL;
	int ok = 0;

	if (!prefixes || !queries)
		goto cleanup;
	for (size_t i = 0; i < prefix_count; i++)
		make_prefix(&prefixes[i]);
	for (size_t i = 0; i < lookup_count; i++)
		make_query(prefixes, prefix_count, &queries[i]);
	printf("%s: %zu prefixes\n", name, prefix_count);
	set = build(name, prefixes, prefix_count);
	if (!set)
		goto cleanup;
	time_lookups(set, queries, lookup_count);
	ok = 1;
cleanup:
	dnsf_cidr_set_free(set);
	free(prefixes);
	free(queries);
	return ok;
}

int main(int argc, char **argv)
{
	size_t prefixes = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
	size_t lookups = argc > 2 ? strtoull(argv[2], NULL, 10) : 1000000;

	splitmix_state = 42;

	if (prefixes == 0) {
		fprintf(stderr, "usage: bench_cidr [PREFIXES [LOOKUPS]]\n");
		return 2;
	}
	if (!run("mixed", mixed_prefix, prefixes, lookups) ||
	    !run("ipv4-hosts", ipv4_host_prefix, prefixes, lookups))
		return 1;
	return 0;
}
