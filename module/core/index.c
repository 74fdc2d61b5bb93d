/*
 * index.c - the index of a feed: built from the parsed feed's records, and
 * the lookups.
 *
 * The records of all names (feed.c, through feed_parse.h) are sorted, so
 * the records of one name are adjacent, and become one trie key whose
 * value points at that name's rules: a list of entries for the name
 * itself, one for "*.name", and allow flags. A lookup walks the trie once
 * and reads the rules of the names it passes.
 */
#include "dnsfilter/index.h"
#include "dnsfilter/file.h"
#include "dnsfilter/trie.h"
#include "feed_parse.h"
#include "index_internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

const char *dnsf_verdict_name(enum dnsf_verdict verdict)
{
	switch (verdict) {
	case DNSF_VERDICT_ALLOW:
		return "allow";
	case DNSF_VERDICT_BLOCK:
		return "block";
	case DNSF_VERDICT_MONITOR:
		return "monitor";
	default:
		return "none";
	}
}

/* Sort order of records: key, then kind, then the entry that should win. */
struct sort_context {
	const uint8_t *keys;
	const struct dnsf_entry *entries;
};

static int compare_records(const void *x, const void *y, void *context)
{
	const struct sort_context *c = context;
	const struct dnsf_record *a = x, *b = y;

	if (a->prefix != b->prefix)
		return a->prefix < b->prefix ? -1 : 1;
	size_t n = a->key_length < b->key_length ? a->key_length : b->key_length;
	int order =
	    n > 8 ? memcmp(c->keys + a->key_offset + 8, c->keys + b->key_offset + 8, n - 8) : 0;
	if (order)
		return order;
	if (a->key_length != b->key_length)
		return a->key_length < b->key_length ? -1 : 1;
	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	if (a->kind >= DNSF_RECORD_ALLOW_EXACT)
		return 0;
	const struct dnsf_entry *ea = &c->entries[a->entry], *eb = &c->entries[b->entry];
	if (ea->action != eb->action) /* block before monitor */
		return ea->action < eb->action ? -1 : 1;
	if (ea->start != eb->start)
		return ea->start < eb->start ? -1 : 1;
	return a->entry < b->entry ? -1 : (a->entry > b->entry);
}

static int same_key(const struct dnsf_parsed_feed *feed, const struct dnsf_record *a,
		    const struct dnsf_record *b)
{
	return a->key_length == b->key_length &&
	       memcmp(feed->keys + a->key_offset, feed->keys + b->key_offset, a->key_length) == 0;
}

/*
 * Rewrite the key pool in the records' sorted order, one copy per distinct
 * key: every later pass (grouping, trie build) then reads keys one after
 * another instead of jumping around a pool of tens of megabytes.
 */
static int sort_key_pool(struct dnsf_parsed_feed *feed)
{
	uint8_t *sorted = malloc(feed->keys_size + 1);
	struct dnsf_record previous = { 0 }; /* as it was, in the old pool */
	size_t size = 0;

	if (!sorted)
		return 0;
	for (size_t i = 0; i < feed->record_count; i++) {
		struct dnsf_record *record = &feed->records[i], old = *record;
		if (i > 0 && same_key(feed, &previous, &old)) {
			record->key_offset = feed->records[i - 1].key_offset;
			continue;
		}
		memcpy(sorted + size, feed->keys + old.key_offset, old.key_length);
		record->key_offset = (uint32_t)size;
		size += old.key_length;
		previous = old;
	}
	free(feed->keys);
	feed->keys = sorted;
	feed->keys_size = size;
	feed->keys_capacity = feed->keys_size + 1;
	return 1;
}

/* Write the rules of the name whose records start at records[i]; returns
 * the index past them, or 0 when a name has too many entries. */
