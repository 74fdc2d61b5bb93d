/*
 * format.c - the reporter's text: event lines, counter lines and the
 * metrics (see report.h for each format), built in growing text buffers.
 * Strings are escaped for JSON or Prometheus, with each byte that does not
 * start well-formed UTF-8 written as U+FFFD, so every line parses.
 */
#include "report_internal.h"
#include "dnsfilter/utf8.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* ---- growing text ---- */

static int text_reserve(struct text *text, size_t more)
{
	if (text->failed)
		return 0;
	if (text->capacity - text->length >= more)
		return 1;
	size_t capacity = text->capacity ? text->capacity : 4096;
	while (capacity - text->length < more)
		capacity *= 2;
	char *bytes = realloc(text->bytes, capacity);
	if (!bytes) {
		text->failed = 1;
		return 0;
	}
	text->bytes = bytes;
	text->capacity = capacity;
	return 1;
}

static void text_append(struct text *text, const char *bytes, size_t length)
{
	if (!text_reserve(text, length))
		return;
	memcpy(text->bytes + text->length, bytes, length);
	text->length += length;
}

static void text_string(struct text *text, const char *string)
{
	text_append(text, string, strlen(string));
}

static void text_printf(struct text *text, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static void text_printf(struct text *text, const char *format, ...)
{
	char small[256];
	va_list args;
	va_start(args, format);
	int length = vsnprintf(small, sizeof(small), format, args);
	va_end(args);
	if (length < 0 || (size_t)length >= sizeof(small)) {
		text->failed = 1; /* only short numbers and words are printed */
		return;
	}
	text_append(text, small, (size_t)length);
}

enum escape_style {
	/** a JSON string's contents */
	ESCAPE_JSON,
	/** a Prometheus label value */
	ESCAPE_PROMETHEUS,
};

/* Append bytes as the inside of a quoted string; invalid UTF-8 -> U+FFFD. */
static void text_escaped(struct text *text, const char *bytes, size_t length,
			 enum escape_style style)
{
	const unsigned char *s = (const unsigned char *)bytes;
	for (size_t i = 0; i < length;) {
		unsigned char c = s[i];
		if (c >= 0x80) {
			size_t sequence = dnsf_utf8_char_length(bytes + i, length - i);
			if (sequence)
				text_append(text, bytes + i, sequence);
			else
				text_string(text, "\xef\xbf\xbd");
			i += sequence ? sequence : 1;
			continue;
		}
		if (c == '"' || c == '\\') {
			char pair[2] = { '\\', (char)c };
			text_append(text, pair, 2);
		} else if (c == '\n') {
			text_string(text, "\\n");
		} else if (style == ESCAPE_JSON && (c < 0x20 || c == 0x7f)) {
			text_printf(text, "\\u%04x", c);
		} else {
			text_append(text, bytes + i, 1);
		}
		i++;
	}
}

/* ---- event lines ---- */

/* The mnemonic of a query type, or NULL. */
static const char *qtype_mnemonic(uint16_t qtype)
{
	static const struct {
		uint16_t type;
		const char *name;
	} names[] = {
		{ 1, "A" },           { 2, "NS" },     { 5, "CNAME" },       { 6, "SOA" },
		{ 10, "NULL" },       { 11, "WKS" },   { 12, "PTR" },        { 13, "HINFO" },
		{ 15, "MX" },         { 16, "TXT" },   { 17, "RP" },         { 18, "AFSDB" },
		{ 24, "SIG" },        { 25, "KEY" },   { 28, "AAAA" },       { 29, "LOC" },
		{ 33, "SRV" },        { 35, "NAPTR" }, { 36, "KX" },         { 37, "CERT" },
		{ 39, "DNAME" },      { 42, "APL" },   { 43, "DS" },         { 44, "SSHFP" },
		{ 45, "IPSECKEY" },   { 46, "RRSIG" }, { 47, "NSEC" },       { 48, "DNSKEY" },
		{ 49, "DHCID" },      { 50, "NSEC3" }, { 51, "NSEC3PARAM" }, { 52, "TLSA" },
		{ 53, "SMIMEA" },     { 55, "HIP" },   { 59, "CDS" },        { 60, "CDNSKEY" },
		{ 61, "OPENPGPKEY" }, { 62, "CSYNC" }, { 63, "ZONEMD" },     { 64, "SVCB" },
		{ 65, "HTTPS" },      { 99, "SPF" },   { 108, "EUI48" },     { 109, "EUI64" },
		{ 249, "TKEY" },      { 250, "TSIG" }, { 251, "IXFR" },      { 252, "AXFR" },
		{ 255, "ANY" },       { 256, "URI" },  { 257, "CAA" },
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].type == qtype)
			return names[i].name;
	return NULL;
}

