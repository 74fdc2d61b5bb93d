/*
 * The reporter: event log lines, counter lines, metrics file; counts from
 * several threads; rotation; a log nobody reads never blocks a resolver
 * thread and never holds up stop. Every wait is bounded.
 */
#include <arpa/inet.h>
#include <check.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dnsfilter/report.h"
#include "unit.h"

/* ---- helpers ---- */

static char directory[64];
static char log_path[128], stats_path[128], metrics_path[128];

static void make_directory(void)
{
	strcpy(directory, "/tmp/dnsf-report-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(directory));
	snprintf(log_path, sizeof(log_path), "%s/events.log", directory);
	snprintf(stats_path, sizeof(stats_path), "%s/stats.log", directory);
	snprintf(metrics_path, sizeof(metrics_path), "%s/dnsfilter.prom", directory);
}

static void remove_directory(void)
{
	empty_directory_at(directory, 1);
}

/* Settings with every file in the test directory. */
static struct dnsf_report_settings all_files(uint32_t interval)
{
	struct dnsf_report_settings settings = { .log_path = log_path,
						 .client_ip = DNSF_CLIENT_IP_FULL,
						 .stats_path = stats_path,
						 .stats_interval = interval,
						 .metrics_path = metrics_path };
	return settings;
}

static struct dnsf_reporter *new_reporter(const struct dnsf_report_settings *settings)
{
	struct dnsf_errors errors = { 0 };
	struct dnsf_reporter *reporter = dnsf_reporter_new(settings, &errors);
	char *why = dnsf_errors_join(&errors, " | ");
	ck_assert_msg(reporter != NULL, "dnsf_reporter_new: %s", why);
	free(why);
	dnsf_errors_clear(&errors);
	return reporter;
}

/* The whole file, NUL-terminated, or NULL when it cannot be read. */
static char *read_text(const char *path)
{
	FILE *file = fopen(path, "rb");
	char *text = NULL;
	size_t length = 0, capacity = 0, got;
	if (!file)
		return NULL;
	do {
		if (capacity - length < 4096) {
			capacity = capacity ? capacity * 2 : 65536;
			text = realloc(text, capacity + 1);
		}
		got = fread(text + length, 1, capacity - length, file);
		length += got;
	} while (got > 0);
	fclose(file);
	text[length] = 0;
	return text;
}

static size_t count_lines(const char *text)
{
	size_t lines = 0;
	for (; text && *text; text++)
		lines += *text == '\n';
	return lines;
}

/* The lines of text as parsed JSON objects; each must parse. */
static cJSON **parse_lines(char *text, size_t *count)
{
	size_t lines = count_lines(text), n = 0;
	cJSON **parsed = calloc(lines + 1, sizeof(*parsed));
	for (char *line = text, *end; line && (end = strchr(line, '\n')); line = end + 1) {
		*end = 0;
		parsed[n] = cJSON_Parse(line);
		ck_assert_msg(parsed[n] != NULL, "line %zu is not JSON: %s", n + 1, line);
		n++;
	}
	*count = n;
	return parsed;
}

static void free_lines(cJSON **lines, size_t count)
{
	for (size_t i = 0; i < count; i++)
		cJSON_Delete(lines[i]);
	free(lines);
}

static uint64_t number(const cJSON *object, const char *key)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, key);
	ck_assert_msg(cJSON_IsNumber(item), "no number \"%s\"", key);
	ck_assert(item->valuedouble >= 0 &&
		  item->valuedouble == (double)(uint64_t)item->valuedouble);
	return (uint64_t)item->valuedouble;
}

static const char *string(const cJSON *object, const char *key)
{
	const char *value = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(object, key));
	ck_assert_msg(value != NULL, "no string \"%s\"", key);
	return value;
}

/** Sums of a counter log's lines. */
struct sums {
	uint64_t lines, queries, optout, blocked, monitored, dropped, failures, serial;
	uint64_t by_id[8];
};

static const char *const sum_ids[8] = { "ID-A", "ID-B", "ID-C", "ID-D",
					"ID-E", "ID-F", "ID-G", "ID-H" };

static void add_line(struct sums *sums, const cJSON *line)
{
	const cJSON *by_id = cJSON_GetObjectItemCaseSensitive(line, "by_id"), *item;
	ck_assert_str_eq(string(line, "ts") + strlen(string(line, "ts")) - 1, "Z");
	ck_assert_uint_eq(strlen(string(line, "ts")), strlen("2024-04-16T01:02:03.456Z"));
	(void)number(line, "interval");
	sums->lines++;
	sums->queries += number(line, "queries");
	sums->optout += number(line, "optout");
	sums->blocked += number(line, "blocked");
	sums->monitored += number(line, "monitored");
	sums->dropped += number(line, "dropped_events");
	sums->failures += number(line, "feed_failures");
	sums->serial = number(line, "feed_serial");
	ck_assert(cJSON_IsObject(by_id));
	cJSON_ArrayForEach(item, by_id)
	{
		int known = 0;
		ck_assert(cJSON_IsNumber(item) && item->valuedouble > 0);
		for (int i = 0; i < 8; i++)
			if (strcmp(item->string, sum_ids[i]) == 0) {
				sums->by_id[i] += (uint64_t)item->valuedouble;
				known = 1;
			}
		ck_assert_msg(known, "unexpected id %s", item->string);
	}
}

/* Sum the lines [first, end) of the counter log. */
static struct sums sum_stats(size_t first, size_t end)
{
	struct sums sums = { 0 };
	char *text = read_text(stats_path);
	size_t count;
	ck_assert_ptr_nonnull(text);
	cJSON **lines = parse_lines(text, &count);
	for (size_t i = first; i < end && i < count; i++)
		add_line(&sums, lines[i]);
	free_lines(lines, count);
	free(text);
	return sums;
}

static size_t file_lines(const char *path)
{
	char *text = read_text(path);
	size_t lines = count_lines(text);
	free(text);
	return lines;
}

static struct dnsf_event event_for(const char *qname, const char *id, int monitor)
{
	struct dnsf_event event;
	memset(&event, 0, sizeof(event));
	event.time_ms = 1713229323456; /* 2024-04-16T01:02:03.456Z */
	event.family = AF_INET;
	inet_pton(AF_INET, "203.0.113.7", event.address);
	snprintf(event.qname, sizeof(event.qname), "%s", qname);
	event.qtype = 1;
	snprintf(event.id, sizeof(event.id), "%s", id);
	event.monitor = monitor;
	return event;
}

/* The event log lines that one event gives with these settings. */
static char *log_of(const struct dnsf_event *events, size_t count, enum dnsf_client_ip client_ip)
{
	struct dnsf_report_settings settings = { .log_path = log_path,
						 .client_ip = client_ip,
						 .stats_interval = 60 };
	unlink(log_path);
	struct dnsf_reporter *reporter = new_reporter(&settings);
	ck_assert(dnsf_reporter_start(reporter));
	struct dnsf_counters *counters = dnsf_reporter_thread(reporter);
	for (size_t i = 0; i < count; i++)
		dnsf_report_match(counters, &events[i]);
	dnsf_reporter_stop(reporter);
	dnsf_reporter_free(reporter);
	return read_text(log_path);
}

/* ---- event log format ---- */

START_TEST(test_event_line_is_the_spec_line)
{
	make_directory();
	struct dnsf_event event = event_for("c2.example.net", "IIJ-20240416-0001", 0);
	char *text = log_of(&event, 1, DNSF_CLIENT_IP_FULL);
	ck_assert_str_eq(
	    text, "{\"ts\":\"2024-04-16T01:02:03.456Z\",\"client\":\"203.0.113.7\","
		  "\"qname\":\"c2.example.net\",\"qtype\":\"A\",\"id\":\"IIJ-20240416-0001\","
		  "\"action\":\"block\",\"via\":\"qname\"}\n");
	free(text);
	remove_directory();
}
END_TEST