static size_t write_rules(struct dnsf_index *index, const struct dnsf_parsed_feed *feed, size_t i,
			  size_t *word)
{
	const struct dnsf_record *records = feed->records, *first = &records[i];
	uint32_t *header = &index->rule_lists[(*word)++];
	uint32_t counts[2] = { 0, 0 };

	*header = 0;
	for (; i < feed->record_count && same_key(feed, first, &records[i]); i++) {
		const struct dnsf_record *record = &records[i];
		if (record->kind == DNSF_RECORD_ALLOW_EXACT) {
			*header |= RULES_ALLOW_EXACT;
		} else if (record->kind == DNSF_RECORD_ALLOW_WILDCARD) {
			*header |= RULES_ALLOW_BELOW;
		} else if (i == 0 || record->kind != records[i - 1].kind ||
			   record->entry != records[i - 1].entry ||
			   !same_key(feed, first, &records[i - 1])) {
			/* the same entry listing a name twice counts once */
			if (++counts[record->kind] > RULES_MAX_COUNT)
				return 0;
			index->rule_lists[(*word)++] = record->entry;
		}
	}
	*header |= counts[DNSF_RECORD_EXACT] | counts[DNSF_RECORD_WILDCARD] << 14;
	return i;
}

/* Turn the records into rule lists and the trie; 0 with the error said
 * when a name has too many entries or memory runs out. */
static int build_index(struct dnsf_index *index, struct dnsf_parsed_feed *feed,
		       struct dnsf_errors *errors)
{
	struct sort_context context = { feed->keys, feed->entries };
	struct dnsf_trie_item *items;
	size_t names = 0, words = 0, name = 0, word = 0;

	if (feed->record_count > 0)
		qsort_r(feed->records, feed->record_count, sizeof(*feed->records), compare_records,
			&context);
	if (!sort_key_pool(feed))
		goto out_of_memory;
	for (size_t i = 0; i < feed->record_count; i++)
		if (i == 0 || !same_key(feed, &feed->records[i - 1], &feed->records[i]))
			names++;
	words = names + feed->record_count; /* a header a name, a word a record at most */
	items = malloc((names + 1) * sizeof(*items));
	index->rule_lists = malloc((words + 1) * sizeof(*index->rule_lists));
	if (!items || !index->rule_lists) {
		free(items);
		goto out_of_memory;
	}
	for (size_t i = 0; i < feed->record_count; name++) {
		items[name].key = feed->keys + feed->records[i].key_offset;
		items[name].length = feed->records[i].key_length;
		items[name].value = (uint32_t)word;
		i = write_rules(index, feed, i, &word);
		if (i == 0) {
			dnsf_errors_add_kind(errors, DNSF_ERROR_LIMIT,
					     "a name is listed by more than %u entries",
					     RULES_MAX_COUNT);
			free(items);
			return 0;
		}
	}
	int built = dnsf_trie_build(&index->trie, items, names);
	free(items);
	if (!built)
		goto out_of_memory;
	index->rule_words = word;
	index->memory_bytes = sizeof(*index) + index->trie.arena_size +
			      word * sizeof(*index->rule_lists) +
			      index->entry_count * sizeof(*index->entries) + index->strings_size;
	return 1;
out_of_memory:
	dnsf_errors_add_kind(errors, DNSF_ERROR_MEMORY, "out of memory while building the index");
	return 0;
}

/* The parsed entries as the index keeps them: records and a string pool. */
static int compact_entries(struct dnsf_index *index, const struct dnsf_parsed_feed *feed,
			   struct dnsf_errors *errors)
{
	size_t size = 0, used = 0;

