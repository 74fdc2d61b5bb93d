/*
 * index_internal.h - the index's layout, shared by its builder and lookups
 * (index.c) and its image file (image.c); private to the core.
 *
 * Nothing in it is a pointer into itself: entries name their strings by
 * offset, the trie's nodes their children by offset, a trie value is the
 * word offset of a name's rules. So the whole index can be written out as
 * one block and mapped back at any address.
 */
#ifndef DNSFILTER_INDEX_INTERNAL_H
#define DNSFILTER_INDEX_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "dnsfilter/index.h"
#include "dnsfilter/trie.h"

/*
 * An entry as the index keeps it: no pointer (the strings are offsets into
 * the index's string pool), so the index can be one position-independent
 * block of memory.
 */
struct index_entry {
	int64_t start, end;
	/** offsets in strings */
	uint32_t id, behavior;
	uint32_t fqdn_count;
	uint8_t action, force;
	uint8_t unused[2];
};

/* A loaded feed (include/dnsfilter/index.h): immutable once built. */
struct dnsf_index {
	/** a number no other index of this process had (dnsf_index_id) */
	uint64_t id;
	/** the feed's serial, 0 when has_serial is 0 */
	uint64_t serial;
	/** 1 when the feed carried a serial */
	int has_serial;
	/** the feed's "generated" text, or NULL */
	char *generated;
	/** entries in feed order (compact: see struct index_entry) */
	struct index_entry *entries;
	/** number of entries */
	size_t entry_count;
	/** the entries' ids and behaviours, each NUL-terminated */
	char *strings;
	/** bytes in strings */
	size_t strings_size;
	/** exact names of entries */
	size_t exact_count;
	/** wildcard names of entries */
	size_t wildcard_count;
	/** names in the allow list */
	size_t allow_count;
	/** the name trie; a value is the offset of the name's rules */
	struct dnsf_trie trie;
	/** per listed name: a header word and entry indexes (below) */
	uint32_t *rule_lists;
	/** words in rule_lists */
	size_t rule_words;
	/** bytes held, for reporting */
	size_t memory_bytes;
	/** an index read from an image file: the mapping everything above
	 * points into (freed with munmap), else NULL */
	void *mapping;
	/** its size */
	size_t mapping_size;
};

/*
 * The rules of one listed name, at the word offset its trie value gives in
 * index->rule_lists: a header word, then the entry indexes of the entries
 * listing the name itself, then those listing "*.name", each run in the
 * order that decides (block first, then earliest start, then feed order).
 * One lookup thus reads one small, contiguous record.
 */
#define RULES_EXACT_COUNT(header) ((header)&0x3fffu)
#define RULES_WILDCARD_COUNT(header) (((header) >> 14) & 0x3fffu)
#define RULES_ALLOW_EXACT (1u << 28)
#define RULES_ALLOW_BELOW (1u << 29)
/** Most entries one name may have, of each kind. */
#define RULES_MAX_COUNT 0x3fffu

/** A fresh dnsf_index id (index.c). */
uint64_t dnsf_index_new_id(void);

#endif
