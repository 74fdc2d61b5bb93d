/*
 * trie.c - immutable path-compressed radix trie in one arena, children
 * found through a 64-bit bitmap and popcount (see trie.h).
 */
#include "dnsfilter/trie.h"

#include <stdlib.h>
#include <string.h>

/** Node header; the variable parts follow (see trie.h). */
struct trie_node {
	/** NODE_VALUE: a key ends here; NODE_CHILDREN: a bitmap follows */
	uint8_t flags;
	/** bytes of compressed path consumed at this node */
	uint8_t skip_length;
	/** unused, zero */
	uint16_t reserved;
};

_Static_assert(sizeof(struct trie_node) == 4, "node header is 4 bytes");

#define NODE_VALUE 1u
#define NODE_CHILDREN 2u

#define ROOT_OFFSET 0
/** Symbol of bytes outside the alphabet: never a child. */
#define NO_SYMBOL 63

/* Byte -> symbol: label end 0, '-' 1, '0'-'9' 2-11, '_' 12, 'a'-'z' 13-38. */
#define NS NO_SYMBOL
static const uint8_t symbol_of[256] = {
	0,  NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS,
	NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS,
	NS, 1,  NS, NS, 2,  3,  4,  5,  6,  7,  8,  9,  10, 11, NS, NS, NS, NS, NS, NS, NS, NS,
	NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS,
	NS, NS, NS, NS, NS, NS, NS, 12, NS, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
	26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, NS, NS, NS, NS, NS, NS, NS, NS, NS,
	NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS,
	NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS,
	NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS,
	NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS,
	NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS,
	NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS, NS,
};
#undef NS

/* Layout after the header: [bitmap: 2 words if it has children]
 * [value: 1 word if it has one] [skip bytes] [pad to 4] [child offsets]. */
static size_t node_size(size_t has_value, size_t children, size_t skip)
{
	size_t size = sizeof(struct trie_node) + (children ? 8 : 0) + 4 * has_value + skip;
	size = (size + 3) & ~(size_t)3;
	return size + 4 * children;
}

static const struct trie_node *node_at(const uint8_t *arena, uint32_t offset)
{
	return (const struct trie_node *)(const void *)(arena + offset);
}

static const uint32_t *node_words(const struct trie_node *node)
{
	return (const uint32_t *)(const void *)(node + 1);
}

static uint64_t node_bitmap(const struct trie_node *node)
{
	if (!(node->flags & NODE_CHILDREN))
		return 0;
	return (uint64_t)node_words(node)[1] << 32 | node_words(node)[0];
}

static uint32_t node_value(const struct trie_node *node)
{
	return node_words(node)[node->flags & NODE_CHILDREN ? 2 : 0];
}

static const uint8_t *node_skip(const struct trie_node *node)
{
	size_t words = (node->flags & NODE_CHILDREN ? 2 : 0) + (node->flags & NODE_VALUE);
	return (const uint8_t *)(node_words(node) + words);
}

