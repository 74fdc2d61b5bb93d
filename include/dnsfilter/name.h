/*
 * dnsfilter/name.h - domain names turned into lookup keys, and keys and
 * wire names turned into presentation text.
 *
 * A key holds the labels of a name from the root down, each label lowercased
 * and ended by DNSF_KEY_LABEL_END, a byte no key label contains (a zero octet
 * inside a query label is stored as DNSF_KEY_ZERO_OCTET instead). A byte
 * prefix of a key that ends with DNSF_KEY_LABEL_END is therefore exactly a
 * parent domain on a label boundary: "c2.example.net" is "net\0example\0c2\0"
 * and its parent "example.net" is the prefix "net\0example\0".
 */
#ifndef DNSFILTER_NAME_H
#define DNSFILTER_NAME_H

#include <stddef.h>
#include <stdint.h>

/** Longest key: a 255-octet wire name gives at most 254 key bytes. */
#define DNSF_KEY_MAX 255
/** Longest name in wire format. */
#define DNSF_WIRE_MAX 255
/** Buffer for dnsf_wire_to_text: every wire octet becomes at most 4
 * characters (a length octet one dot), plus the NUL. */
#define DNSF_WIRE_TEXT_SIZE (4 * DNSF_WIRE_MAX + 1)
/** Ends every label in a key. */
#define DNSF_KEY_LABEL_END 0x00
/** Stands for a zero octet inside a label of a query name. */
#define DNSF_KEY_ZERO_OCTET 0x01

/** A lookup key. */
struct dnsf_key {
	/** number of bytes in bytes[] */
	size_t length;
	/** the key; see the file comment */
	uint8_t bytes[DNSF_KEY_MAX];
};

/**
 * Key of a name in uncompressed wire format (as in a query's question).
 * @param wire: the name, labels with length octets, ending with the root.
 * @param wire_length: bytes available at wire.
 * @param key: filled in.
 * @return 1 on success, 0 when the wire name is malformed.
 */
int dnsf_key_from_wire(const uint8_t *wire, size_t wire_length, struct dnsf_key *key);

/**
 * Check a feed name (letters, digits, '-', '_', labels 1-63 octets, at most
 * 253 characters, one trailing dot allowed, no wildcard) and make its key.
 * @param text: the name, NUL-terminated.
 * @param key: filled in on success.
 * @param why: on failure, set to a static description of the problem.
 * @return 1 when valid, 0 otherwise.
 */
int dnsf_key_from_feed_name(const char *text, struct dnsf_key *key, const char **why);

/**
 * Parse a name in presentation format, with \. and \DDD escapes and an
 * optional trailing dot, into wire format (as a query would carry it).
 * @param text: the name, NUL-terminated; "." is the root.
 * @param wire: buffer of DNSF_WIRE_MAX bytes.
 * @param wire_length: set to the length used.
 * @return 1 on success, 0 when the text is not a valid name.
 */
int dnsf_wire_from_text(const char *text, uint8_t *wire, size_t *wire_length);

/**
 * Write a key back as a lowercase presentation name with a trailing dot
 * (bytes outside letters, digits, '-' and '_' as \DDD).
 * @param key: the key.
 * @param out: buffer; at least 4 * DNSF_KEY_MAX + 2 bytes is always enough.
 * @param out_size: size of out.
 * @return 1 on success, 0 when out is too small.
 */
int dnsf_key_to_text(const struct dnsf_key *key, char *out, size_t out_size);

/**
 * Write a name in uncompressed wire format (as in a query's question) as a
 * presentation name, the same text dnsf_key_to_text writes for its key:
 * lowercase, every label followed by a dot ("." for the root), octets other
 * than letters, digits, '-' and '_' as \DDD ("a.b" inside a label is
 * "a\046b"; a backslash is "\092"). Every backslash in the text therefore
 * starts a four-character \DDD.
 * @param wire: the name, labels with length octets, ending with the root.
 * @param wire_length: bytes available at wire.
 * @param out: DNSF_WIRE_TEXT_SIZE bytes; NUL-terminated on return.
 * @return 1 on success; 0 when the wire name is malformed: then out holds
 *   the labels read before the problem, each with its dot ("" when none).
 */
int dnsf_wire_to_text(const uint8_t *wire, size_t wire_length, char *out);

#endif
