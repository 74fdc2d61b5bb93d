/*
 * cidr.c - the opt-out network set.
 *
 * Each prefix is an inclusive range of addresses [first, last]: uint32 for
 * IPv4, 128 bits (two uint64, most significant first) for IPv6. At build the
 * ranges of a family are sorted and overlapping or adjacent ones merged, so
 * the set is a sorted list of disjoint ranges and "is address in the set" is
 * "does the last range starting at or before address end at or after it".
 *
 * Why sorted ranges rather than a prefix trie: whatever the prefixes look
 * like (nested, overlapping, 10.0.0.0/8 next to a million /32s), the merged
 * ranges are never more than the prefixes, cost 8 (IPv4) or 32 (IPv6) bytes
 * each with no pointers, and are stored in plain arrays that are trivially
 * immutable and shareable. A binary search over a million ranges is 20 steps
 * with a cache miss each, so a bucket index narrows it first: the 2^bits
 * buckets cut the key space below the bits every range shares, and
 * bucket_start[b] is the first range starting in bucket b or later. With
 * two to four ranges a bucket, a lookup is one index read and a search over a
 * handful of neighbouring ranges, about one cache line; keys bunched into few
 * buckets still get a correct binary search, only a longer one. Measured
 * with a million prefixes (test/bench/bench_cidr.c), the index costs about
 * one byte a prefix and takes a lookup from 250 to 100 ns (median) and from
 * 800 to 140 ns (p99).
 */
#include "dnsfilter/cidr.h"
#include "dnsfilter/array.h"
#include "dnsfilter/file.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/** An IPv6 address as a 128-bit number. */
struct v6_key {
	/** most significant 64 bits */
	uint64_t hi;
	/** least significant 64 bits */
	uint64_t lo;
};

/** An inclusive IPv4 range, as collected by the builder. */
struct v4_range {
	/** first address */
	uint32_t first;
	/** last address */
	uint32_t last;
};

/** An inclusive IPv6 range, as collected by the builder. */
struct v6_range {
	/** first address */
	struct v6_key first;
	/** last address */
	struct v6_key last;
};

struct dnsf_cidr_builder {
	/** IPv4 ranges, in the order given */
	struct v4_range *v4;
	/** number of IPv4 ranges */
	size_t v4_count;
	/** capacity of v4 */
	size_t v4_capacity;
	/** IPv6 ranges, in the order given */
	struct v6_range *v6;
	/** number of IPv6 ranges */
	size_t v6_count;
	/** capacity of v6 */
	size_t v6_capacity;
	/** prefixes accepted, both families */
	size_t prefix_count;
	/** most prefixes accepted */
	size_t max_prefixes;
};

/** Narrows the search to the ranges starting near a key (see the top). */
struct bucket_index {
	/** leading key bits shared by every range of the table */
	unsigned skip;
	/** key bits after skip that select a bucket; 0: one bucket */
	unsigned bits;
	/** (1 << bits) + 1 entries: first range starting in bucket b or later */
	uint32_t *start;
};

/** The merged IPv4 ranges. */
struct v4_table {
	/** number of ranges */
	size_t count;
	/** disjoint, ascending; a range's first and last share a cache line */
	struct v4_range *ranges;
	/** index over the first addresses */
	struct bucket_index index;
};

/** The merged IPv6 ranges. */
struct v6_table {
	/** number of ranges */
	size_t count;
	/** disjoint, ascending */
	struct v6_range *ranges;
	/** index over the first addresses */
	struct bucket_index index;
};

struct dnsf_cidr_set {
	/** IPv4 ranges, IPv4-mapped IPv6 prefixes included */
	struct v4_table v4;
	/** IPv6 ranges */
	struct v6_table v6;
	/** prefixes given to the builder */
	size_t prefix_count;
	/** bytes held, this struct included */
	size_t memory;
};

/** A parsed prefix. */
struct prefix {
	/** AF_INET or AF_INET6 */
	int family;
	/** address in network order; 4 bytes used for AF_INET */
	uint8_t bytes[16];
	/** prefix length in bits */
	unsigned length;
};

/** Room for a reason in a message. */
#define WHY_SIZE 256
/** Most bucket bits: 2^20 buckets, 4 MiB of index. */
#define MAX_BUCKET_BITS 20

static const uint8_t v4_mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* ---- keys ---- */

