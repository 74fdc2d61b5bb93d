/*
 * dnsfilter/error.h - a list of error messages, for validation that reports
 * every problem instead of only the first.
 */
#ifndef DNSFILTER_ERROR_H
#define DNSFILTER_ERROR_H

#include <stddef.h>

/** Most messages kept; later ones are only counted. */
#define DNSF_ERRORS_KEPT 200

/** Collected error messages. Zero-initialise before use. */
struct dnsf_errors {
	/** messages, malloc'd, count_kept of them */
	char *messages[DNSF_ERRORS_KEPT];
	/** number of messages stored */
	size_t count_kept;
	/** number of errors reported, also those not stored */
	size_t count;
};

/**
 * Add a message (printf format). Never fails: when out of memory or past
 * the kept limit the error is still counted.
 * @param errors: list to add to.
 * @param format: printf format.
 */
void dnsf_errors_add(struct dnsf_errors *errors, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

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