START_TEST(test_event_qtype_action_via_and_time_are_written_as_names)
{
	static const struct {
		uint16_t qtype;
		const char *name;
	} types[] = { { 28, "AAAA" },  { 15, "MX" },           { 16, "TXT" },     { 255, "ANY" },
		      { 65, "HTTPS" }, { 64, "SVCB" },         { 5, "CNAME" },    { 12, "PTR" },
		      { 0, "TYPE0" },  { 65280, "TYPE65280" }, { 260, "TYPE260" } };
	enum { COUNT = sizeof(types) / sizeof(types[0]) };
	struct dnsf_event events[COUNT];
	size_t lines;
	make_directory();
	for (size_t i = 0; i < COUNT; i++) {
		events[i] = event_for("c2.example.net", "X", (int)(i % 2));
		events[i].qtype = types[i].qtype;
		events[i].via_cname = i % 3 == 0;
		events[i].time_ms =
		    1704067199999 + (int64_t)i; /* 2023-12-31T23:59:59.999Z + i ms */
	}
	char *text = log_of(events, COUNT, DNSF_CLIENT_IP_FULL);
	cJSON **parsed = parse_lines(text, &lines);
	ck_assert_uint_eq(lines, COUNT);
	for (size_t i = 0; i < COUNT; i++) {
		ck_assert_str_eq(string(parsed[i], "qtype"), types[i].name);
		ck_assert_str_eq(string(parsed[i], "action"), i % 2 ? "monitor" : "block");
		ck_assert_str_eq(string(parsed[i], "via"), i % 3 == 0 ? "cname" : "qname");
		ck_assert_int_eq(cJSON_GetArraySize(parsed[i]), 7);
	}
	ck_assert_str_eq(string(parsed[0], "ts"), "2023-12-31T23:59:59.999Z");
	ck_assert_str_eq(string(parsed[1], "ts"), "2024-01-01T00:00:00.000Z");
	free_lines(parsed, lines);
	free(text);
	remove_directory();
}
END_TEST

START_TEST(test_event_strings_are_json_escaped_and_qname_normalised)
{
	struct dnsf_event events[4];
	size_t lines;
	make_directory();
	events[0] = event_for("Say\"Hi\\.Example.NET.", "id\"with\\quote\n\x01\x7f", 0);
	events[1] = event_for("trailing-escaped-dot\\.", "caf\xc3\xa9", 0); /* valid UTF-8 */
	events[2] = event_for(".", "bad\xff\xc3(utf8", 0);
	events[3] = event_for("EXAMPLE.org", "", 1);
	char *text = log_of(events, 4, DNSF_CLIENT_IP_FULL);
	ck_assert_ptr_nonnull(strstr(text, "\"qname\":\"say\\\"hi\\\\.example.net\""));
	ck_assert_ptr_nonnull(strstr(text, "\"id\":\"id\\\"with\\\\quote\\n\\u0001\\u007f\""));
	ck_assert_ptr_nonnull(strstr(text, "\"qname\":\"trailing-escaped-dot\\\\.\""));
	ck_assert_ptr_nonnull(strstr(text, "\"id\":\"caf\xc3\xa9\""));
	ck_assert_ptr_nonnull(strstr(text, "\"qname\":\".\""));
	ck_assert_ptr_nonnull(strstr(text, "\"id\":\"bad\xef\xbf\xbd\xef\xbf\xbd(utf8\""));
	cJSON **parsed = parse_lines(text, &lines);
	ck_assert_uint_eq(lines, 4);
	ck_assert_str_eq(string(parsed[0], "qname"), "say\"hi\\.example.net");
	ck_assert_str_eq(string(parsed[0], "id"), "id\"with\\quote\n\x01\x7f");
	ck_assert_str_eq(string(parsed[3], "qname"), "example.org");
	ck_assert_str_eq(string(parsed[3], "id"), "");
	free_lines(parsed, lines);
	free(text);
	remove_directory();
}
END_TEST

static struct dnsf_event event_from(int family, const char *address)
{
	struct dnsf_event event = event_for("c2.example.net", "X", 0);
	event.family = family;
	memset(event.address, 0, sizeof(event.address));
	if (family)
		ck_assert_int_eq(inet_pton(family, address, event.address), 1);
	return event;
}

START_TEST(test_client_truncate_keeps_the_24_and_the_48)
{
	struct dnsf_event events[] = { event_from(AF_INET, "203.0.113.7"),
				       event_from(AF_INET6, "2001:db8:1234:5678:9abc::1"),
				       event_from(AF_INET6, "::ffff:198.51.100.9"),
				       event_from(AF_INET, "192.0.2.255") };
	const char *expected[] = { "203.0.113.0", "2001:db8:1234::", "198.51.100.0", "192.0.2.0" };
	size_t lines;
	make_directory();
	char *text = log_of(events, 4, DNSF_CLIENT_IP_TRUNCATE);
	cJSON **parsed = parse_lines(text, &lines);
	ck_assert_uint_eq(lines, 4);
	for (size_t i = 0; i < 4; i++)
		ck_assert_str_eq(string(parsed[i], "client"), expected[i]);
	free_lines(parsed, lines);
	free(text);
	remove_directory();
}
END_TEST

START_TEST(test_client_full_writes_the_address_and_a_mapped_one_as_ipv4)
{
	struct dnsf_event events[] = { event_from(AF_INET6, "2001:db8:1234:5678:9abc::1"),
				       event_from(AF_INET6, "::ffff:198.51.100.9"),
				       event_from(0, NULL) };
	size_t lines;
	make_directory();
	char *text = log_of(events, 3, DNSF_CLIENT_IP_FULL);
	cJSON **parsed = parse_lines(text, &lines);
	ck_assert_uint_eq(lines, 3);
	ck_assert_str_eq(string(parsed[0], "client"), "2001:db8:1234:5678:9abc::1");
	ck_assert_str_eq(string(parsed[1], "client"), "198.51.100.9");
	ck_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(parsed[2], "client")));
	free_lines(parsed, lines);
	free(text);
	remove_directory();
}
END_TEST

START_TEST(test_client_none_writes_null_and_keeps_the_key)
{
	struct dnsf_event events[] = { event_from(AF_INET, "203.0.113.7"),
				       event_from(AF_INET6, "2001:db8::1") };
	make_directory();
	char *text = log_of(events, 2, DNSF_CLIENT_IP_NONE);
	ck_assert_ptr_null(strstr(text, "203.0.113"));
	ck_assert_ptr_null(strstr(text, "2001:db8"));
	ck_assert_uint_eq(count_lines(text), 2);
	ck_assert_ptr_nonnull(strstr(text, "Z\",\"client\":null,\"qname\":\"c2.example.net\""));
	free(text);
	remove_directory();
}
END_TEST

static int set_qname(struct dnsf_event *event, const char *wire, size_t length)
{
	return dnsf_event_set_qname_wire(event, (const uint8_t *)wire, length);
}

