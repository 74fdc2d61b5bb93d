/*
 * dnsfilter/limits.h - the limits that keep hostile or broken input from
 * hurting the resolver, and the defaults of those an operator can change:
 * each number is defined here and used by name everywhere else (the
 * settings table, the feed parser, the opt-out builder, the file reader).
 * README's settings table documents the ones in dnsfilter.json.
 */
#ifndef DNSFILTER_LIMITS_H
#define DNSFILTER_LIMITS_H

#include <stddef.h>

/** Default of limits.feed-bytes: the largest feed file, 256 MiB. */
#define DNSF_FEED_MAX_BYTES_DEFAULT ((size_t)256 << 20)

/** Default of limits.feed-entries: the most entries a feed may have. */
#define DNSF_FEED_MAX_ENTRIES_DEFAULT 1000000

/** Default of limits.feed-names: the most names, entries and allow list
 * together. */
#define DNSF_FEED_MAX_NAMES_DEFAULT 5000000

/** Deepest nesting of JSON arrays and objects in a feed; a feed needs 4
 * (feed, entries, entry, fqdns). Deeper text is refused before parsing. */
#define DNSF_FEED_MAX_DEPTH 32

/** Longest entry id, in bytes. A longer id is an error: the event log,
 * the counter log's by_id, the metrics and EDE carry ids whole, in
 * fixed-size fields (DNSF_EVENT_ID_SIZE), so a longer one could not match
 * the feed everywhere. */
#define DNSF_FEED_ID_MAX 63

/** Largest settings file (dnsfilter.json). */
#define DNSF_SETTINGS_MAX_BYTES ((size_t)1 << 20)

/** Largest opt-out file (optout.file). */
#define DNSF_CIDR_FILE_MAX_BYTES ((size_t)256 << 20)

/** Most opt-out networks, list and file together: building takes at most
 * 32 bytes a prefix (IPv6) on top of the set itself. */
#define DNSF_CIDR_DEFAULT_MAX_PREFIXES 10000000

#endif
