/*
 * dnsfilter/index.h - a feed built for lookups: the index.
 *
 * A feed is parsed, validated and built into an index in one call; the
 * index is immutable afterwards, so resolver threads read it without locks
 * while a newer one is being built. Its layout is private to
 * module/core/index.c; callers read it through the functions here.
 */
#ifndef DNSFILTER_INDEX_H
#define DNSFILTER_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "dnsfilter/error.h"
#include "dnsfilter/feed.h"
#include "dnsfilter/name.h"

/** A loaded feed, ready for lookups. Immutable once returned; opaque. */
struct dnsf_index;

/** What a loaded index holds, for logs and tools. */
struct dnsf_index_info {
	/** the feed's serial, 0 when has_serial is 0 */
	uint64_t serial;
	/** 1 when the feed carried a serial */
	int has_serial;
	/** the feed's "generated" text, or NULL; valid while the index is */
	const char *generated;
	/** entries, exact names, wildcard names, allow-listed names */
	size_t entry_count, exact_count, wildcard_count, allow_count;
	/** bytes held */
	size_t memory_bytes;
};

/** Fill info for an index. */
void dnsf_index_info(const struct dnsf_index *index, struct dnsf_index_info *info);

/**
 * The entry at position i in feed order.
 * @param entry: filled in; its strings point into the index (valid while
 *   it is).
 * @return 1, or 0 when i is not below entry_count.
 */
int dnsf_index_entry(const struct dnsf_index *index, size_t i, struct dnsf_entry *entry);

/** The earliest start of an entry later than after, or INT64_MAX. */
int64_t dnsf_index_next_start(const struct dnsf_index *index, int64_t after);

/** Walk the trie's invariants (tests, fuzzers). @return 1 when they hold,
 * else 0 with *why saying which failed. */
int dnsf_index_check(const struct dnsf_index *index, const char **why);

/**
 * Parse, validate and index a feed held in memory.
 * @param text: the feed bytes (need not be NUL-terminated).
 * @param length: number of bytes.
 * @param limits: limits, or NULL for the defaults.
 * @param errors: every problem found is added here.
 * @return the index, or NULL when the feed is invalid (errors say why) or
 *   memory ran out.
 */
struct dnsf_index *dnsf_index_from_buffer(const char *text, size_t length,
					  const struct dnsf_feed_limits *limits,
					  struct dnsf_errors *errors);

/**
 * Read a feed file and index it, as dnsf_index_from_buffer.
 * @param path: the feed file.
 */
struct dnsf_index *dnsf_index_from_file(const char *path, const struct dnsf_feed_limits *limits,
					struct dnsf_errors *errors);

/*
 * Images. An index can be written as one file and mapped back (mmap,
 * read-only, shared) instead of parsing its feed again: at a restart or a
 * reload with an unchanged feed, and on hosts that get the image with the
 * feed. An image names the feed it was built from by a content hash
 * (SHA-256 of the feed's bytes) and carries a format version and a
 * checksum of itself; a reader refuses, with a reason, any image that
 * fails a check (module/core/image.c), so a damaged one costs a parse,
 * never a crash.
 */

/** Bytes of a feed's content hash. */
#define DNSF_FEED_HASH_SIZE 32

/** The content hash (SHA-256) of a feed's bytes. */
void dnsf_feed_hash(const char *text, size_t length, uint8_t hash[DNSF_FEED_HASH_SIZE]);

/** dnsf_index_from_file, also setting feed_hash (DNSF_FEED_HASH_SIZE bytes,
 * or NULL) to the content hash of the bytes it read. */
struct dnsf_index *dnsf_index_from_file_hashed(const char *path,
					       const struct dnsf_feed_limits *limits,
					       uint8_t *feed_hash, struct dnsf_errors *errors);

/**
 * Write an index as an image file, whole or not at all (dnsf_file_replace).
 * @param feed_hash: the hash of the feed it was built from.
 * @return 1, or 0 with the reason in errors.
 */
int dnsf_index_write_image(const struct dnsf_index *index,
			   const uint8_t feed_hash[DNSF_FEED_HASH_SIZE], const char *path,
			   struct dnsf_errors *errors);

/**
 * Map an image file as an index.
 * @param feed_hash: the hash the image must carry, or NULL for any.
 * @return the index (free with dnsf_index_free), or NULL with the reason.
 */
struct dnsf_index *dnsf_index_from_image(const char *path, const uint8_t *feed_hash,
					 struct dnsf_errors *errors);

/**
 * dnsf_index_from_image on bytes in memory (8-byte aligned), which the
 * index borrows: they must outlive it. verify_checksum 0 skips the
 * whole-file checksum only (the fuzzer, to reach the other checks).
 */
