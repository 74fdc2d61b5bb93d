/*
 * dnsfilter/timeparse.h - the dates and timestamps of the feed.
 */
#ifndef DNSFILTER_TIMEPARSE_H
#define DNSFILTER_TIMEPARSE_H

#include <stdint.h>

/** An end that never comes. */
#define DNSF_TIME_NEVER INT64_MAX

/**
 * Parse a UTC offset: "Z", "UTC", "+09:00", "-05:30".
 * @param text: the offset.
 * @param seconds: set to the offset east of UTC in seconds.
 * @return 1 on success, 0 when malformed.
 */
int dnsf_parse_utc_offset(const char *text, int32_t *seconds);

/**
 * Parse a feed time: "YYYY-MM-DD" (midnight at the given UTC offset) or an
 * RFC 3339 timestamp "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)".
 * Fractions of a second are dropped.
 * @param text: the time.
 * @param date_offset: UTC offset in seconds used for a bare date.
 * @param epoch: set to seconds since 1970-01-01T00:00:00Z.
 * @return 1 on success, 0 when malformed or out of range.
 */
int dnsf_parse_time(const char *text, int32_t date_offset, int64_t *epoch);

/**
 * Write a time as RFC 3339 UTC ("2024-04-16T00:00:00Z").
 * @param epoch: seconds since the epoch.
 * @param out: buffer of at least 32 bytes.
 */
void dnsf_format_time(int64_t epoch, char *out);

#endif
