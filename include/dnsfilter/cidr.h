/*
 * dnsfilter/cidr.h - the opt-out network set: IPv4 and IPv6 CIDR prefixes,
 * collected and validated by a builder, then frozen into an immutable set
 * that answers "is this client address opted out?".
 *
 * Input syntax, from the settings' optout.networks list and the optout.file
 * text alike:
 *   192.0.2.0/24, 2001:db8::/32    a prefix (dotted quad or RFC 4291 text,
 *                                  as inet_pton reads it; no zone index)
 *   192.0.2.7, 2001:db8::7         a bare address: /32 or /128
 *   0.0.0.0/0, ::/0                every IPv4 or every IPv6 client
 * A prefix with host bits set (192.0.2.1/24) is an error, not masked: an
 * opt-out turns the protection off, so a typo that silently widens a
 * customer's /32 to a /24 (or a /8) must not pass; the message quotes the
 * network the operator may have meant. An IPv6 prefix inside ::ffff:0:0/96
 * is stored as the IPv4 prefix it maps (::ffff:192.0.2.0/120 is
 * 192.0.2.0/24). The file text has one prefix a line; "#" starts a comment
 * to the end of the line; blank lines, whitespace around a prefix, CRLF
 * line ends and a leading UTF-8 byte order mark are allowed.
 *
 * Lookup: an IPv4-mapped IPv6 client address (::ffff:a.b.c.d, as a dual-stack
 * socket reports an IPv4 client) is looked up as the IPv4 address a.b.c.d;
 * IPv6 prefixes shorter than /96 (::/0) do not cover it, as it is an IPv4
 * client.
 *
 * Ownership and threads: the builder belongs to one thread. The set is
 * never changed after dnsf_cidr_set_build returns, so any number of threads
 * may call the lookup functions on it at once without locks (publish the
 * pointer with release semantics, e.g. an atomic exchange). It is freed with
 * one call, dnsf_cidr_set_free, once no thread reads it any more.
 */
#ifndef DNSFILTER_CIDR_H
#define DNSFILTER_CIDR_H

#include <stddef.h>

#include "dnsfilter/error.h"
/* DNSF_CIDR_DEFAULT_MAX_PREFIXES, a sensible limit for
 * dnsf_cidr_builder_new, and DNSF_CIDR_FILE_MAX_BYTES */
#include "dnsfilter/limits.h"

/** Collects prefixes; opaque. */
struct dnsf_cidr_builder;

/** The immutable set of opted-out networks; opaque. */
struct dnsf_cidr_set;

/**
 * Create an empty builder.
 * @param max_prefixes: most prefixes accepted over all sources; more are
 *   refused with an error.
 * @return the builder (free with dnsf_cidr_builder_free, or hand it to
 *   dnsf_cidr_set_build) or NULL when out of memory.
 */
struct dnsf_cidr_builder *dnsf_cidr_builder_new(size_t max_prefixes);

/**
 * Free a builder that was not given to dnsf_cidr_set_build.
 * @param builder: to free; NULL is allowed.
 */
void dnsf_cidr_builder_free(struct dnsf_cidr_builder *builder);

/**
 * Add the prefixes of a settings list. The list is taken whole or not at
 * all: on any error none of its prefixes are added.
 * @param builder: to add to.
 * @param texts: the prefixes as NUL-terminated strings, e.g. the values
 *   of optout.networks, no surrounding whitespace; not kept. A NULL entry
 *   is an error ("not a string").
 * @param count: number of texts.
 * @param list_name: the settings key, for messages ("optout.networks"
 *   gives "optout.networks[2]: \"10.0.0.1/8\": ...").
 * @param errors: every bad value is added here, each naming
 *   list_name[index] and quoting the value.
 * @return 1 when every value was valid and added, 0 otherwise.
 */
int dnsf_cidr_builder_add_list(struct dnsf_cidr_builder *builder, const char *const *texts,
			       size_t count, const char *list_name, struct dnsf_errors *errors);

/**
 * Add the prefixes of an opt-out file's text (see the syntax above). The
 * file is taken whole or not at all: one bad line rejects it, and none of
 * its prefixes are added.
 * @param builder: to add to.
 * @param text: the file's bytes; need not be NUL-terminated; a NUL byte
 *   in a line makes that line bad.
 * @param length: number of bytes.
 * @param file_name: for messages ("/etc/optout.txt: line 12: ...").
 * @param errors: every bad line is added here, naming the file, the line
 *   number and quoting the line's text.
 * @return 1 when every line was valid and its prefix added, 0 otherwise.
 */
int dnsf_cidr_builder_add_file_text(struct dnsf_cidr_builder *builder, const char *text,
				    size_t length, const char *file_name,
				    struct dnsf_errors *errors);

/**
 * Read an opt-out file (a regular file of at most DNSF_CIDR_FILE_MAX_BYTES)
 * and add it as dnsf_cidr_builder_add_file_text.
 * @param builder: to add to.
 * @param path: the file; also the name in messages.
 * @param errors: a read failure or every bad line.
 * @return 1 when the file was read and every line was valid, 0 otherwise.
 */
int dnsf_cidr_builder_add_file(struct dnsf_cidr_builder *builder, const char *path,
			       struct dnsf_errors *errors);

/**
 * Freeze the prefixes added so far into a set: overlapping and adjacent
 * prefixes are merged into disjoint ranges. The builder is freed in every
 * case and must not be used afterwards.
 * @param builder: the prefixes; freed.
 * @param errors: gets a message when out of memory.
 * @return the set (free with dnsf_cidr_set_free) or NULL when out of memory.
 */
struct dnsf_cidr_set *dnsf_cidr_set_build(struct dnsf_cidr_builder *builder,
					  struct dnsf_errors *errors);

/**
 * Free a set and everything it holds.
 * @param set: to free; NULL is allowed.
 */
void dnsf_cidr_set_free(struct dnsf_cidr_set *set);

/**
 * Is an address inside one of the set's prefixes? Reads only; safe from any
 * number of threads at once.
 * @param set: the set; NULL is an empty set.
 * @param family: AF_INET or AF_INET6.
 * @param address: 4 bytes (AF_INET) or 16 bytes (AF_INET6) in network
 *   order, e.g. a struct in_addr or struct in6_addr; an IPv4-mapped IPv6
 *   address is looked up as its IPv4 address.
 * @return 1 when inside, 0 when not or for another family.
 */
int dnsf_cidr_set_contains(const struct dnsf_cidr_set *set, int family, const void *address);

/**
 * The memory the set holds, its own struct included.
 * @param set: the set.
 * @return bytes.
 */
size_t dnsf_cidr_set_memory(const struct dnsf_cidr_set *set);

/**
 * The number of prefixes given to the builder (duplicates and nested
 * prefixes included), as the operator counts them.
 * @param set: the set.
 * @return the count.
 */
size_t dnsf_cidr_set_prefix_count(const struct dnsf_cidr_set *set);

/**
 * The number of disjoint address ranges the prefixes of one family were
 * merged into.
 * @param set: the set.
 * @param family: AF_INET or AF_INET6.
 * @return the count; 0 for another family.
 */
size_t dnsf_cidr_set_range_count(const struct dnsf_cidr_set *set, int family);

/**
 * Check the structure: ranges ordered, disjoint and not adjacent, each
 * first <= last, the bucket index consistent with them.
 * @param set: the set.
 * @param why: on failure, a static description.
 * @return 1 when every invariant holds.
 */
int dnsf_cidr_set_check(const struct dnsf_cidr_set *set, const char **why);

#endif