	for (size_t i = 0; i < feed->entry_count; i++)
		size += strlen(feed->entries[i].id) + strlen(feed->entries[i].behavior) + 2;
	if (size > UINT32_MAX) {
		dnsf_errors_add_kind(errors, DNSF_ERROR_LIMIT,
				     "the entries' ids and behaviours exceed 4 GiB");
		return 0;
	}
	index->entries = calloc(feed->entry_count + 1, sizeof(*index->entries));
	index->strings = malloc(size + 1);
	if (!index->entries || !index->strings) {
		dnsf_errors_add_kind(errors, DNSF_ERROR_MEMORY, "out of memory");
		return 0;
	}
	for (size_t i = 0; i < feed->entry_count; i++) {
		const struct dnsf_entry *from = &feed->entries[i];
		struct index_entry *to = &index->entries[i];
		size_t id_size = strlen(from->id) + 1, behavior_size = strlen(from->behavior) + 1;
		to->start = from->start;
		to->end = from->end;
		to->fqdn_count = from->fqdn_count;
		to->action = (uint8_t)from->action;
		to->force = (uint8_t)from->force;
		to->id = (uint32_t)used;
		memcpy(index->strings + used, from->id, id_size);
		used += id_size;
		to->behavior = (uint32_t)used;
		memcpy(index->strings + used, from->behavior, behavior_size);
		used += behavior_size;
	}
	index->strings_size = used;
	return 1;
}

static _Atomic uint64_t last_index_id;

uint64_t dnsf_index_new_id(void)
{
	return atomic_fetch_add(&last_index_id, 1) + 1;
}

uint64_t dnsf_index_id(const struct dnsf_index *index)
{
	return index->id;
}

int dnsf_memo_get(const struct dnsf_memo *memo, const struct dnsf_index *index, const uint8_t *name,
		  size_t length, int64_t now, struct dnsf_decision *decision)
{
	if (memo->length != length || length == 0 || memo->index_id != index->id ||
	    memo->now != now || memcmp(memo->name, name, length) != 0)
		return 0;
	*decision = memo->decision;
	return 1;
}

void dnsf_memo_put(struct dnsf_memo *memo, const struct dnsf_index *index, const uint8_t *name,
		   size_t length, int64_t now, const struct dnsf_decision *decision)
{
	if (length == 0 || length > sizeof(memo->name))
		return;
	memo->index_id = index->id;
	memo->now = now;
	memo->length = length;
	memcpy(memo->name, name, length);
	memo->decision = *decision;
}

struct dnsf_index *dnsf_index_from_buffer(const char *text, size_t length,
					  const struct dnsf_feed_limits *limits,
					  struct dnsf_errors *errors)
{
	struct dnsf_parsed_feed feed;
	struct dnsf_index *index;

	if (!dnsf_feed_parse(text, length, limits, &feed, errors))
		return NULL;
	index = calloc(1, sizeof(*index));
	if (!index) {
		dnsf_errors_add_kind(errors, DNSF_ERROR_MEMORY, "out of memory");
		dnsf_parsed_feed_free(&feed);
		return NULL;
	}
	/* the index keeps the header and the entries; the records and their
	 * keys go once the trie is built */
	index->id = dnsf_index_new_id();
	index->serial = feed.serial;
	index->has_serial = feed.has_serial;
	index->generated = feed.generated;
	index->entry_count = feed.entry_count;
	index->exact_count = feed.exact_count;
	index->wildcard_count = feed.wildcard_count;
	index->allow_count = feed.allow_count;
	feed.generated = NULL;
	if (!compact_entries(index, &feed, errors) || !build_index(index, &feed, errors)) {
		dnsf_parsed_feed_free(&feed);
		dnsf_index_free(index);
		return NULL;
	}
	dnsf_parsed_feed_free(&feed);
	return index;
}

struct dnsf_index *dnsf_index_from_file_hashed(const char *path,
					       const struct dnsf_feed_limits *limits,
					       uint8_t *feed_hash, struct dnsf_errors *errors)
{
	struct dnsf_feed_limits default_limits;
	struct dnsf_index *index;
	size_t length;
	char *text;

	if (!limits) {
		dnsf_feed_limits_default(&default_limits);
		limits = &default_limits;
	}
	/* messages follow the path in the caller's log line */
	if (!dnsf_file_read(path, limits->max_bytes, NULL, &text, &length, errors))
		return NULL;
	if (feed_hash)
		dnsf_feed_hash(text, length, feed_hash);
	index = dnsf_index_from_buffer(text, length, limits, errors);
	free(text);
	return index;
}

