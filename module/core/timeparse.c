/*
 * timeparse.c - feed dates and RFC 3339 timestamps, without the C library's
 * time zone state (which is neither thread-safe nor needed here).
 */
#include "dnsfilter/timeparse.h"

#include <stdio.h>
#include <string.h>

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t year, int month, int day)
{
	year -= month <= 2;
	int64_t era = (year >= 0 ? year : year - 399) / 400;
	int64_t year_of_era = year - era * 400;
	int64_t day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
	int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
	return era * 146097 + day_of_era - 719468;
}

static void civil_from_days(int64_t days, int *year, int *month, int *day)
{
	days += 719468;
	int64_t era = (days >= 0 ? days : days - 146096) / 146097;
	int64_t day_of_era = days - era * 146097;
	int64_t year_of_era =
	    (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
	int64_t day_of_year =
	    day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
	int64_t mp = (5 * day_of_year + 2) / 153;
	*day = (int)(day_of_year - (153 * mp + 2) / 5 + 1);
	*month = (int)(mp < 10 ? mp + 3 : mp - 9);
	*year = (int)(year_of_era + era * 400 + (*month <= 2));
}

static int is_leap(int year)
{
	return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int days_in_month(int year, int month)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	return month == 2 && is_leap(year) ? 29 : days[month - 1];
}

/* Read exactly n digits. */
static int digits(const char **cursor, int n, int *value)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		char c = (*cursor)[i];
		if (c < '0' || c > '9')
			return 0;
		v = v * 10 + (c - '0');
	}
	*cursor += n;
	*value = v;
	return 1;
}

static int expect(const char **cursor, char c)
{
	if (**cursor != c)
		return 0;
	(*cursor)++;
	return 1;
}

int dnsf_parse_utc_offset(const char *text, int32_t *seconds)
{
	int hours, minutes, sign;

	if (strcmp(text, "Z") == 0 || strcmp(text, "z") == 0 || strcmp(text, "UTC") == 0) {
		*seconds = 0;
		return 1;
	}
	if (text[0] != '+' && text[0] != '-')
		return 0;
	sign = text[0] == '-' ? -1 : 1;
	text++;
	if (!digits(&text, 2, &hours) || !expect(&text, ':') || !digits(&text, 2, &minutes) ||
	    *text != 0)
		return 0;
	if (hours > 23 || minutes > 59)
		return 0;
	*seconds = sign * (hours * 3600 + minutes * 60);
	return 1;
}

int dnsf_parse_time(const char *text, int32_t date_offset, int64_t *epoch)
{
	const char *cursor = text;
	int year, month, day, hour = 0, minute = 0, second = 0;
	int32_t offset = date_offset;

	if (!digits(&cursor, 4, &year) || !expect(&cursor, '-') || !digits(&cursor, 2, &month) ||
	    !expect(&cursor, '-') || !digits(&cursor, 2, &day))
		return 0;
	if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month))
		return 0;
	if (*cursor != 0) {
		if (*cursor != 'T' && *cursor != 't' && *cursor != ' ')
			return 0;
		cursor++;
		if (!digits(&cursor, 2, &hour) || !expect(&cursor, ':') ||
		    !digits(&cursor, 2, &minute) || !expect(&cursor, ':') ||
		    !digits(&cursor, 2, &second))
			return 0;
		/* 60 is a leap second; it is counted as the next second. */
		if (hour > 23 || minute > 59 || second > 60)
			return 0;
		if (*cursor == '.') {
			cursor++;
			if (*cursor < '0' || *cursor > '9')
				return 0;
			while (*cursor >= '0' && *cursor <= '9')
				cursor++;
		}
		/* A timestamp must say its offset. */
		if (!dnsf_parse_utc_offset(cursor, &offset) || strcmp(cursor, "UTC") == 0)
			return 0;
	}
	*epoch =
	    days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset;
	return 1;
}

void dnsf_format_time(int64_t epoch, char *out)
{
	int64_t days = epoch / 86400, rest = epoch % 86400;
	int year, month, day;

	if (rest < 0) {
		rest += 86400;
		days--;
	}
	civil_from_days(days, &year, &month, &day);
	snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02dZ", year, month, day, (int)(rest / 3600),
		 (int)(rest / 60 % 60), (int)(rest % 60));
}
