/*
 * dnsfilter/error.h - a list of error messages, for validation that reports
 * every problem instead of only the first.
 *
 * Each error has a kind besides its text, so a caller decides what to do
 * (an exit status, keep the old feed, try again later) without reading the
 * text: the file could not be read, the content is wrong, it is over a
 * limit, or memory ran out.
 *
 * Messages quote input (names, ids, paths, values) that an adversary or a
 * typo may fill with a newline, a quote or bytes that are not UTF-8; such a
 * message must not forge a second line in a log, nor end a quoted value
 * early. So every message is formatted here, and every string argument (a
 * "%s" conversion) is escaped: only the format's own literal text reaches
 * the message as it is. A quoted value is written "\"%s\"" in the format:
 * a "%s" right after a double quote has its double quotes escaped too.
 */
#ifndef DNSFILTER_ERROR_H
#define DNSFILTER_ERROR_H

#include <stdarg.h>
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

/** Longest string argument a message shows, in input bytes: longer text is
 * cut at a character and ends in "...". */
#define DNSF_MESSAGE_ARGUMENT_MAX 300

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
 * Every "%s" argument is escaped (dnsf_message_format).
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

/**
 * Escape text for a message or a log line: backslash and double quote are
 * preceded by a backslash; newline, carriage return and tab are \n, \r
 * and \t; other control characters (C0 and DEL) and each byte that does not
 * start well-formed UTF-8 are \xHH; the C1 controls and the line and
 * paragraph separators (U+0080-U+009F, U+2028, U+2029) are \uHHHH. Other
 * characters, non-ASCII ones included, are kept. The result holds no byte
 * below 0x20 and is valid UTF-8.
 * @param out: where to write; always NUL-terminated when size > 0, cut at
 *   a whole escape when it does not fit.
 * @param size: bytes at out.
 * @param text: the text (need not be NUL-terminated).
 * @param length: its length.
 * @return the length of the whole escaped text (as snprintf: a result of
 *   size or more means it was cut).
 */
size_t dnsf_escape(char *out, size_t size, const char *text, size_t length);

/**
 * Format a message as printf does, but with every "%s" (and "%c") argument
 * escaped as dnsf_escape does, double quotes only where the format has a
 * double quote right before the '%' (a quoted value), and cut to
 * DNSF_MESSAGE_ARGUMENT_MAX input bytes with "..." (a precision, "%.100s"
 * or "%.*s", reads at most that many bytes, as printf).
 * Conversions: d i u o x X c p e E f F g G a A s and %%, with printf's
 * flags, width, precision and length modifiers; no %n.
 * @return the message (caller frees), or NULL when out of memory.
 */
char *dnsf_message_format(const char *format, ...) __attribute__((format(printf, 1, 2)));

/** dnsf_message_format with a va_list. */
char *dnsf_message_vformat(const char *format, va_list args) __attribute__((format(printf, 1, 0)));

#endif