static uint32_t load32(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static uint64_t load64(const uint8_t *b)
{
	return (uint64_t)load32(b) << 32 | load32(b + 4);
}

static struct v6_key load_v6(const uint8_t *b)
{
	struct v6_key key = { load64(b), load64(b + 8) };
	return key;
}

static int v6_compare(struct v6_key x, struct v6_key y)
{
	if (x.hi != y.hi)
		return x.hi < y.hi ? -1 : 1;
	if (x.lo != y.lo)
		return x.lo < y.lo ? -1 : 1;
	return 0;
}

static int v6_is_max(struct v6_key key)
{
	return key.hi == UINT64_MAX && key.lo == UINT64_MAX;
}

static struct v6_key v6_next(struct v6_key key)
{
	key.lo++;
	if (key.lo == 0)
		key.hi++;
	return key;
}

/* Number of leading bits two keys share. */
static unsigned v4_common_bits(uint32_t x, uint32_t y)
{
	return x == y ? 32 : (unsigned)__builtin_clz(x ^ y);
}

static unsigned v6_common_bits(struct v6_key x, struct v6_key y)
{
	if (x.hi != y.hi)
		return (unsigned)__builtin_clzll(x.hi ^ y.hi);
	if (x.lo != y.lo)
		return 64 + (unsigned)__builtin_clzll(x.lo ^ y.lo);
	return 128;
}

/* The key's bits from bit skip on (0 = most significant), left-aligned. */
static uint64_t v4_window(uint32_t key, unsigned skip)
{
	return skip >= 32 ? 0 : ((uint64_t)key << 32) << skip;
}

static uint64_t v6_window(struct v6_key key, unsigned skip)
{
	if (skip == 0)
		return key.hi;
	if (skip < 64)
		return key.hi << skip | key.lo >> (64 - skip);
	if (skip < 128)
		return key.lo << (skip - 64);
	return 0;
}

static size_t bucket_of(const struct bucket_index *index, uint64_t window)
{
	return index->bits ? (size_t)(window >> (64 - index->bits)) : 0;
}

/* ---- parsing ---- */

static int is_v4_mapped(const uint8_t *bytes)
{
	return memcmp(bytes, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0;
}

/* 1 when every bit of bytes from bit length on is zero. */
static int host_bits_clear(const uint8_t *bytes, unsigned size, unsigned length)
{
	for (unsigned i = length / 8; i < size; i++) {
		unsigned kept = i == length / 8 ? length % 8 : 0;
		if (bytes[i] & (uint8_t)(0xff >> kept))
			return 0;
	}
	return 1;
}

static void clear_host_bits(uint8_t *bytes, unsigned size, unsigned length)
{
	for (unsigned i = length / 8; i < size; i++)
		bytes[i] &= (uint8_t)(0xff << (8 - (i == length / 8 ? length % 8 : 0)));
}

/* Read "/N" (text without the slash), 0 <= N <= max. */
static int parse_length(const char *text, size_t size, unsigned max, unsigned *length)
{
	unsigned value = 0;

	if (size == 0 || size > 3)
		return 0;
	for (size_t i = 0; i < size; i++) {
		if (text[i] < '0' || text[i] > '9')
			return 0;
		value = value * 10 + (unsigned)(text[i] - '0');
	}
	*length = value;
	return value <= max;
}

static int parse_address(const char *text, size_t size, struct prefix *prefix)
{
	char buffer[INET6_ADDRSTRLEN + 1];

	if (size == 0 || size >= sizeof(buffer))
		return 0;
	memcpy(buffer, text, size);
	buffer[size] = 0;
	prefix->family = memchr(buffer, ':', size) ? AF_INET6 : AF_INET;
	return inet_pton(prefix->family, buffer, prefix->bytes) == 1;
}

static void explain_host_bits(const struct prefix *prefix, char *why)
{
	uint8_t network[16];
	char text[INET6_ADDRSTRLEN], host[INET6_ADDRSTRLEN];
	unsigned size = prefix->family == AF_INET ? 4 : 16;

	memcpy(network, prefix->bytes, size);
	clear_host_bits(network, size, prefix->length);
	inet_ntop(prefix->family, network, text, sizeof(text));
	inet_ntop(prefix->family, prefix->bytes, host, sizeof(host));
	snprintf(why, WHY_SIZE,
		 "host bits are set after the first %u bits; "
		 "write %s/%u for the network, or %s for the one address",
		 prefix->length, text, prefix->length, host);
}

/* An IPv6 prefix inside ::ffff:0:0/96 becomes the IPv4 prefix it maps. */
static void unmap_v4(struct prefix *prefix)
{
	if (prefix->family != AF_INET6 || prefix->length < 96 || !is_v4_mapped(prefix->bytes))
		return;
	prefix->family = AF_INET;
	memmove(prefix->bytes, prefix->bytes + 12, 4);
	prefix->length -= 96;
}

/*
 * Parse one prefix, text without surrounding whitespace.
 * @return 1, or 0 with the reason in why (WHY_SIZE bytes).
 */
static int parse_prefix(const char *text, size_t size, struct prefix *prefix, char *why)
{
	const char *slash = memchr(text, '/', size);
	size_t address_size = slash ? (size_t)(slash - text) : size;
	unsigned max;

	memset(prefix, 0, sizeof(*prefix));
	if (size == 0 || memchr(text, 0, size)) {
		snprintf(why, WHY_SIZE, "%s", size ? "contains a NUL byte" : "empty");
		return 0;
	}
	if (!parse_address(text, address_size, prefix)) {
		snprintf(why, WHY_SIZE,
			 "not an IPv4 or IPv6 address or prefix "
			 "(like 192.0.2.0/24, 2001:db8::/32 or 192.0.2.7)");
		return 0;
	}
	max = prefix->family == AF_INET ? 32 : 128;
	prefix->length = max;
	if (slash && !parse_length(slash + 1, size - address_size - 1, max, &prefix->length)) {
		snprintf(why, WHY_SIZE, "prefix length must be a number from 0 to %u", max);
		return 0;
	}
	if (!host_bits_clear(prefix->bytes, max / 8, prefix->length)) {
		explain_host_bits(prefix, why);
		return 0;
	}
	unmap_v4(prefix);
	return 1;
}

/* ---- builder ---- */

struct dnsf_cidr_builder *dnsf_cidr_builder_new(size_t max_prefixes)
{
	struct dnsf_cidr_builder *builder = calloc(1, sizeof(*builder));

	if (!builder)
		return NULL;
	/* ranges are indexed by uint32 in the set */
	builder->max_prefixes = max_prefixes < UINT32_MAX ? max_prefixes : UINT32_MAX;
	return builder;
}

void dnsf_cidr_builder_free(struct dnsf_cidr_builder *builder)
{
	if (!builder)
		return;
	free(builder->v4);
	free(builder->v6);
	free(builder);
}

static int add_v4(struct dnsf_cidr_builder *b, const struct prefix *prefix)
{
	uint32_t first = load32(prefix->bytes);
	uint32_t host = prefix->length == 32 ? 0 : ~(uint32_t)0 >> prefix->length;

	if (!dnsf_array_grow((void **)&b->v4, &b->v4_capacity, b->v4_count + 1, sizeof(*b->v4)))
		return 0;
	b->v4[b->v4_count].first = first;
	b->v4[b->v4_count].last = first | host;
	b->v4_count++;
	return 1;
}

static int add_v6(struct dnsf_cidr_builder *b, const struct prefix *prefix)
{
	struct v6_key first = load_v6(prefix->bytes), last = first;
	unsigned length = prefix->length;

	/* host bits: all of lo and some of hi, or some of lo */
	if (length < 64) {
		last.hi |= ~(uint64_t)0 >> length;
		last.lo = ~(uint64_t)0;
	} else if (length < 128) {
		last.lo |= ~(uint64_t)0 >> (length - 64);
	}
	if (!dnsf_array_grow((void **)&b->v6, &b->v6_capacity, b->v6_count + 1, sizeof(*b->v6)))
		return 0;
	b->v6[b->v6_count].first = first;
	b->v6[b->v6_count].last = last;
	b->v6_count++;
	return 1;
}

/* One list or file: taken whole or rolled back. */
struct source {
	/** the builder added to */
	struct dnsf_cidr_builder *builder;
	/** where messages go */
	struct dnsf_errors *errors;
	/** the list name or file name */
	const char *name;
	/** 1: messages say "name: line N", 0: "name[N]" */
	int is_file;
	/** errors->count at the start; more at the end means rejected */
	size_t errors_before;
	/** builder counts at the start, restored on rejection */
	size_t v4_count, v6_count, prefix_count;
	/** the limit or out of memory was reported; said once a source */
	int stopped;
};

static void source_begin(struct source *s, struct dnsf_cidr_builder *builder,
			 struct dnsf_errors *errors, const char *name, int is_file)
{
	memset(s, 0, sizeof(*s));
	s->builder = builder;
	s->errors = errors;
	s->name = name;
	s->is_file = is_file;
	s->errors_before = errors->count;
	s->v4_count = builder->v4_count;
	s->v6_count = builder->v6_count;
	s->prefix_count = builder->prefix_count;
}

static void source_error(struct source *s, enum dnsf_error_kind kind, size_t position,
			 const char *text, size_t size, const char *why)
{
	/* The message formatter escapes and cuts the text (error.h). It is not
	 * NUL-terminated, so it goes with its length; a NUL in it ends what
	 * is shown, and the format says one was there. */
	const char *nul = memchr(text, 0, size);
	int length = (int)(nul ? (size_t)(nul - text) : size < INT_MAX ? size : INT_MAX);
	char where[64];

	if (s->is_file)
		snprintf(where, sizeof(where), "line %zu", position);
	else
		snprintf(where, sizeof(where), "[%zu]", position);
	if (nul)
		dnsf_errors_add_kind(s->errors, kind, "%s%s%s: \"%.*s\\x00...\": %s", s->name,
				     s->is_file ? ": " : "", where, length, text, why);
	else
		dnsf_errors_add_kind(s->errors, kind, "%s%s%s: \"%.*s\": %s", s->name,
				     s->is_file ? ": " : "", where, length, text, why);
}

/* Parse and add one prefix; errors name position (index or line). */
static void source_add(struct source *s, size_t position, const char *text, size_t size)
{
	struct dnsf_cidr_builder *b = s->builder;
	struct prefix prefix;
	char why[WHY_SIZE];

	if (!parse_prefix(text, size, &prefix, why)) {
		source_error(s, DNSF_ERROR_INVALID, position, text, size, why);
		return;
	}
	if (s->stopped)
		return;
	if (b->prefix_count >= b->max_prefixes) {
		snprintf(why, WHY_SIZE, "more than %zu opt-out networks, the limit",
			 b->max_prefixes);
		source_error(s, DNSF_ERROR_LIMIT, position, text, size, why);
		s->stopped = 1;
		return;
	}
	if (!(prefix.family == AF_INET ? add_v4(b, &prefix) : add_v6(b, &prefix))) {
		source_error(s, DNSF_ERROR_MEMORY, position, text, size, "out of memory");
		s->stopped = 1;
		return;
	}
	b->prefix_count++;
}

static int source_end(struct source *s)
{
	if (s->errors->count == s->errors_before)
		return 1;
	s->builder->v4_count = s->v4_count;
	s->builder->v6_count = s->v6_count;
	s->builder->prefix_count = s->prefix_count;
	return 0;
}

int dnsf_cidr_builder_add_list(struct dnsf_cidr_builder *builder, const char *const *texts,
			       size_t count, const char *list_name, struct dnsf_errors *errors)
{
	struct source s;

	source_begin(&s, builder, errors, list_name, 0);
	for (size_t i = 0; i < count; i++) {
		if (texts[i])
			source_add(&s, i, texts[i], strlen(texts[i]));
		else
			dnsf_errors_add(errors, "%s[%zu]: not a string", list_name, i);
	}
	return source_end(&s);
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* One line of a file, [line, end) without its newline. */
static void add_line(struct source *s, size_t number, const char *line, const char *end)
{
	const char *comment = memchr(line, '#', (size_t)(end - line));

	if (comment)
		end = comment;
	while (line < end && is_space(*line))
		line++;
	while (end > line && is_space(end[-1]))
		end--;
	if (line < end)
		source_add(s, number, line, (size_t)(end - line));
}

int dnsf_cidr_builder_add_file_text(struct dnsf_cidr_builder *builder, const char *text,
				    size_t length, const char *file_name,
				    struct dnsf_errors *errors)
{
	const char *cursor = text, *end = text + length;
	size_t number = 0;
	struct source s;

	source_begin(&s, builder, errors, file_name, 1);
	/* a UTF-8 byte order mark, as some editors write, is not text */
	if (length >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		cursor += 3;
	while (cursor < end) {
		const char *newline = memchr(cursor, '\n', (size_t)(end - cursor));
		const char *line_end = newline ? newline : end;
		add_line(&s, ++number, cursor, line_end);
		cursor = newline ? newline + 1 : end;
	}
	return source_end(&s);
}

int dnsf_cidr_builder_add_file(struct dnsf_cidr_builder *builder, const char *path,
			       struct dnsf_errors *errors)
{
	size_t length = 0;
	char *text;
	int ok;

	if (!dnsf_file_read(path, DNSF_CIDR_FILE_MAX_BYTES, path, &text, &length, errors))
		return 0;
	ok = dnsf_cidr_builder_add_file_text(builder, text, length, path, errors);
	free(text);
	return ok;
}

/* ---- build ---- */

static int v4_range_compare(const void *a, const void *b)
{
	const struct v4_range *x = a, *y = b;

	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	return (x->last > y->last) - (x->last < y->last);
}

static int v6_range_compare(const void *a, const void *b)
{
	const struct v6_range *x = a, *y = b;
	int order = v6_compare(x->first, y->first);

	return order ? order : v6_compare(x->last, y->last);
}

/* Sort and merge overlapping or adjacent ranges in place; new count. */
static size_t v4_merge(struct v4_range *ranges, size_t count)
{
	size_t out = 0;

	if (count == 0)
		return 0; /* ranges may be NULL, which qsort must not get */
	qsort(ranges, count, sizeof(*ranges), v4_range_compare);
	for (size_t i = 0; i < count; i++) {
		struct v4_range *previous = out ? &ranges[out - 1] : NULL;
		if (previous &&
		    (previous->last == UINT32_MAX || ranges[i].first <= previous->last + 1)) {
			if (ranges[i].last > previous->last)
				previous->last = ranges[i].last;
			continue;
		}
		ranges[out++] = ranges[i];
	}
	return out;
}

static size_t v6_merge(struct v6_range *ranges, size_t count)
{
	size_t out = 0;

	if (count == 0)
		return 0; /* ranges may be NULL, which qsort must not get */
	qsort(ranges, count, sizeof(*ranges), v6_range_compare);
	for (size_t i = 0; i < count; i++) {
		struct v6_range *previous = out ? &ranges[out - 1] : NULL;
		if (previous && (v6_is_max(previous->last) ||
				 v6_compare(ranges[i].first, v6_next(previous->last)) <= 0)) {
			if (v6_compare(ranges[i].last, previous->last) > 0)
				previous->last = ranges[i].last;
			continue;
		}
		ranges[out++] = ranges[i];
	}
	return out;
}

/* Two to four ranges a bucket; no index for fewer than four ranges. */
static unsigned bucket_bits_for(size_t count, unsigned key_bits_left)
{
	unsigned bits = 0;

	while (bits < MAX_BUCKET_BITS && ((size_t)4 << bits) <= count)
		bits++;
	return bits < key_bits_left ? bits : key_bits_left;
}

static size_t bucket_count(const struct bucket_index *index)
{
	return (size_t)1 << index->bits;
}

/* Fill start[] from the buckets of the ranges' first keys, ascending. */
static void fill_bucket_starts(struct bucket_index *index, const uint64_t *windows, size_t count)
{
	size_t b = 0, buckets = bucket_count(index);

	for (size_t i = 0; i < count; i++) {
		size_t bucket = bucket_of(index, windows[i]);
		while (b <= bucket)
			index->start[b++] = (uint32_t)i;
	}
	while (b <= buckets)
		index->start[b++] = (uint32_t)count;
}

static int bucket_index_build(struct bucket_index *index, unsigned skip, unsigned key_bits,
			      const uint64_t *windows, size_t count)
{
	index->skip = skip;
	index->bits = bucket_bits_for(count, key_bits - skip);
	index->start = malloc((bucket_count(index) + 1) * sizeof(*index->start));
	if (!index->start)
		return 0;
	fill_bucket_starts(index, windows, count);
	return 1;
}

/* The builder's array, given to the set without its unused tail. */
static void *take_array(void *array, size_t count, size_t size)
{
	void *shrunk;

	if (count == 0) {
		free(array);
		return NULL;
	}
	shrunk = realloc(array, count * size);
	return shrunk ? shrunk : array;
}

/* Merge the ranges in place and take them; the index needs memory. */
static int v4_table_build(struct v4_table *table, struct v4_range *ranges, size_t count)
{
	uint64_t *windows;
	unsigned skip;
	int ok;

	table->count = v4_merge(ranges, count);
	table->ranges = take_array(ranges, table->count, sizeof(*ranges));
	windows = malloc((table->count ? table->count : 1) * sizeof(*windows));
	if (!windows)
		return 0;
	ranges = table->ranges;
	skip = table->count ? v4_common_bits(ranges[0].first, ranges[table->count - 1].last) : 32;
	for (size_t i = 0; i < table->count; i++)
		windows[i] = v4_window(ranges[i].first, skip);
	ok = bucket_index_build(&table->index, skip, 32, windows, table->count);
	free(windows);
	return ok;
}

static int v6_table_build(struct v6_table *table, struct v6_range *ranges, size_t count)
{
	uint64_t *windows;
	unsigned skip;
	int ok;

	table->count = v6_merge(ranges, count);
	table->ranges = take_array(ranges, table->count, sizeof(*ranges));
	windows = malloc((table->count ? table->count : 1) * sizeof(*windows));
	if (!windows)
		return 0;
	ranges = table->ranges;
	skip = table->count ? v6_common_bits(ranges[0].first, ranges[table->count - 1].last) : 128;
	for (size_t i = 0; i < table->count; i++)
		windows[i] = v6_window(ranges[i].first, skip);
	ok = bucket_index_build(&table->index, skip, 128, windows, table->count);
	free(windows);
	return ok;
}

static size_t table_memory(size_t count, size_t range_size, const struct bucket_index *index)
{
	return count * range_size + (bucket_count(index) + 1) * sizeof(uint32_t);
}

struct dnsf_cidr_set *dnsf_cidr_set_build(struct dnsf_cidr_builder *builder,
					  struct dnsf_errors *errors)
{
	struct dnsf_cidr_set *set = calloc(1, sizeof(*set));

	if (!set)
		goto fail;
	set->prefix_count = builder->prefix_count;
	/* the tables take the builder's arrays, whatever happens next */
	struct v4_range *v4 = builder->v4;
	struct v6_range *v6 = builder->v6;
	builder->v4 = NULL;
	builder->v6 = NULL;
	set->v6.ranges = v6; /* freed with the set when the IPv4 table fails */
	if (!v4_table_build(&set->v4, v4, builder->v4_count) ||
	    !v6_table_build(&set->v6, v6, builder->v6_count))
		goto fail;
	set->memory = sizeof(*set) +
		      table_memory(set->v4.count, sizeof(struct v4_range), &set->v4.index) +
		      table_memory(set->v6.count, sizeof(struct v6_range), &set->v6.index);
	dnsf_cidr_builder_free(builder);
	return set;
fail:
	dnsf_errors_add_kind(errors, DNSF_ERROR_MEMORY,
			     "out of memory building the opt-out network set "
			     "of %zu prefixes",
			     builder->prefix_count);
	dnsf_cidr_builder_free(builder);
	dnsf_cidr_set_free(set);
	return NULL;
}

void dnsf_cidr_set_free(struct dnsf_cidr_set *set)
{
	if (!set)
		return;
	free(set->v4.ranges);
	free(set->v4.index.start);
	free(set->v6.ranges);
	free(set->v6.index.start);
	free(set);
}

/* ---- lookup ---- */

static int v4_contains(const struct v4_table *table, uint32_t key)
{
	const struct bucket_index *index = &table->index;
	size_t bucket, low, high;

	if (table->count == 0 || key < table->ranges[0].first ||
	    key > table->ranges[table->count - 1].last)
		return 0;
	bucket = bucket_of(index, v4_window(key, index->skip));
	low = index->start[bucket];
	high = index->start[bucket + 1];
	/* the last range starting at or before key is low - 1 afterwards */
	while (low < high) {
		size_t middle = low + (high - low) / 2;
		if (table->ranges[middle].first <= key)
			low = middle + 1;
		else
			high = middle;
	}
	return low > 0 && key <= table->ranges[low - 1].last;
}

static int v6_contains(const struct v6_table *table, struct v6_key key)
{
	const struct bucket_index *index = &table->index;
	size_t bucket, low, high;

	if (table->count == 0 || v6_compare(key, table->ranges[0].first) < 0 ||
	    v6_compare(key, table->ranges[table->count - 1].last) > 0)
		return 0;
	bucket = bucket_of(index, v6_window(key, index->skip));
	low = index->start[bucket];
	high = index->start[bucket + 1];
	while (low < high) {
		size_t middle = low + (high - low) / 2;
		if (v6_compare(table->ranges[middle].first, key) <= 0)
			low = middle + 1;
		else
			high = middle;
	}
	return low > 0 && v6_compare(key, table->ranges[low - 1].last) <= 0;
}

int dnsf_cidr_set_contains(const struct dnsf_cidr_set *set, int family, const void *address)
{
	const uint8_t *bytes = address;

	if (!set)
		return 0;
	if (family == AF_INET)
		return v4_contains(&set->v4, load32(bytes));
	if (family != AF_INET6)
		return 0;
	if (is_v4_mapped(bytes))
		return v4_contains(&set->v4, load32(bytes + 12));
	return v6_contains(&set->v6, load_v6(bytes));
}

size_t dnsf_cidr_set_memory(const struct dnsf_cidr_set *set)
{
	return set->memory;
}

size_t dnsf_cidr_set_prefix_count(const struct dnsf_cidr_set *set)
{
	return set->prefix_count;
}

size_t dnsf_cidr_set_range_count(const struct dnsf_cidr_set *set, int family)
{
	if (family == AF_INET)
		return set->v4.count;
	return family == AF_INET6 ? set->v6.count : 0;
}

/* ---- invariants ---- */

/* start[] ascending from 0 to count. */
static int bucket_index_check(const struct bucket_index *index, size_t count, const char **why)
{
	size_t buckets = bucket_count(index);

	if (index->start[0] != 0 || index->start[buckets] != count) {
		*why = "bucket index does not span all ranges";
		return 0;
	}
	for (size_t b = 0; b < buckets; b++)
		if (index->start[b] > index->start[b + 1]) {
			*why = "bucket index not ascending";
			return 0;
		}
	return 1;
}

/* Range i, whose first key has this window, lies in its own bucket. */
static int range_in_bucket(const struct bucket_index *index, uint64_t window, size_t i,
			   const char **why)
{
	size_t bucket = bucket_of(index, window);

	if (i < index->start[bucket] || i >= index->start[bucket + 1]) {
		*why = "range outside its bucket";
		return 0;
	}
	return 1;
}

static int v4_table_check(const struct v4_table *t, const char **why)
{
	const struct v4_range *r = t->ranges;

	if (!bucket_index_check(&t->index, t->count, why))
		return 0;
	if (t->count && t->index.skip != v4_common_bits(r[0].first, r[t->count - 1].last)) {
		*why = "IPv4 index skips a wrong number of bits";
		return 0;
	}
	for (size_t i = 0; i < t->count; i++) {
		if (r[i].first > r[i].last ||
		    (i > 0 && (uint64_t)r[i - 1].last + 1 >= r[i].first)) {
			*why = "IPv4 ranges not ordered, disjoint and apart";
			return 0;
		}
		if (!range_in_bucket(&t->index, v4_window(r[i].first, t->index.skip), i, why))
			return 0;
	}
	return 1;
}

static int v6_table_check(const struct v6_table *t, const char **why)
{
	const struct v6_range *r = t->ranges;

	if (!bucket_index_check(&t->index, t->count, why))
		return 0;
	if (t->count && t->index.skip != v6_common_bits(r[0].first, r[t->count - 1].last)) {
		*why = "IPv6 index skips a wrong number of bits";
		return 0;
	}
	for (size_t i = 0; i < t->count; i++) {
		if (v6_compare(r[i].first, r[i].last) > 0 ||
		    (i > 0 && (v6_is_max(r[i - 1].last) ||
			       v6_compare(v6_next(r[i - 1].last), r[i].first) >= 0))) {
			*why = "IPv6 ranges not ordered, disjoint and apart";
			return 0;
		}
		if (!range_in_bucket(&t->index, v6_window(r[i].first, t->index.skip), i, why))
			return 0;
	}
	return 1;
}

int dnsf_cidr_set_check(const struct dnsf_cidr_set *set, const char **why)
{
	*why = "ok";
	if (set->v4.count + set->v6.count > set->prefix_count) {
		*why = "more ranges than prefixes";
		return 0;
	}
	return v4_table_check(&set->v4, why) && v6_table_check(&set->v6, why);
}