START_TEST(test_qname_from_wire_is_lowercase_escaped_without_trailing_dot)
{
	struct dnsf_event event;
	struct sockaddr_in6 v6 = { .sin6_family = AF_INET6 };
	struct sockaddr_in v4 = { .sin_family = AF_INET };
	char wire[300];

	ck_assert(set_qname(&event,
			    "\x02"
			    "C2\x07"
			    "Example\x03"
			    "NET",
			    17));
	ck_assert_str_eq(event.qname, "c2.example.net");
	ck_assert(set_qname(&event, "", 1));
	ck_assert_str_eq(event.qname, ".");
	ck_assert(set_qname(&event,
			    "\x06"
			    "a.b\\\x00\xff\x01_",
			    10));
	ck_assert_str_eq(event.qname, "a\\046b\\092\\000\\255._");
	/* malformed: a label runs past the end, or no root label */
	ck_assert(!set_qname(&event,
			     "\x05"
			     "ab",
			     3));
	ck_assert(!set_qname(&event,
			     "\x02"
			     "ab",
			     3));
	/* the longest plain name (253 characters) fits */
	size_t at = 0;
	for (int label = 0; label < 4; label++) {
		int size = label < 3 ? 63 : 61;
		wire[at++] = (char)size;
		memset(wire + at, 'a' + label, (size_t)size);
		at += (size_t)size;
	}
	wire[at++] = 0;
	ck_assert_uint_eq(at, 255);
	ck_assert(set_qname(&event, wire, at));
	ck_assert_uint_eq(strlen(event.qname), 253);
	/* too long with escapes: cut at a character, marked with "..." */
	memset(wire + 1, '*', 63);
	ck_assert(!set_qname(&event, wire, at));
	ck_assert_uint_eq(strlen(event.qname), 252 - 252 % 4 + 3);
	ck_assert_str_eq(event.qname + strlen(event.qname) - 7, "\\042...");
	/* the client address */
	inet_pton(AF_INET6, "2001:db8::7", &v6.sin6_addr);
	dnsf_event_set_client(&event, (struct sockaddr *)&v6);
	ck_assert_int_eq(event.family, AF_INET6);
	ck_assert_mem_eq(event.address, &v6.sin6_addr, 16);
	inet_pton(AF_INET, "192.0.2.7", &v4.sin_addr);
	dnsf_event_set_client(&event, (struct sockaddr *)&v4);
	ck_assert_int_eq(event.family, AF_INET);
	ck_assert_mem_eq(event.address, &v4.sin_addr, 4);
	dnsf_event_set_client(&event, NULL);
	ck_assert_int_eq(event.family, 0);
}
END_TEST

/* ---- counters ---- */

enum { THREADS = 8 };

struct worker {
	struct dnsf_reporter *reporter;
	int number;
	uint64_t queries, optout, blocked, monitored;
	uint64_t by_id[8];
};

/* A resolver thread: known counts in several bursts over about 2.5 s. */
static void *count_known(void *argument)
{
	struct worker *worker = argument;
	struct dnsf_counters *counters = dnsf_reporter_thread(worker->reporter);
	ck_assert_ptr_eq(counters, dnsf_reporter_thread(worker->reporter));
	for (int burst = 0; burst < 5; burst++) {
		for (int i = 0; i < 1000 + worker->number * 37; i++) {
			dnsf_count_query(counters);
			worker->queries++;
			if (i % 7 == 0) {
				dnsf_count_optout(counters);
				worker->optout++;
			}
			if (i % 5 == 0) {
				int id = (i / 5 + worker->number) % 8;
				struct dnsf_event event =
				    event_for("c2.example.net", sum_ids[id], id % 3 == 0);
				dnsf_report_match(counters, &event);
				if (id % 3 == 0)
					worker->monitored++;
				else
					worker->blocked++;
				worker->by_id[id]++;
			}
		}
		sleep_ms(500);
	}
	return NULL;
}

/* The metrics file's value of one sample line, e.g. "dnsfilter_queries_total". */
static uint64_t metric_value(const char *text, const char *sample)
{
	char needle[256];
	snprintf(needle, sizeof(needle), "\n%s ", sample);
	const char *at = strstr(text, needle);
	ck_assert_msg(at != NULL, "no sample %s in:\n%s", sample, text);
	return strtoull(at + strlen(needle), NULL, 10);
}

START_TEST(test_counts_from_several_threads_are_summed_exactly)
{
	struct worker workers[THREADS];
	pthread_t threads[THREADS];
	struct dnsf_report_settings settings;
	struct sums expected = { 0 };

	make_directory();
	settings = all_files(1);
	struct dnsf_reporter *reporter = new_reporter(&settings);
	dnsf_reporter_set_feed(reporter, 2024063001);
	ck_assert(dnsf_reporter_start(reporter));
	for (int i = 0; i < THREADS; i++) {
		workers[i] = (struct worker){ .reporter = reporter, .number = i };
		ck_assert_int_eq(pthread_create(&threads[i], NULL, count_known, &workers[i]), 0);
	}
	dnsf_reporter_count_feed_failure(reporter);
	dnsf_reporter_count_feed_failure(reporter);
	for (int i = 0; i < THREADS; i++) {
		pthread_join(threads[i], NULL);
		expected.queries += workers[i].queries;
		expected.optout += workers[i].optout;
		expected.blocked += workers[i].blocked;
		expected.monitored += workers[i].monitored;
		for (int id = 0; id < 8; id++)
			expected.by_id[id] += workers[i].by_id[id];
	}
	dnsf_reporter_stop(reporter);
	dnsf_reporter_free(reporter);

	struct sums sums = sum_stats(0, SIZE_MAX);
	ck_assert_uint_ge(sums.lines, 2); /* at least one interval and the last line */
	ck_assert_uint_eq(sums.queries, expected.queries);
	ck_assert_uint_eq(sums.optout, expected.optout);
	ck_assert_uint_eq(sums.blocked, expected.blocked);
	ck_assert_uint_eq(sums.monitored, expected.monitored);
	ck_assert_uint_eq(sums.dropped, 0);
	ck_assert_uint_eq(sums.failures, 2);
	ck_assert_uint_eq(sums.serial, 2024063001);
	for (int id = 0; id < 8; id++)
		ck_assert_uint_eq(sums.by_id[id], expected.by_id[id]);
	ck_assert_uint_eq(file_lines(log_path), expected.blocked + expected.monitored);

	/* the metrics, cumulative, agree */
	char *metrics = read_text(metrics_path);
	ck_assert_uint_eq(metric_value(metrics, "dnsfilter_queries_total"), expected.queries);
	ck_assert_uint_eq(metric_value(metrics, "dnsfilter_optout_queries_total"), expected.optout);
	ck_assert_uint_eq(metric_value(metrics, "dnsfilter_blocked_total"), expected.blocked);
	ck_assert_uint_eq(metric_value(metrics, "dnsfilter_monitored_total"), expected.monitored);
	ck_assert_uint_eq(metric_value(metrics, "dnsfilter_matches_total{id=\"ID-C\"}"),
			  expected.by_id[2]);
	ck_assert_uint_eq(metric_value(metrics, "dnsfilter_feed_serial"), 2024063001);
	ck_assert_uint_eq(metric_value(metrics, "dnsfilter_feed_failures_total"), 2);
	free(metrics);
	remove_directory();
}
END_TEST

/* Wait until the file has at least lines lines; bounded. */
static int wait_for_lines(const char *path, size_t lines, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;
	while (file_lines(path) < lines) {
		if (now_ms() > end)
			return 0;
		sleep_ms(20);
	}
	return 1;
}

START_TEST(test_counter_lines_are_deltas_per_interval)
{
	struct dnsf_report_settings settings = { .stats_path = NULL, .stats_interval = 1 };
	make_directory();
	settings.stats_path = stats_path;
	struct dnsf_reporter *reporter = new_reporter(&settings);
	ck_assert(dnsf_reporter_start(reporter));
	struct dnsf_counters *counters = dnsf_reporter_thread(reporter);
	dnsf_reporter_set_feed(reporter, 7);
	for (int i = 0; i < 5; i++)
		dnsf_count_query(counters);
	dnsf_reporter_count_feed_failure(reporter);
	ck_assert(wait_for_lines(stats_path, 1, 5000));
	for (int i = 0; i < 7; i++)
		dnsf_count_query(counters);
	struct dnsf_event event = event_for("c2.example.net", "ID-B", 0);
	dnsf_report_match(counters, &event);
	dnsf_report_match(counters, &event);
	dnsf_count_optout(counters);
	dnsf_reporter_set_feed(reporter, 8);
	dnsf_reporter_set_stale(reporter, DNSF_STALE_OPTOUT, 86400);
	ck_assert(wait_for_lines(stats_path, 2, 5000));
	dnsf_reporter_stop(reporter);
	dnsf_reporter_free(reporter);

	char *text = read_text(stats_path);
	size_t count;
	cJSON **lines = parse_lines(text, &count);
	ck_assert_uint_ge(count, 3); /* two intervals and the last line */
	ck_assert_uint_eq(number(lines[0], "interval"), 1);
	ck_assert_uint_eq(number(lines[0], "queries"), 5);
	ck_assert_uint_eq(number(lines[0], "blocked"), 0);
	ck_assert_uint_eq(number(lines[0], "feed_failures"), 1);
	ck_assert_uint_eq(number(lines[0], "feed_serial"), 7);
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(lines[0], "by_id")),
			 0);
	ck_assert_uint_eq(number(lines[1], "interval"), 1);
	ck_assert_uint_eq(number(lines[count - 1], "feed_serial"), 8);
	ck_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(lines[0], "feed_stale_since")));
	ck_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(lines[0], "optout_stale_since")));
	ck_assert(
	    cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(lines[count - 1], "feed_stale_since")));
	ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
			     lines[count - 1], "optout_stale_since")),
			 "1970-01-02T00:00:00.000Z");
	free_lines(lines, count);
	free(text);
	struct sums later = sum_stats(1, SIZE_MAX);
	ck_assert_uint_eq(later.queries, 7);
	ck_assert_uint_eq(later.blocked, 2);
	ck_assert_uint_eq(later.optout, 1);
	ck_assert_uint_eq(later.by_id[1], 2);
	ck_assert_uint_eq(later.failures, 0);
	remove_directory();
}
END_TEST

