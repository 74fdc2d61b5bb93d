/*
 * dnsfilter/trie.h - an immutable, path-compressed radix trie over byte keys.
 *
 * Built once from sorted keys into one arena and never changed afterwards,
 * so any number of threads may read it without locks; freeing it is one
 * call. Each stored key carries a 32-bit value. A walk reports every stored
 * key that is a prefix of the query key, shortest first, which with name keys
 * (dnsfilter/name.h) means every listed parent domain of a query name.
 *
 * Stored keys use the alphabet of feed name keys only: the label end byte,
 * '-', '0'-'9', '_' and 'a'-'z' (39 symbols). That lets a node keep its
 * children as a 64-bit bitmap with a popcount rank, as Knot's qp-trie does:
 * nothing is stored for absent children, and the child of a byte is found
 * without a search. A query key may hold any byte; one outside the alphabet
 * simply has no child.
 *
 * Node layout in the arena (nodes 4-byte aligned), in the order a lookup
 * reads it, so a small node is one cache line:
 *   header (flags, skip_length: 4 bytes) | uint64 bitmap (if it has children)
 *   | uint32 value (if it has one) | uint8 skip[skip_length] | pad to 4
 *   | uint32 child offsets[popcount]
 * A leaf (most nodes) is thus a header, its value and its skip bytes.
 * A node consumes its skip bytes; then, if it has a value, the bytes
 * consumed so far are a stored key; then the next byte selects a child,
 * and that byte is consumed on the way down.
 */
#ifndef DNSFILTER_TRIE_H
#define DNSFILTER_TRIE_H

#include <stddef.h>
#include <stdint.h>

/** One key to store. */
struct dnsf_trie_item {
	/** key bytes, not owned */
	const uint8_t *key;
	/** key length, at most 255 */
	uint32_t length;
	/** value stored with the key */
	uint32_t value;
};

/** The trie. */
struct dnsf_trie {
	/** all nodes; NULL for an empty trie */
	uint8_t *arena;
	/** bytes used in arena */
	size_t arena_size;
	/** number of keys stored */
	size_t key_count;
	/** number of nodes */
	size_t node_count;
};

/** A stored key found on a walk. */
struct dnsf_trie_match {
	/** its value */
	uint32_t value;
	/** its length: the number of query key bytes it covers */
	uint32_t length;
};

/**
 * Build a trie.
 * @param trie: filled in; free with dnsf_trie_free.
 * @param items: keys sorted by memcmp order (a shorter key before the
 *   longer keys it prefixes), no duplicates, no empty key, every byte in
 *   the alphabet (see above).
 * @param count: number of items.
 * @return 1 on success; 0 when out of memory or the items are not sorted,
 *   unique and in the alphabet (the trie is then empty).
 */
int dnsf_trie_build(struct dnsf_trie *trie, const struct dnsf_trie_item *items, size_t count);

/**
 * Free the trie's memory; the trie is then empty.
 */
void dnsf_trie_free(struct dnsf_trie *trie);

/**
 * Find the stored keys that are prefixes of key (the key itself included).
 * @param trie: the trie.
 * @param key: query key.
 * @param length: its length.
 * @param matches: out, shortest first.
 * @param max_matches: capacity of matches.
 * @return number of matches written.
 */
size_t dnsf_trie_walk(const struct dnsf_trie *trie, const uint8_t *key, size_t length,
		      struct dnsf_trie_match *matches, size_t max_matches);

/**
 * Call fn for every key of the trie, in key order (the order the builder
 * sorts by), with its value. The key passed is valid during the call only.
 * Recursion depth is bounded by the key length (255).
 */
void dnsf_trie_foreach(const struct dnsf_trie *trie,
		       void (*fn)(const uint8_t *key, size_t length, uint32_t value, void *context),
		       void *context);

/**
 * Check the structure: offsets inside the arena, children placed after
 * their parent, every leaf holds a value, no needless node (a node without a
 * value has two or more children), key and node counts as recorded.
 * @param why: on failure, a static description.
 * @return 1 when every invariant holds.
 */
int dnsf_trie_check(const struct dnsf_trie *trie, const char **why);

/**
 * dnsf_trie_check, and every stored value must please value_ok (for a
 * trie read from a file: its values must be valid where they point).
 */
int dnsf_trie_check_values(const struct dnsf_trie *trie, int (*value_ok)(uint32_t, void *),
			   void *context, const char **why);

#endif
