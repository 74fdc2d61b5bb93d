/*
 * dnsfilter/feed.h - the reputation feed (dnsfilter-feed/1): its entries
 * and the limits a feed must keep.
 *
 * A feed is parsed and validated as a whole (module/core/feed.c) and built
 * into an index (dnsfilter/index.h, included here: the index is what a
 * caller loads a feed into). Every validation error is reported, each
 * naming the entry index, id and field.
 */
#ifndef DNSFILTER_FEED_H
#define DNSFILTER_FEED_H

#include <stddef.h>
#include <stdint.h>

#include "dnsfilter/error.h"
#include "dnsfilter/limits.h"

/** The format string a feed must carry. */
#define DNSF_FEED_FORMAT "dnsfilter-feed/1"

/** What an entry does to a matching query. */
enum dnsf_action {
	/** answer with the sinkhole */
	DNSF_ACTION_BLOCK = 0,
	/** pass on, but count and log the match */
	DNSF_ACTION_MONITOR = 1,
};

/** One malware entry of the feed. */
struct dnsf_entry {
	/** unique id, e.g. "IIJ-20240416-0001", at most DNSF_FEED_ID_MAX bytes */
	const char *id;
	/** behaviour in words ("info-theft", "backdoor", "ddos"), may be "" */
	const char *behavior;
	/** first second the entry acts */
	int64_t start;
	/** first second it no longer acts; DNSF_TIME_NEVER when open */
	int64_t end;
	/** block or monitor */
	enum dnsf_action action;
	/** 1 when public suffixes were allowed with "force": true */
	int force;
	/** number of names in fqdns */
	uint32_t fqdn_count;
	/** its place in the feed's entries, from 0 */
	uint32_t position;
};

/** Limits that keep a hostile or broken feed from hurting the resolver. */
struct dnsf_feed_limits {
	/** largest feed file in bytes */
	size_t max_bytes;
	/** most entries */
	size_t max_entries;
	/** most names, all entries and the allow list together */
	size_t max_names;
};

/** Defaults of dnsf_feed_limits: DNSF_FEED_MAX_*_DEFAULT of dnsfilter/limits.h. */
void dnsf_feed_limits_default(struct dnsf_feed_limits *limits);

/* Loading a feed, and the lookups: after the types above, which it uses. */
#include "dnsfilter/index.h"

#endif