START_TEST(test_stop_writes_a_last_counter_line_before_the_interval)
{
	struct dnsf_report_settings settings = { .stats_interval = 3600 };
	make_directory();
	settings.stats_path = stats_path;
	struct dnsf_reporter *reporter = new_reporter(&settings);
	ck_assert(dnsf_reporter_start(reporter));
	struct dnsf_counters *counters = dnsf_reporter_thread(reporter);
	struct dnsf_event event = event_for("c2.example.net", "ID-A", 1);
	dnsf_count_query(counters);
	dnsf_count_query(counters);
	dnsf_report_match(counters, &event);
	sleep_ms(200);
	ck_assert_uint_eq(file_lines(stats_path), 0);
	dnsf_reporter_stop(reporter);
	dnsf_reporter_free(reporter);
	struct sums sums = sum_stats(0, SIZE_MAX);
	ck_assert_uint_eq(sums.lines, 1);
	ck_assert_uint_eq(sums.queries, 2);
	ck_assert_uint_eq(sums.monitored, 1);
	ck_assert_uint_eq(sums.by_id[0], 1);

	/* a reporter that was never started writes its last line at stop too */
	reporter = new_reporter(&settings);
	counters = dnsf_reporter_thread(reporter);
	dnsf_count_query(counters);
	dnsf_report_match(counters, &event);
	dnsf_reporter_stop(reporter);
	dnsf_reporter_free(reporter);
	sums = sum_stats(1, SIZE_MAX);
	ck_assert_uint_eq(sums.lines, 1);
	ck_assert_uint_eq(sums.queries, 1);
	ck_assert_uint_eq(sums.by_id[0], 1);
	remove_directory();
}
END_TEST

START_TEST(test_a_change_of_mode_ends_the_interval_with_a_line_of_the_old_mode)
{
	struct dnsf_report_settings settings = { .stats_interval = 3600 };
	make_directory();
	settings.stats_path = stats_path;
	settings.metrics_path = metrics_path;
	struct dnsf_reporter *reporter = new_reporter(&settings);
	/* before enforce-from: monitor */
	dnsf_reporter_set_mode(reporter, DNSF_MODE_MONITOR);
	ck_assert(dnsf_reporter_start(reporter));
	struct dnsf_counters *counters = dnsf_reporter_thread(reporter);
	struct dnsf_event monitored = event_for("c2.example.net", "ID-A", 1);
	struct dnsf_event blocked = event_for("c2.example.net", "ID-A", 0);
	for (int i = 0; i < 3; i++)
		dnsf_count_query(counters);
	dnsf_report_match(counters, &monitored);
	sleep_ms(300); /* the events drained, no line before the hour */
	ck_assert_uint_eq(file_lines(stats_path), 0);
	/* enforce-from reached: a line at once, long before the interval */
	dnsf_reporter_set_mode(reporter, DNSF_MODE_ENFORCE);
	ck_assert(wait_for_lines(stats_path, 1, 2000));
	char *text = read_text(metrics_path);
	ck_assert_uint_eq(metric_value(text, "dnsfilter_enforcing"), 1);
	free(text);
	/* the same mode again ends nothing */
	dnsf_reporter_set_mode(reporter, DNSF_MODE_ENFORCE);
	for (int i = 0; i < 2; i++)
		dnsf_count_query(counters);
	dnsf_report_match(counters, &blocked);
	sleep_ms(300);
	ck_assert_uint_eq(file_lines(stats_path), 1);
	dnsf_reporter_stop(reporter);
	dnsf_reporter_free(reporter);

	text = read_text(stats_path);
	size_t count;
	cJSON **lines = parse_lines(text, &count);
	ck_assert_uint_eq(count, 2);
	ck_assert_str_eq(string(lines[0], "mode"), "monitor");
	ck_assert_uint_eq(number(lines[0], "queries"), 3);
	ck_assert_uint_eq(number(lines[0], "monitored"), 1);
	ck_assert_uint_eq(number(lines[0], "blocked"), 0);
	ck_assert_str_eq(string(lines[1], "mode"), "enforce");
	ck_assert_uint_eq(number(lines[1], "queries"), 2);
	ck_assert_uint_eq(number(lines[1], "monitored"), 0);
	ck_assert_uint_eq(number(lines[1], "blocked"), 1);
	free_lines(lines, count);
	free(text);

	/* monitor now: the metrics say 0; a reporter never started says its
	 * mode in its last line */
	reporter = new_reporter(&settings);
	dnsf_reporter_set_mode(reporter, DNSF_MODE_MONITOR);
	dnsf_count_query(dnsf_reporter_thread(reporter));
	dnsf_reporter_stop(reporter);
	dnsf_reporter_free(reporter);
	text = read_text(metrics_path);
	ck_assert_uint_eq(metric_value(text, "dnsfilter_enforcing"), 0);
	free(text);
	text = read_text(stats_path);
	lines = parse_lines(text, &count);
	ck_assert_uint_eq(count, 3);
	ck_assert_str_eq(string(lines[2], "mode"), "monitor");
	free_lines(lines, count);
	free(text);
	remove_directory();
}
END_TEST

static void *count_overflow(void *argument)
{
	struct dnsf_counters *counters = dnsf_reporter_thread(argument);
	struct dnsf_event event = event_for("c2.example.net", "ID-D", 0);
	dnsf_count_query(counters);
	dnsf_count_optout(counters);
	dnsf_report_match(counters, &event);
	return NULL;
}

START_TEST(test_threads_past_the_slots_share_one_and_are_counted)
{
	enum { EXTRA = 5 };
	struct dnsf_report_settings settings = { .stats_interval = 60 };
	make_directory();
	settings.stats_path = stats_path;
	struct dnsf_reporter *reporter = new_reporter(&settings);
	ck_assert(dnsf_reporter_start(reporter));
	/* one after another: each thread takes a slot that stays taken */
	for (int i = 0; i < DNSF_REPORT_SLOTS + EXTRA; i++) {
		pthread_t thread;
		ck_assert_int_eq(pthread_create(&thread, NULL, count_overflow, reporter), 0);
		pthread_join(thread, NULL);
	}
	dnsf_reporter_stop(reporter);
	dnsf_reporter_free(reporter);
	struct sums sums = sum_stats(0, SIZE_MAX);
	ck_assert_uint_eq(sums.queries, DNSF_REPORT_SLOTS + EXTRA);
	ck_assert_uint_eq(sums.optout, DNSF_REPORT_SLOTS + EXTRA);
	ck_assert_uint_eq(sums.blocked, DNSF_REPORT_SLOTS + EXTRA);
	ck_assert_uint_eq(sums.by_id[3], DNSF_REPORT_SLOTS + EXTRA);
	ck_assert_uint_eq(sums.dropped, 0);
	remove_directory();
}
END_TEST

