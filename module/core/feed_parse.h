/*
 * feed_parse.h - what the feed parser (feed.c) hands the index builder
 * (index.c); private to the core.
 *
 * The parser checks every field and turns every name of the entries and of
 * the allow list into a record: the name's key, in a pool of key bytes,
 * what kind of listing it is and which entry lists it. The builder sorts
 * the records, so the records of one name are adjacent, and makes them the
 * trie and the rule lists of the index.
 */
#ifndef DNSFILTER_FEED_PARSE_H
#define DNSFILTER_FEED_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "dnsfilter/error.h"
#include "dnsfilter/feed.h"

/** Kinds of name record, in the order they sort within one name. */
enum dnsf_record_kind {
	DNSF_RECORD_EXACT = 0,
	DNSF_RECORD_WILDCARD = 1,
	DNSF_RECORD_ALLOW_EXACT = 2,
	DNSF_RECORD_ALLOW_WILDCARD = 3,
};

/** One name of an entry or of the allow list. */
struct dnsf_record {
	/** the key's first 8 bytes, big-endian, zero padded: most sort
	 * comparisons are decided by it without touching the key pool */
	uint64_t prefix;
	/** offset of the key in the key pool */
	uint32_t key_offset;
	/** key length */
	uint8_t key_length;
	/** enum dnsf_record_kind */
	uint8_t kind;
	/** entry index (entries only) */
	uint32_t entry;
};

/** A feed that passed validation. */
struct dnsf_parsed_feed {
	/** the feed's serial, 0 when has_serial is 0 */
	uint64_t serial;
	/** 1 when the feed carried a serial */
	int has_serial;
	/** the feed's "generated" text (malloc'd), or NULL */
	char *generated;
	/** entries in feed order (malloc'd, with their strings) */
	struct dnsf_entry *entries;
	/** number of entries */
	size_t entry_count;
	/** exact names of entries, wildcard names of entries, allow names */
	size_t exact_count, wildcard_count, allow_count;
	/** a record a name, in feed order (malloc'd) */
	struct dnsf_record *records;
	/** records used and allocated */
	size_t record_count, record_capacity;
	/** the key pool the records point into (malloc'd) */
	uint8_t *keys;
	/** bytes used and allocated in keys */
	size_t keys_size, keys_capacity;
};

/**
 * Parse and validate a feed.
 * @param text: the feed bytes (need not be NUL-terminated).
 * @param length: number of bytes.
 * @param limits: limits, or NULL for the defaults.
 * @param feed: filled in when valid; free with dnsf_parsed_feed_free.
 * @param errors: every problem found is added here.
 * @return 1 when valid, 0 when not or when memory ran out (errors say
 *   which; feed then holds nothing).
 */
int dnsf_feed_parse(const char *text, size_t length, const struct dnsf_feed_limits *limits,
		    struct dnsf_parsed_feed *feed, struct dnsf_errors *errors);

/** Free what a parsed feed still holds and zero it. */
void dnsf_parsed_feed_free(struct dnsf_parsed_feed *feed);

/** Free count entries and their strings. NULL is allowed. */
void dnsf_entries_free(struct dnsf_entry *entries, size_t count);

#endif
