/*
 * error.c - collected error messages and their kinds.
 */
#include "dnsfilter/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add(struct dnsf_errors *errors, enum dnsf_error_kind kind, const char *format,
		va_list args)
{
	char *message = NULL;

	if ((unsigned)kind >= DNSF_ERROR_KINDS)
		kind = DNSF_ERROR_INVALID;
	errors->count++;
	errors->count_by_kind[kind]++;
	if (errors->count_kept >= DNSF_ERRORS_KEPT)
		return;
	if (vasprintf(&message, format, args) < 0)
		message = NULL;
	if (message) {
		errors->kinds[errors->count_kept] = kind;
		errors->messages[errors->count_kept++] = message;
	}
}

void dnsf_errors_add(struct dnsf_errors *errors, const char *format, ...)
{
	va_list args;

	va_start(args, format);
	add(errors, DNSF_ERROR_INVALID, format, args);
	va_end(args);
}

void dnsf_errors_add_kind(struct dnsf_errors *errors, enum dnsf_error_kind kind, const char *format,
			  ...)
{
	va_list args;

	va_start(args, format);
	add(errors, kind, format, args);
	va_end(args);
}

size_t dnsf_errors_count_kind(const struct dnsf_errors *errors, enum dnsf_error_kind kind)
{
	return (unsigned)kind < DNSF_ERROR_KINDS ? errors->count_by_kind[kind] : 0;
}

const char *dnsf_error_kind_name(enum dnsf_error_kind kind)
{
	switch (kind) {
	case DNSF_ERROR_IO:
		return "io";
	case DNSF_ERROR_LIMIT:
		return "limit";
	case DNSF_ERROR_MEMORY:
		return "memory";
	default:
		return "invalid";
	}
}

void dnsf_errors_clear(struct dnsf_errors *errors)
{
	for (size_t i = 0; i < errors->count_kept; i++)
		free(errors->messages[i]);
	memset(errors, 0, sizeof(*errors));
}

char *dnsf_errors_join(const struct dnsf_errors *errors, const char *sep)
{
	size_t length = 1, sep_length = strlen(sep);
	char tail[64] = "";
	char *joined, *cursor;

	if (errors->count > errors->count_kept)
		snprintf(tail, sizeof(tail), "%s(and %zu more errors)", sep,
			 errors->count - errors->count_kept);
	for (size_t i = 0; i < errors->count_kept; i++)
		length += strlen(errors->messages[i]) + sep_length;
	length += strlen(tail);
	joined = malloc(length);
	if (!joined)
		return NULL;
	cursor = joined;
	*cursor = 0;
	for (size_t i = 0; i < errors->count_kept; i++) {
		size_t n = strlen(errors->messages[i]);
		if (i > 0) {
			memcpy(cursor, sep, sep_length);
			cursor += sep_length;
		}
		memcpy(cursor, errors->messages[i], n);
		cursor += n;
	}
	strcpy(cursor, errors->count_kept ? tail : tail + (tail[0] ? sep_length : 0));
	return joined;
}