START_TEST(test_a_new_reporter_gives_the_thread_a_new_slot)
{
	struct dnsf_report_settings settings = { .stats_interval = 60 };
	make_directory();
	settings.stats_path = stats_path;
	for (int round = 0; round < 3; round++) {
		/* a reload: the next reporter may sit at the same address */
		struct dnsf_reporter *reporter = new_reporter(&settings);
		ck_assert(dnsf_reporter_start(reporter));
		dnsf_count_query(dnsf_reporter_thread(reporter));
		dnsf_reporter_stop(reporter);
		dnsf_reporter_free(reporter);
	}
	struct sums sums = sum_stats(0, SIZE_MAX);
	ck_assert_uint_eq(sums.lines, 3);
	ck_assert_uint_eq(sums.queries, 3);
	ck_assert_ptr_null(dnsf_reporter_thread(NULL));
	dnsf_count_query(NULL); /* no reporter: nothing, no crash */
	remove_directory();
}
END_TEST

/* ---- rotation ---- */

struct producer {
	struct dnsf_reporter *reporter;
	_Atomic int stop;
	int sent;
};

/* Events numbered in their qname, about one every 100 µs. */
static void *produce_numbered(void *argument)
{
	struct producer *producer = argument;
	struct dnsf_counters *counters = dnsf_reporter_thread(producer->reporter);
	while (!atomic_load(&producer->stop)) {
		char qname[64];
		snprintf(qname, sizeof(qname), "n%d.example", producer->sent++);
		struct dnsf_event event = event_for(qname, "ID-E", 0);
		dnsf_report_match(counters, &event);
		struct timespec delay = { 0, 100 * 1000 };
		nanosleep(&delay, NULL);
	}
	return NULL;
}

/* The numbers of the events in a log; *seen[n] counts them. */
static void numbers_in(const char *path, int *seen, int size, int *lowest, int *highest)
{
	char *text = read_text(path);
	*lowest = size;
	*highest = -1;
	ck_assert_ptr_nonnull(text);
	for (const char *at = text; (at = strstr(at, "\"qname\":\"n")); at++) {
		int n = atoi(at + strlen("\"qname\":\"n"));
		ck_assert_int_lt(n, size);
		seen[n]++;
		if (n < *lowest)
			*lowest = n;
		if (n > *highest)
			*highest = n;
	}
	free(text);
}

START_TEST(test_rotation_reopens_the_log_and_loses_no_event)
{
	struct producer producer = { 0 };
	struct dnsf_report_settings settings;
	pthread_t thread;
	char rotated[160];
	struct stat status;

	make_directory();
	snprintf(rotated, sizeof(rotated), "%s.1", log_path);
	settings = all_files(60);
	producer.reporter = new_reporter(&settings);
	ck_assert(dnsf_reporter_start(producer.reporter));
	pthread_create(&thread, NULL, produce_numbered, &producer);
	ck_assert(wait_for_lines(log_path, 100, 5000));
	ck_assert_int_eq(rename(log_path, rotated), 0);
	/* the writer notices at its next write and creates the path again */
	int64_t end = now_ms() + 5000;
	while (stat(log_path, &status) != 0 && now_ms() < end)
		sleep_ms(10);
	ck_assert_int_eq(stat(log_path, &status), 0);
	ck_assert(wait_for_lines(log_path, 100, 5000));
	atomic_store(&producer.stop, 1);
	pthread_join(thread, NULL);
	dnsf_reporter_stop(producer.reporter);
	dnsf_reporter_free(producer.reporter);

	int *seen = calloc((size_t)producer.sent, sizeof(int));
	int old_low, old_high, new_low, new_high;
	numbers_in(rotated, seen, producer.sent, &old_low, &old_high);
	numbers_in(log_path, seen, producer.sent, &new_low, &new_high);
	ck_assert_int_eq(old_low, 0);
	ck_assert_int_lt(old_high, new_low); /* nothing old after the reopen */
	ck_assert_int_eq(new_high, producer.sent - 1);
	for (int n = 0; n < producer.sent; n++)
		ck_assert_msg(seen[n] == 1, "event %d written %d times", n, seen[n]);
	free(seen);
	ck_assert_uint_eq(sum_stats(0, SIZE_MAX).dropped, 0);
	remove_directory();
}
END_TEST

/* ---- a slow or stuck FIFO ---- */

struct slow_reader {
	int fd;
	_Atomic int stop;
	char *text;
	size_t length;
	int bytes_per_read;
};

/* Read a little, then rest; keep what was read. */
static void *read_slowly(void *argument)
{
	struct slow_reader *reader = argument;
	reader->text = malloc(1 << 24);
	while (!atomic_load(&reader->stop)) {
		ssize_t got =
		    read(reader->fd, reader->text + reader->length, (size_t)reader->bytes_per_read);
		if (got > 0)
			reader->length += (size_t)got;
		sleep_ms(20);
	}
	return NULL;
}

/* After stop: read what is left in the FIFO. */
static void read_rest(struct slow_reader *reader)
{
	ssize_t got;
	if (!reader->text)
		reader->text = malloc(1 << 24);
	while ((got = read(reader->fd, reader->text + reader->length, 65536)) > 0)
		reader->length += (size_t)got;
	reader->text[reader->length] = 0;
}

/*
 * Send events as fast as possible to a reporter whose log is a FIFO read by
 * reader (bytes_per_read 0: never read); check that no call waits, that
 * stop is prompt, and that the lines read + dropped are all the events.
 */
static void check_fifo_never_blocks(int bytes_per_read)
{
	enum { EVENTS = 100000 };
	struct slow_reader reader = { .bytes_per_read = bytes_per_read };
	struct dnsf_report_settings settings;
	pthread_t thread;
	int64_t slowest = 0;

	make_directory();
	ck_assert_int_eq(mkfifo(log_path, 0600), 0);
	reader.fd = open(log_path, O_RDONLY | O_NONBLOCK);
	ck_assert_int_ge(reader.fd, 0);
	settings = all_files(1);
	struct dnsf_reporter *reporter = new_reporter(&settings);
	ck_assert(dnsf_reporter_start(reporter));
	if (bytes_per_read)
		pthread_create(&thread, NULL, read_slowly, &reader);
	struct dnsf_counters *counters = dnsf_reporter_thread(reporter);
	int64_t started = now_ms();
	for (int i = 0; i < EVENTS; i++) {
		struct dnsf_event event = event_for("c2.example.net", "ID-F", 0);
		int64_t before = now_ms();
		dnsf_report_match(counters, &event);
		int64_t took = now_ms() - before;
		if (took > slowest)
			slowest = took;
		if (i % 10000 == 0)
			sleep_ms(150); /* let the writer fill the FIFO */
	}
	int64_t sending = now_ms() - started;
	int64_t stop_started = now_ms();
	dnsf_reporter_stop(reporter);
	int64_t stopping = now_ms() - stop_started;
	dnsf_reporter_free(reporter);
	if (bytes_per_read) {
		atomic_store(&reader.stop, 1);
		pthread_join(thread, NULL);
	}
	read_rest(&reader);
	close(reader.fd);

	ck_assert_msg(slowest < 250, "a call took %lld ms", (long long)slowest);
	ck_assert_msg(sending < 10000, "sending took %lld ms", (long long)sending);
	ck_assert_msg(stopping < 2000, "stop took %lld ms", (long long)stopping);
	/* every line that got through is whole; with the drops, that is all */
	size_t lines;
	ck_assert_uint_eq(reader.length, strlen(reader.text));
	ck_assert(reader.length == 0 || reader.text[reader.length - 1] == '\n');
	cJSON **parsed = parse_lines(reader.text, &lines);
	free_lines(parsed, lines);
	struct sums sums = sum_stats(0, SIZE_MAX);
	ck_assert_uint_eq(sums.blocked, EVENTS);
	ck_assert_uint_gt(sums.dropped, 0);
	ck_assert_uint_gt(lines, 0); /* at least what the FIFO holds */
	ck_assert_uint_eq(lines + sums.dropped, EVENTS);
	free(reader.text);
	remove_directory();
}