struct dnsf_index *dnsf_index_from_file(const char *path, const struct dnsf_feed_limits *limits,
					struct dnsf_errors *errors)
{
	return dnsf_index_from_file_hashed(path, limits, NULL, errors);
}

void dnsf_index_free(struct dnsf_index *index)
{
	if (!index)
		return;
	if (index->mapping) {
		if (index->mapping_size) /* else borrowed bytes */
			munmap(index->mapping, index->mapping_size);
		free(index);
		return;
	}
	free(index->entries);
	free(index->strings);
	free(index->generated);
	free(index->rule_lists);
	dnsf_trie_free(&index->trie);
	free(index);
}

/* The entry at i as callers see it. */
static void entry_view(const struct dnsf_index *index, size_t i, struct dnsf_entry *view)
{
	const struct index_entry *entry = &index->entries[i];

	view->id = index->strings + entry->id;
	view->behavior = index->strings + entry->behavior;
	view->start = entry->start;
	view->end = entry->end;
	view->action = (enum dnsf_action)entry->action;
	view->force = entry->force;
	view->fqdn_count = entry->fqdn_count;
	view->position = (uint32_t)i;
}

/* First active entry of a run of entry indexes, or -1. */
static long active_entry(const struct dnsf_index *index, const uint32_t *run, uint32_t count,
			 int64_t now)
{
	for (uint32_t i = 0; i < count; i++) {
		const struct index_entry *entry = &index->entries[run[i]];
		if (entry->start <= now && now < entry->end)
			return (long)run[i];
	}
	return -1;
}

void dnsf_index_decide(const struct dnsf_index *index, const struct dnsf_key *key, int64_t now,
		       struct dnsf_decision *decision)
{
	struct dnsf_trie_match matches[DNSF_KEY_MAX / 2 + 1];
	size_t count = dnsf_trie_walk(&index->trie, key->bytes, key->length, matches,
				      sizeof(matches) / sizeof(matches[0]));

	memset(decision, 0, sizeof(*decision));
	/* Allow beats everything: the name itself, or "*." of a parent. */
	for (size_t i = 0; i < count; i++) {
		uint32_t header = index->rule_lists[matches[i].value];
		int exact = matches[i].length == key->length;
		if ((exact && (header & RULES_ALLOW_EXACT)) ||
		    (!exact && (header & RULES_ALLOW_BELOW))) {
			decision->verdict = DNSF_VERDICT_ALLOW;
			decision->match_length = matches[i].length;
			return;
		}
	}
	/* Longest first: the name itself, then "*." of ever shorter parents. */
	for (size_t i = count; i-- > 0;) {
		const uint32_t *rules = &index->rule_lists[matches[i].value];
		uint32_t exact_count = RULES_EXACT_COUNT(rules[0]);
		int exact = matches[i].length == key->length;
		long entry = exact ? active_entry(index, rules + 1, exact_count, now)
				   : active_entry(index, rules + 1 + exact_count,
						  RULES_WILDCARD_COUNT(rules[0]), now);
		if (entry >= 0) {
			entry_view(index, (size_t)entry, &decision->entry);
			decision->verdict = decision->entry.action == DNSF_ACTION_MONITOR
						? DNSF_VERDICT_MONITOR
						: DNSF_VERDICT_BLOCK;
			decision->wildcard = !exact;
			decision->match_length = matches[i].length;
			return;
		}
	}
}

void dnsf_index_info(const struct dnsf_index *index, struct dnsf_index_info *info)
{
	info->serial = index->serial;
	info->has_serial = index->has_serial;
	info->generated = index->generated;
	info->entry_count = index->entry_count;
	info->exact_count = index->exact_count;
	info->wildcard_count = index->wildcard_count;
	info->allow_count = index->allow_count;
	info->memory_bytes = index->memory_bytes;
}