struct dnsf_index *dnsf_index_from_image_bytes(const void *bytes, size_t size,
					       const uint8_t *feed_hash, int verify_checksum,
					       struct dnsf_errors *errors);

/** A number no other index of this process has had or will have: a
 * decision remembered with it is valid while it is (memos). */
uint64_t dnsf_index_id(const struct dnsf_index *index);

/** Free an index. NULL is allowed. */
void dnsf_index_free(struct dnsf_index *index);

/** What the feed says about a name. */
enum dnsf_verdict {
	/** no active entry matches */
	DNSF_VERDICT_NONE = 0,
	/** the name is in the allow list */
	DNSF_VERDICT_ALLOW,
	/** an active block entry matches */
	DNSF_VERDICT_BLOCK,
	/** an active monitor entry matches */
	DNSF_VERDICT_MONITOR,
};

/** The outcome of a lookup. */
struct dnsf_decision {
	/** the verdict */
	enum dnsf_verdict verdict;
	/** the entry that decided (BLOCK, MONITOR; its strings point into the
	 * index), else all zero (entry.id NULL) */
	struct dnsf_entry entry;
	/** 1 when a "*." name matched rather than the name itself */
	int wildcard;
	/** key length of the listed name that matched (0 when none) */
	size_t match_length;
};

/**
 * Decide for a name at a given time.
 * Allow beats every entry; then the longest listed name wins (the exact
 * name before "*." of the same name, a deeper wildcard before a shallower);
 * among the active entries of that name a block entry beats a monitor
 * entry and then the earliest start wins. A name whose entries are all
 * inactive at that time does not stop the search for a shorter match.
 * @param index: the feed.
 * @param key: key of the query name.
 * @param now: the time, seconds since the epoch.
 * @param decision: filled in.
 */
void dnsf_index_decide(const struct dnsf_index *index, const struct dnsf_key *key, int64_t now,
		       struct dnsf_decision *decision);

/*
 * Deltas. After a change (a new feed, an entry's start) only the cached
 * answers of names the index now acts on (block, monitor) and did not act
 * on before must go. A delta holds the listed names whose rules differ (a
 * changed, added or started entry; an allow-list name dropped): a name the
 * index newly acts on is in the delta or below a name in it. It is a
 * superset: callers confirm with dnsf_index_decide. (A name the index
 * stops acting on need not be in it: no answer of such a name is cached.)
 */
struct dnsf_delta;

/**
 * The names of new whose rules differ from old's (NULL old: all of new's),
 * and old's allow-listed names that new does not allow as old did.
 * @return the delta, or NULL when memory ran out (treat as "all names").
 */
struct dnsf_delta *dnsf_index_delta(const struct dnsf_index *old, const struct dnsf_index *new);

/**
 * The names of an index that have an entry starting in (after, until].
 * @return the delta, or NULL when memory ran out (treat as "all names").
 */
struct dnsf_delta *dnsf_index_starts(const struct dnsf_index *index, int64_t after, int64_t until);

/** Names in a delta. */
size_t dnsf_delta_count(const struct dnsf_delta *delta);

/** 1 when the name of key, or one of its parents, is in the delta. */
int dnsf_delta_covers(const struct dnsf_delta *delta, const struct dnsf_key *key);

/** Free a delta. NULL is allowed. */
void dnsf_delta_free(struct dnsf_delta *delta);

/*
 * Memos. The decision is a function of the index, the name and the time
 * alone, and one resolution asks about the same name several times (the
 * query, the question sent upstream, the response, the answer): a memo
 * keeps the last one. It is valid only for the same index, told by its id
 * (never reused, unlike its address), the same name bytes and the same
 * second.
 */
struct dnsf_memo {
	uint64_t index_id;
	int64_t now;
	/** bytes of name; 0: nothing remembered */
	size_t length;
	struct dnsf_decision decision;
	uint8_t name[DNSF_WIRE_MAX];
};

/** 1, with *decision, when memo holds the decision of this wire name by
 * this index at this time; else 0. */
int dnsf_memo_get(const struct dnsf_memo *memo, const struct dnsf_index *index, const uint8_t *name,
		  size_t length, int64_t now, struct dnsf_decision *decision);

/** Remember the decision of a wire name (longer than DNSF_WIRE_MAX: not). */
void dnsf_memo_put(struct dnsf_memo *memo, const struct dnsf_index *index, const uint8_t *name,
		   size_t length, int64_t now, const struct dnsf_decision *decision);

/** Words for a verdict: "none", "allow", "block", "monitor". */
const char *dnsf_verdict_name(enum dnsf_verdict verdict);

#endif