START_TEST(test_stuck_fifo_drops_events_and_never_blocks_a_resolver_thread)
{
	check_fifo_never_blocks(0);
}
END_TEST

START_TEST(test_slow_fifo_reader_gets_whole_lines_and_the_rest_is_counted_dropped)
{
	check_fifo_never_blocks(700);
}
END_TEST

static _Atomic int complaints;
static char complaint[1024];

static void note_error(void *argument, const char *message)
{
	ck_assert_ptr_eq(argument, &complaints);
	snprintf(complaint, sizeof(complaint), "%s", message);
	atomic_fetch_add(&complaints, 1);
}

START_TEST(test_fifo_reader_going_away_is_reported_once_and_not_fatal)
{
	struct dnsf_report_settings settings;
	make_directory();
	ck_assert_int_eq(mkfifo(log_path, 0600), 0);
	int fd = open(log_path, O_RDONLY | O_NONBLOCK);
	settings = all_files(60);
	settings.log_error = note_error;
	settings.log_error_arg = &complaints;
	struct dnsf_reporter *reporter = new_reporter(&settings);
	ck_assert(dnsf_reporter_start(reporter));
	struct dnsf_counters *counters = dnsf_reporter_thread(reporter);
	struct dnsf_event event = event_for("c2.example.net", "ID-G", 0);
	dnsf_report_match(counters, &event);
	sleep_ms(300);
	close(fd); /* the reader is gone: a write gets EPIPE (and SIGPIPE) */
	for (int round = 0; round < 5; round++) {
		dnsf_report_match(counters, &event);
		sleep_ms(150);
	}
	dnsf_reporter_stop(reporter);
	dnsf_reporter_free(reporter);
	ck_assert_int_eq(atomic_load(&complaints), 1);
	ck_assert_msg(strstr(complaint, "log.path: ") && strstr(complaint, log_path), "%s",
		      complaint);
	struct sums sums = sum_stats(0, SIZE_MAX);
	ck_assert_uint_eq(sums.blocked, 6);
	ck_assert_uint_eq(sums.dropped, 5);
	ck_assert_uint_eq(sums.by_id[6], 6); /* drained, though not logged */
	remove_directory();
}
END_TEST

/* ---- metrics ---- */

/* Check the Prometheus text format; the value of every sample. */
static void check_exposition(const char *text, int *samples)
{
	char family[128] = "";
	int typed = 0;
	*samples = 0;
	ck_assert(text[0] && text[strlen(text) - 1] == '\n');
	for (const char *line = text; *line; line = strchr(line, '\n') + 1) {
		char name[128], type[16];
		unsigned long long value;
		if (strncmp(line, "# HELP ", 7) == 0) {
			ck_assert_int_eq(sscanf(line + 7, "%127s", family), 1);
			ck_assert_msg(strncmp(family, "dnsfilter_", 10) == 0, "%s", family);
			typed = 0;
			continue;
		}
		if (strncmp(line, "# TYPE ", 7) == 0) {
			ck_assert_int_eq(sscanf(line + 7, "%127s %15s", name, type), 2);
			ck_assert_str_eq(name, family);
			ck_assert(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0);
			ck_assert_int_eq(strcmp(type, "counter") == 0,
					 strlen(name) > 6 &&
					     strcmp(name + strlen(name) - 6, "_total") == 0);
			typed = 1;
			continue;
		}
		ck_assert_msg(typed, "sample before its TYPE: %.40s", line);
		size_t name_length = strcspn(line, "{ ");
		ck_assert_msg(strlen(family) == name_length &&
				  strncmp(line, family, name_length) == 0,
			      "sample %.40s outside its family %s", line, family);
		const char *value_at = strchr(line + name_length, ' ');
		if (line[name_length] == '{')
			value_at = strstr(line, "\"} ") + 2;
		ck_assert_int_eq(sscanf(value_at, " %llu", &value), 1);
		(*samples)++;
	}
}

struct metrics_reader {
	_Atomic int stop;
	int reads, inodes;
	ino_t last_inode;
};

/* Read the metrics file over and over: it must always be whole. */
static void *read_metrics(void *argument)
{
	struct metrics_reader *reader = argument;
	while (!atomic_load(&reader->stop)) {
		struct stat status;
		int fd = open(metrics_path, O_RDONLY);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(fstat(fd, &status), 0);
		char *text = calloc(1, 1 << 16);
		ssize_t length = read(fd, text, (1 << 16) - 1);
		close(fd);
		ck_assert_int_gt(length, 0);
		int samples;
		check_exposition(text, &samples);
		ck_assert_int_ge(samples, 7);
		free(text);
		if (status.st_ino != reader->last_inode)
			reader->inodes++;
		reader->last_inode = status.st_ino;
		reader->reads++;
		sleep_ms(2);
	}
	return NULL;
}

START_TEST(test_metrics_file_is_prometheus_text_replaced_atomically)
{
	struct metrics_reader reader = { 0 };
	struct dnsf_report_settings settings = { .stats_interval = 1 };
	pthread_t thread;
	make_directory();
	settings.metrics_path = metrics_path;
	struct dnsf_reporter *reporter = new_reporter(&settings);
	/* written at once, all zero */
	char *text = read_text(metrics_path);
	ck_assert_uint_eq(metric_value(text, "dnsfilter_queries_total"), 0);
	free(text);
	ck_assert(dnsf_reporter_start(reporter));
	pthread_create(&thread, NULL, read_metrics, &reader);
	struct dnsf_counters *counters = dnsf_reporter_thread(reporter);
	struct dnsf_event odd = event_for("c2.example.net", "ID \"quoted\" \\ back", 0);
	struct dnsf_event plain = event_for("c2.example.net", "ID-H", 1);
	dnsf_reporter_set_feed(reporter, 2024063001);
	dnsf_reporter_set_stale(reporter, DNSF_STALE_FEED, 1700000000);
	for (int second = 0; second < 3; second++) {
		for (int i = 0; i < 100; i++)
			dnsf_count_query(counters);
		dnsf_report_match(counters, &odd);
		dnsf_report_match(counters, &plain);
		dnsf_count_optout(counters);
		sleep_ms(1000);
	}
	dnsf_reporter_stop(reporter);
	atomic_store(&reader.stop, 1);
	pthread_join(thread, NULL);
	dnsf_reporter_free(reporter);
	ck_assert_int_gt(reader.reads, 50);
	ck_assert_int_ge(reader.inodes, 2); /* replaced by rename, not rewritten */

	int samples;
	text = read_text(metrics_path);
	check_exposition(text, &samples);
	ck_assert_int_eq(samples, 14);
	ck_assert_uint_eq(metric_value(text, "dnsfilter_queries_total"), 300);
	ck_assert_uint_eq(metric_value(text, "dnsfilter_optout_queries_total"), 3);
	ck_assert_uint_eq(metric_value(text, "dnsfilter_blocked_total"), 3);
	ck_assert_uint_eq(metric_value(text, "dnsfilter_monitored_total"), 3);
	ck_assert_uint_eq(
	    metric_value(text, "dnsfilter_matches_total{id=\"ID \\\"quoted\\\" \\\\ back\"}"), 3);
	ck_assert_uint_eq(metric_value(text, "dnsfilter_matches_total{id=\"ID-H\"}"), 3);
	ck_assert_uint_eq(metric_value(text, "dnsfilter_dropped_events_total"), 0);
	ck_assert_uint_eq(metric_value(text, "dnsfilter_feed_serial"), 2024063001);
	ck_assert_ptr_nonnull(strstr(text, "# TYPE dnsfilter_feed_serial gauge\n"));
	ck_assert_uint_eq(metric_value(text, "dnsfilter_feed_stale"), 1);
	ck_assert_uint_eq(metric_value(text, "dnsfilter_feed_stale_since_seconds"), 1700000000);
	ck_assert_uint_eq(metric_value(text, "dnsfilter_optout_stale"), 0);
	ck_assert_uint_eq(metric_value(text, "dnsfilter_optout_stale_since_seconds"), 0);
	free(text);
	/* no temporary file is left behind */
	DIR *dir = opendir(directory);
	struct dirent *entry;
	int files = 0;
	while ((entry = readdir(dir)))
		if (entry->d_name[0] != '.')
			files++;
	closedir(dir);
	ck_assert_int_eq(files, 1);
	remove_directory();
}
END_TEST