int dnsf_index_entry(const struct dnsf_index *index, size_t i, struct dnsf_entry *entry)
{
	if (i >= index->entry_count)
		return 0;
	entry_view(index, i, entry);
	return 1;
}

int64_t dnsf_index_next_start(const struct dnsf_index *index, int64_t after)
{
	int64_t next = INT64_MAX;

	for (size_t i = 0; index && i < index->entry_count; i++)
		if (index->entries[i].start > after && index->entries[i].start < next)
			next = index->entries[i].start;
	return next;
}

int dnsf_index_check(const struct dnsf_index *index, const char **why)
{
	return dnsf_trie_check(&index->trie, why);
}

/* Deltas (include/dnsfilter/index.h): a trie of names, no values. */
struct dnsf_delta {
	struct dnsf_trie trie;
};

/* The names collected for a delta: keys in one pool, by offset. */
struct delta_build {
	const struct dnsf_index *old, *new;
	int64_t after, until;
	uint8_t *pool;
	size_t pool_size, pool_capacity;
	struct dnsf_trie_item *items;
	size_t count, capacity;
	int failed, sorted;
};

static void delta_add(struct delta_build *b, const uint8_t *key, size_t length)
{
	if (b->failed)
		return;
	if (b->pool_size + length > b->pool_capacity) {
		size_t capacity = b->pool_capacity ? b->pool_capacity * 2 : 4096;
		while (capacity < b->pool_size + length)
			capacity *= 2;
		uint8_t *grown = realloc(b->pool, capacity);
		if (!grown) {
			b->failed = 1;
			return;
		}
		b->pool = grown;
		b->pool_capacity = capacity;
	}
	if (b->count == b->capacity) {
		size_t capacity = b->capacity ? b->capacity * 2 : 256;
		struct dnsf_trie_item *grown = realloc(b->items, capacity * sizeof(*grown));
		if (!grown) {
			b->failed = 1;
			return;
		}
		b->items = grown;
		b->capacity = capacity;
	}
	memcpy(b->pool + b->pool_size, key, length);
	/* the key is an offset until the pool stops moving */
	b->items[b->count].key = (const uint8_t *)(uintptr_t)b->pool_size;
	b->items[b->count].length = (uint32_t)length;
	b->items[b->count].value = 0;
	b->count++;
	b->pool_size += length;
}

/* The rules at value in index, or -1 when key is not a listed name. */
static long rules_of(const struct dnsf_index *index, const uint8_t *key, size_t length)
{
	struct dnsf_trie_match matches[DNSF_KEY_MAX / 2 + 1];
	size_t count = dnsf_trie_walk(&index->trie, key, length, matches,
				      sizeof(matches) / sizeof(matches[0]));

	if (count == 0 || matches[count - 1].length != length)
		return -1;
	return (long)matches[count - 1].value;
}

/* Do two names' rules decide alike (the same allow flags, and entries
 * alike in action and window, in the same order)? */
static int same_rules(const struct dnsf_index *a, uint32_t at_a, const struct dnsf_index *b,
		      uint32_t at_b)
{
	const uint32_t *ra = &a->rule_lists[at_a], *rb = &b->rule_lists[at_b];
	uint32_t count = RULES_EXACT_COUNT(ra[0]) + RULES_WILDCARD_COUNT(ra[0]);

	if (ra[0] != rb[0])
		return 0;
	for (uint32_t i = 1; i <= count; i++) {
		const struct index_entry *ea = &a->entries[ra[i]], *eb = &b->entries[rb[i]];
		if (ea->action != eb->action || ea->start != eb->start || ea->end != eb->end)
			return 0;
	}
	return 1;
}