/* "2024-04-16T01:02:03.456Z" */
static void text_timestamp(struct text *text, int64_t time_ms)
{
	int64_t seconds = time_ms / 1000, millis = time_ms % 1000;
	if (millis < 0) {
		seconds--;
		millis += 1000;
	}
	time_t clock = (time_t)seconds;
	struct tm tm;
	char date[64];
	if (!gmtime_r(&clock, &tm) || strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		strcpy(date, "1970-01-01T00:00:00");
	text_printf(text, "%s.%03dZ", date, (int)millis);
}

/* The client as a quoted address, truncated as configured, or null. */
static void text_client(struct text *text, const struct dnsf_event *event,
			enum dnsf_client_ip client_ip)
{
	static const uint8_t v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	uint8_t address[16];
	int family = event->family;
	char printed[INET6_ADDRSTRLEN];

	if (client_ip == DNSF_CLIENT_IP_NONE || (family != AF_INET && family != AF_INET6)) {
		text_string(text, "null");
		return;
	}
	memcpy(address, event->address, sizeof(address));
	if (family == AF_INET6 && memcmp(address, v4_mapped, sizeof(v4_mapped)) == 0) {
		family = AF_INET;
		memmove(address, address + 12, 4);
	}
	if (client_ip == DNSF_CLIENT_IP_TRUNCATE) {
		if (family == AF_INET)
			address[3] = 0; /* /24 */
		else
			memset(address + 6, 0, 10); /* /48 */
	}
	if (!inet_ntop(family, address, printed, sizeof(printed))) {
		text_string(text, "null");
		return;
	}
	text_printf(text, "\"%s\"", printed);
}

/* The qname lowercased, without an unescaped trailing dot (root stays "."). */
static size_t normal_qname(const struct dnsf_event *event, char *out)
{
	size_t length = strnlen(event->qname, sizeof(event->qname));
	for (size_t i = 0; i < length; i++) {
		char c = event->qname[i];
		out[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
	if (length > 1 && out[length - 1] == '.') {
		size_t backslashes = 0;
		while (backslashes < length - 1 && out[length - 2 - backslashes] == '\\')
			backslashes++;
		if (backslashes % 2 == 0)
			length--;
	}
	return length;
}

void report_format_event(struct text *text, const struct dnsf_event *event,
			 enum dnsf_client_ip client_ip)
{
	char qname[DNSF_EVENT_QNAME_SIZE];
	size_t qname_length = normal_qname(event, qname);
	const char *mnemonic = qtype_mnemonic(event->qtype);

	text_string(text, "{\"ts\":\"");
	text_timestamp(text, event->time_ms);
	text_string(text, "\",\"client\":");
	text_client(text, event, client_ip);
	text_string(text, ",\"qname\":\"");
	text_escaped(text, qname, qname_length, ESCAPE_JSON);
	if (mnemonic)
		text_printf(text, "\",\"qtype\":\"%s\",\"id\":\"", mnemonic);
	else
		text_printf(text, "\",\"qtype\":\"TYPE%u\",\"id\":\"", (unsigned)event->qtype);
	text_escaped(text, event->id, strnlen(event->id, sizeof(event->id)), ESCAPE_JSON);
	text_printf(text, "\",\"action\":\"%s\",\"via\":\"%s\"}\n",
		    event->monitor ? "monitor" : "block", event->via_cname ? "cname" : "qname");
}

/* ---- counter lines ---- */

void report_format_counter_line(struct text *text, const struct totals *now,
				const struct totals *last, int64_t covered_ms,
				const struct report_state *state, struct id_table *ids)
{
	size_t count;
	text_string(text, "{\"ts\":\"");
	text_timestamp(text, report_wall_ms());
	text_printf(text, "\",\"interval\":%lld,\"queries\":%llu,\"optout\":%llu,",
		    (long long)((covered_ms + 500) / 1000),
		    (unsigned long long)(now->queries - last->queries),
		    (unsigned long long)(now->optout - last->optout));
	text_printf(text, "\"blocked\":%llu,\"monitored\":%llu,\"by_id\":{",
		    (unsigned long long)(now->blocked - last->blocked),
		    (unsigned long long)(now->monitored - last->monitored));
	struct id_count **sorted = report_ids_sorted(ids, 1, &count, &text->failed);
	for (size_t i = 0; i < count; i++) {
		text_string(text, i ? ",\"" : "\"");
		text_escaped(text, sorted[i]->id, strlen(sorted[i]->id), ESCAPE_JSON);
		text_printf(text, "\":%llu", (unsigned long long)sorted[i]->interval);
	}
	free(sorted);
	text_printf(text, "},\"dropped_events\":%llu,\"feed_serial\":%llu,\"feed_failures\":%llu",
		    (unsigned long long)(now->dropped - last->dropped),
		    (unsigned long long)state->serial,
		    (unsigned long long)(now->feed_failures - last->feed_failures));
	static const char *const stale_keys[2] = { "feed_stale_since", "optout_stale_since" };
	for (int i = 0; i < 2; i++) {
		text_printf(text, ",\"%s\":", stale_keys[i]);
		if (state->stale_since[i]) {
			text_string(text, "\"");
			text_timestamp(text, state->stale_since[i] * 1000);
			text_string(text, "\"");
		} else {
			text_string(text, "null");
		}
	}
	text_printf(text, ",\"mode\":\"%s\"}\n",
		    state->mode == DNSF_MODE_MONITOR ? "monitor" : "enforce");
}

/* ---- metrics ---- */

static void metric(struct text *text, const char *name, const char *type, const char *help,
		   uint64_t value)
{
	text_printf(text, "# HELP %s ", name);
	text_string(text, help);
	text_printf(text, "\n# TYPE %s %s\n%s %llu\n", name, type, name, (unsigned long long)value);
}

void report_format_metrics(struct text *text, const struct totals *totals,
			   const struct report_state *state, struct id_table *ids)
{
	size_t count;
	metric(text, "dnsfilter_queries_total", "counter",
	       "Client queries answered, cache hits included, opted-out clients excluded.",
	       totals->queries);
	metric(text, "dnsfilter_optout_queries_total", "counter", "Queries of opted-out clients.",
	       totals->optout);
	metric(text, "dnsfilter_blocked_total", "counter", "Queries answered with the sinkhole.",
	       totals->blocked);
	metric(text, "dnsfilter_monitored_total", "counter",
	       "Queries that matched a monitor entry or matched in monitor mode.",
	       totals->monitored);
	struct id_count **sorted = report_ids_sorted(ids, 0, &count, &text->failed);
	if (count) {
		text_string(text, "# HELP dnsfilter_matches_total Blocked and monitored queries "
				  "per feed entry id (events dropped from a full queue excluded).\n"
				  "# TYPE dnsfilter_matches_total counter\n");
		for (size_t i = 0; i < count; i++) {
			text_string(text, "dnsfilter_matches_total{id=\"");
			text_escaped(text, sorted[i]->id, strlen(sorted[i]->id), ESCAPE_PROMETHEUS);
			text_printf(text, "\"} %llu\n", (unsigned long long)sorted[i]->total);
		}
	}
	free(sorted);
	metric(text, "dnsfilter_dropped_events_total", "counter",
	       "Block events missing from the event log (queue full or log not writable).",
	       totals->dropped);
	metric(text, "dnsfilter_feed_failures_total", "counter",
	       "Feed or opt-out file loads that failed.", totals->feed_failures);
	metric(text, "dnsfilter_feed_serial", "gauge", "Serial of the feed in force.",
	       state->serial);
	static const char *const files[2] = { "feed", "optout" };
	for (int i = 0; i < 2; i++) {
		char name[64], help[160];
		snprintf(name, sizeof(name), "dnsfilter_%s_stale", files[i]);
		snprintf(help, sizeof(help),
			 "1 when the %s in force is older than the configured file, which "
			 "cannot be used.",
			 i == DNSF_STALE_FEED ? "feed" : "opt-out set");
		metric(text, name, "gauge", help, state->stale_since[i] != 0);
		snprintf(name, sizeof(name), "dnsfilter_%s_stale_since_seconds", files[i]);
		metric(text, name, "gauge",
		       "Since when (Unix time) the configured file cannot be used; 0 when fresh.",
		       state->stale_since[i] > 0 ? (uint64_t)state->stale_since[i] : 0);
	}
	metric(text, "dnsfilter_enforcing", "gauge",
	       "1 when listed names get the sinkhole, 0 in monitor mode (before enforce-from).",
	       state->mode != DNSF_MODE_MONITOR);
}
