/*
 * trie.c - immutable path-compressed radix trie in one arena.
 */
#include "dnsfilter/trie.h"

#include <stdlib.h>
#include <string.h>

/** Node header; the variable parts follow (see trie.h). */
struct trie_node {
	/** 1 when a key ends at this node */
	uint8_t has_value;
	/** bytes of compressed path consumed at this node */
	uint8_t skip_length;
	/** number of children */
	uint16_t child_count;
};

_Static_assert(sizeof(struct trie_node) == 4, "node header is 4 bytes");

#define ROOT_OFFSET 0

static size_t node_size(size_t has_value, size_t children, size_t skip)
{
	size_t size = sizeof(struct trie_node) + 4 * has_value + 5 * children +
		      skip;
	return (size + 3) & ~(size_t)3;
}

static const struct trie_node *node_at(const uint8_t *arena, uint32_t offset)
{
	return (const struct trie_node *)(const void *)(arena + offset);
}

static const uint32_t *node_words(const struct trie_node *node)
{
	return (const uint32_t *)(const void *)(node + 1);
}

static const uint32_t *node_children(const struct trie_node *node)
{
	return node_words(node) + node->has_value;
}

static const uint8_t *node_child_bytes(const struct trie_node *node)
{
	return (const uint8_t *)(node_children(node) + node->child_count);
}

static const uint8_t *node_skip(const struct trie_node *node)
{
	return node_child_bytes(node) + node->child_count;
}

/* Builder: a growable arena. */
struct builder {
	uint8_t *arena;
	size_t size;
	size_t capacity;
	size_t nodes;
	const struct dnsf_trie_item *items;
};

static int reserve(struct builder *b, size_t bytes, uint32_t *offset)
{
	if (b->size + bytes > UINT32_MAX)
		return 0;
	if (b->size + bytes > b->capacity) {
		size_t capacity = b->capacity ? b->capacity : 4096;
		while (capacity < b->size + bytes)
			capacity *= 2;
		uint8_t *grown = realloc(b->arena, capacity);
		if (!grown)
			return 0;
		b->arena = grown;
		b->capacity = capacity;
	}
	*offset = (uint32_t)b->size;
	memset(b->arena + b->size, 0, bytes);
	b->size += bytes;
	b->nodes++;
	return 1;
}

/* Length of the common prefix of two keys from position depth. */
static size_t common_length(const struct dnsf_trie_item *x,
			    const struct dnsf_trie_item *y, size_t depth)
{
	size_t n = depth;
	size_t limit = x->length < y->length ? x->length : y->length;
	while (n < limit && x->key[n] == y->key[n])
		n++;
	return n - depth;
}

/*
 * Build the node for items[first, last), which all share their first depth
 * bytes. Sorted order makes the common prefix of the group that of its first
 * and last items. Recursion depth is bounded by the key length (255).
 */
static int build_node(struct builder *b, size_t first, size_t last,
		      size_t depth, uint32_t *offset_out)
{
	const struct dnsf_trie_item *items = b->items;
	size_t skip = common_length(&items[first], &items[last - 1], depth);
	size_t end = depth + skip;
	size_t has_value = items[first].length == end;
	size_t children = 0, start = first + has_value;
	uint32_t offset;

	if (skip > 255)
		return 0;
	for (size_t i = start; i < last; i++)
		if (i == start || items[i].key[end] != items[i - 1].key[end])
			children++;
	if (!reserve(b, node_size(has_value, children, skip), &offset))
		return 0;
	{
		struct trie_node *node = (struct trie_node *)(void *)(b->arena + offset);
		node->has_value = (uint8_t)has_value;
		node->skip_length = (uint8_t)skip;
		node->child_count = (uint16_t)children;
		if (has_value)
			((uint32_t *)(void *)(node + 1))[0] = items[first].value;
		memcpy((uint8_t *)node_skip(node), items[first].key + depth, skip);
	}
	/* Children; the arena may move, so offsets are recomputed each time. */
	size_t child = 0;
	for (size_t i = start; i < last; child++) {
		size_t j = i + 1;
		uint8_t byte = items[i].key[end];
		while (j < last && items[j].key[end] == byte)
			j++;
		uint32_t child_offset;
		if (!build_node(b, i, j, end + 1, &child_offset))
			return 0;
		struct trie_node *node = (struct trie_node *)(void *)(b->arena + offset);
		((uint32_t *)node_children(node))[child] = child_offset;
		((uint8_t *)node_child_bytes(node))[child] = byte;
		i = j;
	}
	*offset_out = offset;
	return 1;
}