static void delta_new_name(const uint8_t *key, size_t length, uint32_t value, void *context)
{
	struct delta_build *b = context;
	long old = b->old ? rules_of(b->old, key, length) : -1;

	if (old < 0 || !same_rules(b->new, value, b->old, (uint32_t)old))
		delta_add(b, key, length);
}

/* An allow-listed name of old that new does not allow as old did: names
 * below it may be blocked now. (Present in new with other rules: found by
 * delta_new_name already.) */
static void delta_old_allow(const uint8_t *key, size_t length, uint32_t value, void *context)
{
	struct delta_build *b = context;

	if (!(b->old->rule_lists[value] & (RULES_ALLOW_EXACT | RULES_ALLOW_BELOW)))
		return;
	if (rules_of(b->new, key, length) < 0) {
		delta_add(b, key, length);
		b->sorted = 0;
	}
}

static void delta_start(const uint8_t *key, size_t length, uint32_t value, void *context)
{
	struct delta_build *b = context;
	const uint32_t *rules = &b->new->rule_lists[value];
	uint32_t count = RULES_EXACT_COUNT(rules[0]) + RULES_WILDCARD_COUNT(rules[0]);

	for (uint32_t i = 1; i <= count; i++) {
		int64_t start = b->new->entries[rules[i]].start;
		if (start > b->after && start <= b->until) {
			delta_add(b, key, length);
			return;
		}
	}
}

static int compare_items(const void *x, const void *y)
{
	const struct dnsf_trie_item *a = x, *b = y;
	size_t n = a->length < b->length ? a->length : b->length;
	int order = memcmp(a->key, b->key, n);

	if (order)
		return order;
	return a->length < b->length ? -1 : (a->length > b->length);
}

/* The collected names as a delta; frees what the build held. */
static struct dnsf_delta *delta_finish(struct delta_build *b)
{
	struct dnsf_delta *delta = b->failed ? NULL : calloc(1, sizeof(*delta));
	size_t kept = 0;

	if (delta) {
		for (size_t i = 0; i < b->count; i++)
			b->items[i].key = b->pool + (uintptr_t)b->items[i].key;
		if (!b->sorted)
			qsort(b->items, b->count, sizeof(*b->items), compare_items);
		for (size_t i = 0; i < b->count; i++)
			if (kept == 0 || compare_items(&b->items[kept - 1], &b->items[i]) != 0)
				b->items[kept++] = b->items[i];
		if (kept && !dnsf_trie_build(&delta->trie, b->items, kept)) {
			free(delta);
			delta = NULL;
		}
	}
	free(b->items);
	free(b->pool);
	return delta;
}

struct dnsf_delta *dnsf_index_delta(const struct dnsf_index *old, const struct dnsf_index *new)
{
	struct delta_build b = { .old = old, .new = new, .sorted = 1 };

	/* the trie hands its keys out in sorted order */
	dnsf_trie_foreach(&new->trie, delta_new_name, &b);
	if (old)
		dnsf_trie_foreach(&old->trie, delta_old_allow, &b);
	return delta_finish(&b);
}

struct dnsf_delta *dnsf_index_starts(const struct dnsf_index *index, int64_t after, int64_t until)
{
	struct delta_build b = { .new = index, .after = after, .until = until, .sorted = 1 };

	dnsf_trie_foreach(&index->trie, delta_start, &b);
	return delta_finish(&b);
}

size_t dnsf_delta_count(const struct dnsf_delta *delta)
{
	return delta->trie.key_count;
}

int dnsf_delta_covers(const struct dnsf_delta *delta, const struct dnsf_key *key)
{
	struct dnsf_trie_match match;

	return dnsf_trie_walk(&delta->trie, key->bytes, key->length, &match, 1) > 0;
}

void dnsf_delta_free(struct dnsf_delta *delta)
{
	if (!delta)
		return;
	dnsf_trie_free(&delta->trie);
	free(delta);
}