/* ---- bad paths, full disks ---- */

static void assert_refused(const struct dnsf_report_settings *settings, const char *part)
{
	struct dnsf_errors errors = { 0 };
	ck_assert_ptr_null(dnsf_reporter_new(settings, &errors));
	assert_errors_mention(&errors, part, NULL);
	dnsf_errors_clear(&errors);
}

/** Messages told to log_error (by the writer thread; read by the test's). */
static _Atomic int told_count;
static char told[8][1024];
static pthread_mutex_t told_lock = PTHREAD_MUTEX_INITIALIZER;

static void tell(void *argument, const char *message)
{
	(void)argument;
	pthread_mutex_lock(&told_lock);
	int i = atomic_load(&told_count);
	if (i < 8)
		snprintf(told[i], sizeof(told[i]), "%s", message);
	atomic_store(&told_count, i + 1);
	pthread_mutex_unlock(&told_lock);
}

static int was_told(const char *part1, const char *part2)
{
	int found = 0;
	pthread_mutex_lock(&told_lock);
	for (int i = 0; i < atomic_load(&told_count) && i < 8 && !found; i++)
		found = strstr(told[i], part1) && (!part2 || strstr(told[i], part2));
	pthread_mutex_unlock(&told_lock);
	return found;
}

/* The file holds only whole lines (empty, or ending in a newline), each of
 * them JSON; the number of lines. */
static size_t assert_whole_json_lines(const char *path)
{
	char *text = read_text(path);
	size_t count = 0, length;
	ck_assert_ptr_nonnull(text);
	length = strlen(text);
	ck_assert_msg(length == 0 || text[length - 1] == '\n', "%s ends inside a line: ...%s", path,
		      text + (length > 80 ? length - 80 : 0));
	free_lines(parse_lines(text, &count), count);
	free(text);
	return count;
}

START_TEST(test_unopenable_files_are_told_retried_and_never_refuse_the_start)
{
	char missing[128], log[256], stats[256], metrics[256];
	struct dnsf_report_settings settings = { .stats_interval = 1,
						 .log_error = tell,
						 .client_ip = DNSF_CLIENT_IP_FULL };
	make_directory();
	atomic_store(&told_count, 0);
	/* a directory that is not there yet (not mounted, not made) */
	snprintf(missing, sizeof(missing), "%s/later", directory);
	snprintf(log, sizeof(log), "%s/events.log", missing);
	snprintf(stats, sizeof(stats), "%s/stats.log", missing);
	snprintf(metrics, sizeof(metrics), "%s/dnsfilter.prom", missing);
	settings.log_path = log;
	settings.stats_path = stats;
	settings.metrics_path = metrics;
	struct dnsf_reporter *reporter = new_reporter(&settings);
	ck_assert_int_eq(atomic_load(&told_count), 3);
	ck_assert(was_told("log.path: ", "/later/events.log: cannot open: No such file"));
	ck_assert(was_told("stats.path: ", "/later/stats.log: cannot open: No such file"));
	ck_assert(was_told("metrics.path: ", "/later/dnsfilter.prom: cannot write: No such file"));
	ck_assert(dnsf_reporter_start(reporter));
	struct dnsf_counters *counters = dnsf_reporter_thread(reporter);
	struct dnsf_event event = event_for("c2.example.net", "ID-A", 0);
	for (int i = 0; i < 3; i++) {
		dnsf_count_query(counters);
		dnsf_report_match(counters, &event);
	}
	sleep_ms(1300); /* a counter line and the metrics are due: still no directory */
	ck_assert_int_eq(atomic_load(&told_count), 3); /* told once each */
	ck_assert_int_eq(mkdir(missing, 0755), 0);
	for (int i = 0; i < 2; i++) {
		dnsf_count_query(counters);
		dnsf_report_match(counters, &event);
	}
	strcpy(stats_path, stats);
	ck_assert(wait_for_lines(stats, 1, 3000));
	dnsf_reporter_stop(reporter);
	dnsf_reporter_free(reporter);
	/* the events after the directory came, the counts of all */
	ck_assert_uint_eq(assert_whole_json_lines(log), 2);
	struct sums sums = sum_stats(0, SIZE_MAX);
	ck_assert_uint_eq(sums.queries, 5);
	ck_assert_uint_eq(sums.blocked, 5);
	ck_assert_uint_eq(sums.by_id[0], 5);
	ck_assert_uint_eq(sums.dropped, 3);
	char *text = read_text(metrics);
	ck_assert_uint_eq(metric_value(text, "dnsfilter_queries_total"), 5);
	free(text);
	unlink(log);
	unlink(stats);
	unlink(metrics);
	rmdir(missing);
	remove_directory();
}
END_TEST

START_TEST(test_bad_settings_are_still_errors)
{
	struct dnsf_report_settings settings = { .stats_interval = 60 };
	settings.log_path = "";
	assert_refused(&settings, "log.path: must be a non-empty path");
	settings.log_path = NULL;
	settings.stats_interval = 0;
	assert_refused(&settings, "stats.interval: must be a whole number from 1 to 86400");
	/* nothing configured is fine: counts only */
	settings.stats_interval = 60;
	struct dnsf_reporter *reporter = new_reporter(&settings);
	ck_assert(dnsf_reporter_start(reporter));
	struct dnsf_event event = event_for("c2.example.net", "X", 0);
	dnsf_report_match(dnsf_reporter_thread(reporter), &event);
	dnsf_reporter_stop(reporter);
	dnsf_reporter_free(reporter);
}
END_TEST

/* A file size limit makes a write stop short inside a line and the next
 * one fail, as a full disk does, without needing one. */
static void limit_file_size(rlim_t bytes)
{
	struct rlimit limit;
	/* EFBIG instead of the signal; before the limit: check itself writes
	 * to a file at each assertion */
	signal(SIGXFSZ, SIG_IGN);
	int got = getrlimit(RLIMIT_FSIZE, &limit);
	limit.rlim_cur = bytes;
	int set = got == 0 ? setrlimit(RLIMIT_FSIZE, &limit) : -1;
	ck_assert_int_eq(set, 0);
}

static void unlimit_file_size(void)
{
	struct rlimit limit;
	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &limit), 0);
	limit.rlim_cur = limit.rlim_max;
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &limit), 0);
}

static off_t file_size(const char *path)
{
	struct stat status;
	ck_assert_int_eq(stat(path, &status), 0);
	return status.st_size;
}

START_TEST(test_counter_line_cut_short_by_a_full_disk_is_taken_back)
{
	struct dnsf_report_settings settings = all_files(1);
	make_directory();
	atomic_store(&told_count, 0);
	settings.log_path = settings.metrics_path = NULL;
	settings.log_error = tell;
	struct dnsf_reporter *reporter = new_reporter(&settings);
	struct dnsf_counters *counters = dnsf_reporter_thread(reporter);
	for (int i = 0; i < 10; i++)
		dnsf_count_query(counters);
	/* room for 40 bytes: the first counter line (about 200) stops inside */
	limit_file_size(40);
	ck_assert(dnsf_reporter_start(reporter));
	int64_t end = now_ms() + 3000;
	while (!was_told("stats.path: ", "cannot write: File too large") && now_ms() < end)
		sleep_ms(20);
	ck_assert_msg(was_told("stats.path: ", "cannot write: File too large"), "%s", told[0]);
	ck_assert_int_eq(file_size(stats_path), 0); /* not 40 bytes of a line */
	unlimit_file_size();
	for (int i = 0; i < 5; i++)
		dnsf_count_query(counters);
	ck_assert(wait_for_lines(stats_path, 1, 3000));
	dnsf_reporter_stop(reporter);
	dnsf_reporter_free(reporter);
	/* whole lines, and nothing lost: the next line carried the counts */
	ck_assert_uint_ge(assert_whole_json_lines(stats_path), 1);
	ck_assert_uint_eq(sum_stats(0, SIZE_MAX).queries, 15);
	remove_directory();
}
END_TEST

