/*
 * dnsfilter/error.h - a list of error messages, for validation that reports
 * every problem instead of only the first.
 *
 * Each error has a kind besides its text, so a caller decides what to do
 * (an exit status, keep the old feed, try again later) without reading the
 * text: the file could not be read, the content is wrong, it is over a
 * limit, or memory ran out.
 */
#ifndef DNSFILTER_ERROR_H
#define DNSFILTER_ERROR_H

#include <stddef.h>

/** Most messages kept; later ones are only counted. */
#define DNSF_ERRORS_KEPT 200

/** What kind of problem an error is. */
enum dnsf_error_kind {
	/** the content is wrong: syntax, a bad value, a broken rule */
	DNSF_ERROR_INVALID = 0,
	/** a file cannot be opened or read, or is not a regular file */
	DNSF_ERROR_IO,
	/** over a limit: too many bytes, entries, names, networks */
	DNSF_ERROR_LIMIT,
	/** out of memory */
	DNSF_ERROR_MEMORY,
};

/** Number of kinds in enum dnsf_error_kind. */
#define DNSF_ERROR_KINDS 4

/** Collected error messages. Zero-initialise before use. */
struct dnsf_errors {
	/** messages, malloc'd, count_kept of them */
	char *messages[DNSF_ERRORS_KEPT];
	/** number of messages stored */
	size_t count_kept;
	/** number of errors reported, also those not stored */
	size_t count;
	/** the kind of each stored message */
	enum dnsf_error_kind kinds[DNSF_ERRORS_KEPT];
	/** errors reported of each kind, also those not stored */
	size_t count_by_kind[DNSF_ERROR_KINDS];
};

/**
 * Add a message (printf format) of kind DNSF_ERROR_INVALID. Never fails:
 * when out of memory or past the kept limit the error is still counted.
 * @param errors: list to add to.
 * @param format: printf format.
 */
void dnsf_errors_add(struct dnsf_errors *errors, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/**
 * Add a message of a given kind, as dnsf_errors_add.
 * @param errors: list to add to.
 * @param kind: what kind of problem it is.
 * @param format: printf format.
 */
void dnsf_errors_add_kind(struct dnsf_errors *errors, enum dnsf_error_kind kind, const char *format,
			  ...) __attribute__((format(printf, 3, 4)));

/** Number of errors of a kind reported, also those not stored. */
size_t dnsf_errors_count_kind(const struct dnsf_errors *errors, enum dnsf_error_kind kind);

/** A word for a kind, for logs and machine-readable output: "invalid",
 * "io", "limit", "memory". */
const char *dnsf_error_kind_name(enum dnsf_error_kind kind);

/**
 * Free the messages and reset the list to empty.
 * @param errors: list to clear.
 */
void dnsf_errors_clear(struct dnsf_errors *errors);

/**
 * Join the messages into one malloc'd string, separated by sep, with a
 * "(and N more)" tail when messages were not kept.
 * @return the string (caller frees) or NULL when out of memory.
 */
char *dnsf_errors_join(const struct dnsf_errors *errors, const char *sep);

#endif