static int items_sorted_unique(const struct dnsf_trie_item *items, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		if (items[i].length == 0 || items[i].length > 255)
			return 0;
		if (i == 0)
			continue;
		const struct dnsf_trie_item *x = &items[i - 1], *y = &items[i];
		size_t n = x->length < y->length ? x->length : y->length;
		int order = memcmp(x->key, y->key, n);
		if (order > 0 || (order == 0 && x->length >= y->length))
			return 0;
	}
	return 1;
}

int dnsf_trie_build(struct dnsf_trie *trie, const struct dnsf_trie_item *items,
		    size_t count)
{
	struct builder b = { .items = items };
	uint32_t root;

	memset(trie, 0, sizeof(*trie));
	if (count == 0)
		return 1;
	if (!items_sorted_unique(items, count))
		return 0;
	if (!build_node(&b, 0, count, 0, &root)) {
		free(b.arena);
		return 0;
	}
	/* Give back the unused tail of the arena. */
	uint8_t *shrunk = realloc(b.arena, b.size);
	trie->arena = shrunk ? shrunk : b.arena;
	trie->arena_size = b.size;
	trie->key_count = count;
	trie->node_count = b.nodes;
	return root == ROOT_OFFSET;
}

void dnsf_trie_free(struct dnsf_trie *trie)
{
	free(trie->arena);
	memset(trie, 0, sizeof(*trie));
}

size_t dnsf_trie_walk(const struct dnsf_trie *trie, const uint8_t *key,
		      size_t length, struct dnsf_trie_match *matches,
		      size_t max_matches)
{
	size_t found = 0, pos = 0;
	uint32_t offset = ROOT_OFFSET;

	if (!trie->arena)
		return 0;
	for (;;) {
		const struct trie_node *node = node_at(trie->arena, offset);
		size_t skip = node->skip_length;
		if (pos + skip > length ||
		    memcmp(node_skip(node), key + pos, skip) != 0)
			return found;
		pos += skip;
		if (node->has_value && found < max_matches) {
			matches[found].value = node_words(node)[0];
			matches[found].length = (uint32_t)pos;
			found++;
		}
		if (pos == length || node->child_count == 0)
			return found;
		const uint8_t *bytes = node_child_bytes(node);
		const uint8_t *hit = memchr(bytes, key[pos], node->child_count);
		if (!hit)
			return found;
		offset = node_children(node)[hit - bytes];
		pos++;
	}
}

/* Invariant walk; depth-first with an explicit bound on depth. */
static int check_node(const struct dnsf_trie *trie, uint32_t offset,
		      size_t depth, int is_root, size_t *keys, size_t *nodes,
		      const char **why)
{
	if (offset % 4 != 0 || offset + sizeof(struct trie_node) > trie->arena_size) {
		*why = "node offset outside the arena or misaligned";
		return 0;
	}
	const struct trie_node *node = node_at(trie->arena, offset);
	size_t size = node_size(node->has_value, node->child_count,
				node->skip_length);
	if (offset + size > trie->arena_size) {
		*why = "node extends past the arena";
		return 0;
	}
	if (node->has_value > 1) {
		*why = "bad has_value byte";
		return 0;
	}
	depth += node->skip_length;
	if (depth > 255) {
		*why = "key longer than 255 bytes";
		return 0;
	}
	if (!node->has_value && node->child_count == 0) {
		*why = "leaf without a value";
		return 0;
	}
	if (!is_root && !node->has_value && node->child_count < 2) {
		*why = "needless node: no value and a single child";
		return 0;
	}
	*keys += node->has_value;
	*nodes += 1;
	const uint8_t *bytes = node_child_bytes(node);
	for (size_t i = 0; i < node->child_count; i++) {
		if (i > 0 && bytes[i] <= bytes[i - 1]) {
			*why = "child bytes not strictly increasing";
			return 0;
		}
		if (node_children(node)[i] <= offset) {
			*why = "child placed before its parent";
			return 0;
		}
		if (!check_node(trie, node_children(node)[i], depth + 1, 0,
				keys, nodes, why))
			return 0;
	}
	return 1;
}

int dnsf_trie_check(const struct dnsf_trie *trie, const char **why)
{
	size_t keys = 0, nodes = 0;

	*why = "ok";
	if (!trie->arena) {
		if (trie->key_count != 0) {
			*why = "keys recorded but no arena";
			return 0;
		}
		return 1;
	}
	if (!check_node(trie, ROOT_OFFSET, 0, 1, &keys, &nodes, why))
		return 0;
	if (keys != trie->key_count || nodes != trie->node_count) {
		*why = "key or node count differs from the recorded one";
		return 0;
	}
	return 1;
}