static const uint32_t *node_children(const struct trie_node *node)
{
	size_t offset = (size_t)(node_skip(node) - (const uint8_t *)node) + node->skip_length;
	offset = (offset + 3) & ~(size_t)3;
	return (const uint32_t *)(const void *)((const uint8_t *)node + offset);
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
static size_t common_length(const struct dnsf_trie_item *x, const struct dnsf_trie_item *y,
			    size_t depth)
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
 * Children are built after their parent, so they lie after it in the arena.
 */
static int build_node(struct builder *b, size_t first, size_t last, size_t depth,
		      uint32_t *offset_out)
{
	const struct dnsf_trie_item *items = b->items;
	size_t skip = common_length(&items[first], &items[last - 1], depth);
	size_t end = depth + skip;
	size_t has_value = items[first].length == end;
	size_t children = 0, start = first + has_value;
	uint64_t bitmap = 0;
	uint32_t offset;

	if (skip > 255)
		return 0;
	for (size_t i = start; i < last; i++)
		if (i == start || items[i].key[end] != items[i - 1].key[end]) {
			children++;
			bitmap |= (uint64_t)1 << symbol_of[items[i].key[end]];
		}
	if (!reserve(b, node_size(has_value, children, skip), &offset))
		return 0;
	{
		struct trie_node *node = (struct trie_node *)(void *)(b->arena + offset);
		uint32_t *words = (uint32_t *)(void *)(node + 1);
		node->flags =
		    (uint8_t)((has_value ? NODE_VALUE : 0) | (children ? NODE_CHILDREN : 0));
		node->skip_length = (uint8_t)skip;
		if (children) {
			*words++ = (uint32_t)bitmap;
			*words++ = (uint32_t)(bitmap >> 32);
		}
		if (has_value)
			*words = items[first].value;
		memcpy((uint8_t *)node_skip(node), items[first].key + depth, skip);
	}
	/* Children in byte order, which is symbol order; the arena may move,
	 * so the node is found again by offset after each child. */
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
		i = j;
	}
	*offset_out = offset;
	return 1;
}

/* Sorted, unique, non-empty, and every byte has a symbol. Symbols rise
 * with byte values, so byte order and symbol order agree. */