START_TEST(test_event_lines_cut_short_by_a_full_disk_are_taken_back)
{
	struct dnsf_report_settings settings = all_files(60);
	make_directory();
	atomic_store(&told_count, 0);
	settings.metrics_path = NULL;
	settings.log_error = tell;
	struct dnsf_reporter *reporter = new_reporter(&settings);
	ck_assert(dnsf_reporter_start(reporter));
	struct dnsf_counters *counters = dnsf_reporter_thread(reporter);
	struct dnsf_event event = event_for("c2.example.net", "ID-B", 0);
	for (int i = 0; i < 3; i++)
		dnsf_report_match(counters, &event);
	ck_assert(wait_for_lines(log_path, 3, 3000));
	off_t three = file_size(log_path);
	/* room for one more line and a half: the batch of three stops inside
	 * the second line */
	limit_file_size((rlim_t)(three + three / 3 + three / 6));
	for (int i = 0; i < 3; i++)
		dnsf_report_match(counters, &event);
	int64_t end = now_ms() + 3000;
	while (!was_told("log.path: ", "cannot write: File too large") && now_ms() < end)
		sleep_ms(20);
	ck_assert_msg(was_told("log.path: ", "cannot write: File too large"), "%s", told[0]);
	ck_assert_int_eq(file_size(log_path), three + three / 3); /* the whole line stays */
	unlimit_file_size();
	for (int i = 0; i < 3; i++)
		dnsf_report_match(counters, &event);
	ck_assert(wait_for_lines(log_path, 7, 3000));
	dnsf_reporter_stop(reporter);
	dnsf_reporter_free(reporter);
	ck_assert_uint_eq(assert_whole_json_lines(log_path), 7);
	struct sums sums = sum_stats(0, SIZE_MAX);
	ck_assert_uint_eq(sums.blocked, 9);
	ck_assert_uint_eq(sums.dropped, 2); /* the cut line and the one after it */
	ck_assert_uint_eq(sums.by_id[1], 9);
	remove_directory();
}
END_TEST

/* Set or clear a file's append-only flag; 0 when the file system or the
 * user's rights do not allow it. */
static int set_append_only(const char *path, int on)
{
	int fd = open(path, O_RDONLY), flags = 0, done = 0;
	if (fd < 0)
		return 0;
	if (ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
		flags = on ? flags | FS_APPEND_FL : flags & ~FS_APPEND_FL;
		done = ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
	}
	close(fd);
	return done;
}

START_TEST(test_line_cut_short_in_an_append_only_file_stands_on_its_own)
{
	struct dnsf_report_settings settings = all_files(60);
	make_directory();
	atomic_store(&told_count, 0);
	settings.metrics_path = NULL;
	settings.log_error = tell;
	close(open(log_path, O_WRONLY | O_CREAT, 0640));
	if (!set_append_only(log_path, 1)) {
		/* not root, or a file system without the flag: nothing to test */
		fprintf(stderr, "note: append-only files not available here; skipped\n");
		remove_directory();
		return;
	}
	struct dnsf_reporter *reporter = new_reporter(&settings);
	ck_assert(dnsf_reporter_start(reporter));
	struct dnsf_counters *counters = dnsf_reporter_thread(reporter);
	struct dnsf_event event = event_for("c2.example.net", "ID-C", 0);
	for (int i = 0; i < 3; i++)
		dnsf_report_match(counters, &event);
	ck_assert(wait_for_lines(log_path, 3, 3000));
	off_t three = file_size(log_path);
	/* the cut part cannot be truncated away (append-only) */
	limit_file_size((rlim_t)(three + three / 3 + three / 6));
	for (int i = 0; i < 3; i++)
		dnsf_report_match(counters, &event);
	int64_t end = now_ms() + 3000;
	while (!was_told("log.path: ", "cannot write: File too large") && now_ms() < end)
		sleep_ms(20);
	unlimit_file_size();
	for (int i = 0; i < 3; i++)
		dnsf_report_match(counters, &event);
	ck_assert(wait_for_lines(log_path, 8, 3000));
	dnsf_reporter_stop(reporter);
	dnsf_reporter_free(reporter);
	/* 3 + 1 whole lines, the cut part on a line of its own, then 3 whole
	 * lines: the next line was not appended to the cut one */
	char *text = read_text(log_path);
	size_t json = 0, other = 0;
	for (char *line = text, *next; line && *line; line = next + 1) {
		next = strchr(line, '\n');
		ck_assert_ptr_nonnull(next);
		*next = 0;
		cJSON *parsed = cJSON_Parse(line);
		if (parsed)
			json++;
		else
			ck_assert_msg(other++ == 0 && strncmp(line, "{\"ts\":", 6) == 0,
				      "unexpected line: %s", line);
		cJSON_Delete(parsed);
	}
	free(text);
	ck_assert_uint_eq(json, 7);
	ck_assert_uint_eq(other, 1);
	set_append_only(log_path, 0);
	remove_directory();
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("report");
	TCase *format = tcase_create("format");
	tcase_add_test(format, test_event_line_is_the_spec_line);
	tcase_add_test(format, test_event_qtype_action_via_and_time_are_written_as_names);
	tcase_add_test(format, test_event_strings_are_json_escaped_and_qname_normalised);
	tcase_add_test(format, test_client_truncate_keeps_the_24_and_the_48);
	tcase_add_test(format, test_client_full_writes_the_address_and_a_mapped_one_as_ipv4);
	tcase_add_test(format, test_client_none_writes_null_and_keeps_the_key);
	tcase_add_test(format, test_qname_from_wire_is_lowercase_escaped_without_trailing_dot);
	tcase_add_test(format, test_bad_settings_are_still_errors);
	suite_add_tcase(suite, format);
	TCase *counting = tcase_create("counting");
	tcase_set_timeout(counting, 120);
	tcase_add_test(counting, test_counts_from_several_threads_are_summed_exactly);
	tcase_add_test(counting, test_counter_lines_are_deltas_per_interval);
	tcase_add_test(counting, test_stop_writes_a_last_counter_line_before_the_interval);
	tcase_add_test(counting,
		       test_a_change_of_mode_ends_the_interval_with_a_line_of_the_old_mode);
	tcase_add_test(counting, test_threads_past_the_slots_share_one_and_are_counted);
	tcase_add_test(counting, test_a_new_reporter_gives_the_thread_a_new_slot);
	tcase_add_test(counting, test_metrics_file_is_prometheus_text_replaced_atomically);
	suite_add_tcase(suite, counting);
	TCase *files = tcase_create("files");
	tcase_set_timeout(files, 120);
	tcase_add_test(files, test_rotation_reopens_the_log_and_loses_no_event);
	tcase_add_test(files, test_stuck_fifo_drops_events_and_never_blocks_a_resolver_thread);
	tcase_add_test(files,
		       test_slow_fifo_reader_gets_whole_lines_and_the_rest_is_counted_dropped);
	tcase_add_test(files, test_fifo_reader_going_away_is_reported_once_and_not_fatal);
	tcase_add_test(files, test_unopenable_files_are_told_retried_and_never_refuse_the_start);
	tcase_add_test(files, test_counter_line_cut_short_by_a_full_disk_is_taken_back);
	tcase_add_test(files, test_event_lines_cut_short_by_a_full_disk_are_taken_back);
	tcase_add_test(files, test_line_cut_short_in_an_append_only_file_stands_on_its_own);
	suite_add_tcase(suite, files);
	return run_suite(suite);
}
