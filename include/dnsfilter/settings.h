/*
 * dnsfilter/settings.h - the module's settings file (dnsfilter.json).
 */
#ifndef DNSFILTER_SETTINGS_H
#define DNSFILTER_SETTINGS_H

#include <netinet/in.h>
#include <stdint.h>

#include "dnsfilter/error.h"
#include "dnsfilter/feed.h"

/** Answer for listed names asked with a qtype other than A/AAAA. */
enum dnsf_other_types {
	/** NOERROR, empty answer */
	DNSF_OTHER_NODATA = 0,
	/** NXDOMAIN */
	DNSF_OTHER_NXDOMAIN,
	/** pass on: only A and AAAA are filtered */
	DNSF_OTHER_PASS,
};

/** Global mode. */
enum dnsf_mode {
	/** answer matches with the sinkhole */
	DNSF_MODE_ENFORCE = 0,
	/** count and log matches, never change an answer */
	DNSF_MODE_MONITOR,
};

/** enforce-from not given: the mode never changes by itself. */
#define DNSF_ENFORCE_FROM_NONE INT64_MIN

/** A local address Unbound listens on (optout.service-addresses). */
struct dnsf_address {
	/** AF_INET or AF_INET6 (an IPv4-mapped IPv6 address is stored as AF_INET) */
	int family;
	/** the address, network order: 4 bytes (AF_INET) or 16 */
	uint8_t bytes[16];
};

/** How much of the client address the event log shows (log.client-ip). */
enum dnsf_client_ip {
	/** the whole address */
	DNSF_CLIENT_IP_FULL = 0,
	/** the /24 (IPv4) or /48 (IPv6) network, host bits zeroed */
	DNSF_CLIENT_IP_TRUNCATE,
	/** no address */
	DNSF_CLIENT_IP_NONE,
};

/** Parsed settings. Paths are absolute or relative to the working directory. */
struct dnsf_settings {
	/** the settings file these came from (malloc'd) */
	char *source;
	/** feed file (malloc'd), relative paths resolved against the settings file */
	char *feed;
	/** address in A answers */
	struct in_addr sinkhole_a;
	/** address in AAAA answers */
	struct in6_addr sinkhole_aaaa;
	/** TTL of synthesized answers, seconds */
	uint32_t ttl;
	/** what other qtypes get */
	enum dnsf_other_types other_types;
	/** enforce or monitor */
	enum dnsf_mode mode;
	/** enforce-from (Unix s): monitor before it, enforce from it on (mode is
	 * then enforce); DNSF_ENFORCE_FROM_NONE when not given */
	int64_t enforce_from;
	/** attach EDE 15 when Unbound's ede is on */
	int ede;
	/** also act when an answer's CNAME/DNAME chain reaches a listed name */
	int match_cname;
	/** opted-out networks given in the settings (malloc'd strings) */
	char **optout_networks;
	/** number of optout_networks */
	size_t optout_network_count;
	/** file of more opted-out networks (malloc'd), or NULL */
	char *optout_file;
	/** optout.service-addresses: a query that arrives at one of these local
	 * addresses is treated as an opted-out client's (malloc'd, no two alike) */
	struct dnsf_address *service_addresses;
	/** number of service_addresses */
	size_t service_address_count;
	/** where the last-good copies are kept (malloc'd); default: the feed's
	 * directory */
	char *state_dir;
	/** seconds between checks of the feed and opt-out files; 0: never */
	uint32_t watch_interval;
	/** block-event log (malloc'd), or NULL: no event log */
	char *log_path;
	/** client address in the event log */
	enum dnsf_client_ip log_client_ip;
	/** counter log (malloc'd), or NULL: none */
	char *stats_path;
	/** seconds between counter lines and metrics rewrites, 1..86400 */
	uint32_t stats_interval;
	/** Prometheus text file (malloc'd), or NULL: none */
	char *metrics_path;
	/** feed limits */
	uint64_t feed_max_bytes;
	/** feed limits */
	uint64_t feed_max_entries;
	/** feed limits */
	uint64_t feed_max_names;
};

/**
 * Parse settings from memory.
 * @param text: JSON bytes.
 * @param length: their number.
 * @param source: the file name, used to resolve relative paths (its
 *   directory) and kept in settings->source.
 * @param settings: filled in; free with dnsf_settings_free (also on failure).
 * @param errors: every problem found, each naming the key.
 * @return 1 when valid.
 */
int dnsf_settings_parse(const char *text, size_t length, const char *source,
			struct dnsf_settings *settings, struct dnsf_errors *errors);

/**
 * Read and parse a settings file, as dnsf_settings_parse.
 */
int dnsf_settings_load(const char *path, struct dnsf_settings *settings,
		       struct dnsf_errors *errors);

/** The feed limits the settings give (limits.*). */
void dnsf_settings_feed_limits(const struct dnsf_settings *settings,
			       struct dnsf_feed_limits *limits);

/**
 * The mode in force at a time: mode, except monitor before enforce-from.
 * @param now: Unix seconds.
 */
enum dnsf_mode dnsf_settings_mode_at(const struct dnsf_settings *settings, int64_t now);

/**
 * Is a local address one of optout.service-addresses? An IPv4-mapped IPv6
 * address (::ffff:a.b.c.d) is compared as the IPv4 address.
 * @param family: AF_INET or AF_INET6 (anything else: no).
 * @param bytes: 4 or 16 bytes, network order.
 */
int dnsf_settings_is_service_address(const struct dnsf_settings *settings, int family,
				     const void *bytes);

/** Free what the settings hold and zero them. */
void dnsf_settings_free(struct dnsf_settings *settings);

#endif