static int items_valid(const struct dnsf_trie_item *items, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		if (items[i].length == 0 || items[i].length > 255)
			return 0;
		for (size_t j = 0; j < items[i].length; j++)
			if (symbol_of[items[i].key[j]] == NO_SYMBOL)
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

int dnsf_trie_build(struct dnsf_trie *trie, const struct dnsf_trie_item *items, size_t count)
{
	struct builder b = { .items = items };
	uint32_t root;

	memset(trie, 0, sizeof(*trie));
	if (count == 0)
		return 1;
	if (!items_valid(items, count))
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

size_t dnsf_trie_walk(const struct dnsf_trie *trie, const uint8_t *key, size_t length,
		      struct dnsf_trie_match *matches, size_t max_matches)
{
	size_t found = 0, pos = 0;
	uint32_t offset = ROOT_OFFSET;

	if (!trie->arena)
		return 0;
	for (;;) {
		const struct trie_node *node = node_at(trie->arena, offset);
		const uint8_t *skip = node_skip(node);
		size_t skip_length = node->skip_length;
		if (pos + skip_length > length)
			return found;
		/* skips are short: a plain loop beats a memcmp call */
		for (size_t i = 0; i < skip_length; i++)
			if (skip[i] != key[pos + i])
				return found;
		pos += skip_length;
		if ((node->flags & NODE_VALUE) && found < max_matches) {
			matches[found].value = node_value(node);
			matches[found].length = (uint32_t)pos;
			found++;
		}
		if (pos == length)
			return found;
		uint64_t bitmap = node_bitmap(node);
		uint64_t bit = (uint64_t)1 << symbol_of[key[pos]];
		if (!(bitmap & bit))
			return found;
		offset = node_children(node)[__builtin_popcountll(bitmap & (bit - 1))];
		pos++;
	}
}

/* Symbol -> byte, the inverse of symbol_of. */
static uint8_t byte_of_symbol(unsigned symbol)
{
	if (symbol == 0)
		return 0;
	if (symbol == 1)
		return '-';
	if (symbol <= 11)
		return (uint8_t)('0' + symbol - 2);
	if (symbol == 12)
		return '_';
	return (uint8_t)('a' + symbol - 13);
}

struct foreach_walk {
	uint8_t key[256];
	void (*fn)(const uint8_t *key, size_t length, uint32_t value, void *context);
	void *context;
};

static void foreach_node(const struct dnsf_trie *trie, uint32_t offset, size_t depth,
			 struct foreach_walk *walk)
{
	const struct trie_node *node = node_at(trie->arena, offset);
	uint64_t bitmap = node_bitmap(node);

	if (depth + node->skip_length > 255)
		return; /* never in a checked trie */
	memcpy(walk->key + depth, node_skip(node), node->skip_length);
	depth += node->skip_length;
	if (node->flags & NODE_VALUE)
		walk->fn(walk->key, depth, node_value(node), walk->context);
	if (depth >= 255)
		return;
	const uint32_t *children = node_children(node);
	for (size_t i = 0; bitmap; i++, bitmap &= bitmap - 1) {
		walk->key[depth] = byte_of_symbol((unsigned)__builtin_ctzll(bitmap));
		foreach_node(trie, children[i], depth + 1, walk);
	}
}

void dnsf_trie_foreach(const struct dnsf_trie *trie,
		       void (*fn)(const uint8_t *key, size_t length, uint32_t value, void *context),
		       void *context)
{
	struct foreach_walk walk;

	if (!trie->arena)
		return;
	walk.fn = fn;
	walk.context = context;
	foreach_node(trie, ROOT_OFFSET, 0, &walk);
}

/* Invariant walk; depth-first, depth bounded by the key length. */
/* What a check walk counts and asks. */
struct check_walk {
	size_t keys, nodes;
	int (*value_ok)(uint32_t value, void *context);
	void *context;
};

static int check_node(const struct dnsf_trie *trie, uint32_t offset, size_t depth, int is_root,
		      struct check_walk *walk, const char **why)
{
	if (offset % 4 != 0 || offset + sizeof(struct trie_node) > trie->arena_size) {
		*why = "node offset outside the arena or misaligned";
		return 0;
	}
	const struct trie_node *node = node_at(trie->arena, offset);
	uint64_t bitmap = node_bitmap(node);
	size_t children = (size_t)__builtin_popcountll(bitmap);
	int has_value = (node->flags & NODE_VALUE) != 0;
	if (offset + node_size(has_value, children, node->skip_length) > trie->arena_size) {
		*why = "node extends past the arena";
		return 0;
	}
	if ((node->flags & ~(NODE_VALUE | NODE_CHILDREN)) || node->reserved != 0 ||
	    (bitmap >> NO_SYMBOL) != 0 || ((node->flags & NODE_CHILDREN) && !children)) {
		*why = "bad node header";
		return 0;
	}
	depth += node->skip_length;
	if (depth > 255) {
		*why = "key longer than 255 bytes";
		return 0;
	}
	for (size_t i = 0; i < node->skip_length; i++)
		if (symbol_of[node_skip(node)[i]] == NO_SYMBOL) {
			*why = "skip byte outside the alphabet";
			return 0;
		}
	if (!has_value && children == 0) {
		*why = "leaf without a value";
		return 0;
	}
	if (!is_root && !has_value && children < 2) {
		*why = "needless node: no value and a single child";
		return 0;
	}
	if (has_value && walk->value_ok && !walk->value_ok(node_value(node), walk->context)) {
		*why = "a value the caller does not accept";
		return 0;
	}
	walk->keys += (size_t)has_value;
	walk->nodes += 1;
	for (size_t i = 0; i < children; i++) {
		if (node_children(node)[i] <= offset) {
			*why = "child placed before its parent";
			return 0;
		}
		if (!check_node(trie, node_children(node)[i], depth + 1, 0, walk, why))
			return 0;
	}
	return 1;
}

int dnsf_trie_check(const struct dnsf_trie *trie, const char **why)
{
	return dnsf_trie_check_values(trie, NULL, NULL, why);
}

int dnsf_trie_check_values(const struct dnsf_trie *trie, int (*value_ok)(uint32_t, void *),
			   void *context, const char **why)
{
	struct check_walk walk = { 0, 0, value_ok, context };

	*why = "ok";
	if (!trie->arena) {
		if (trie->key_count != 0) {
			*why = "keys recorded but no arena";
			return 0;
		}
		return 1;
	}
	if (!check_node(trie, ROOT_OFFSET, 0, 1, &walk, why))
		return 0;
	if (walk.keys != trie->key_count || walk.nodes != trie->node_count) {
		*why = "key or node count differs from the recorded one";
		return 0;
	}
	return 1;
}
