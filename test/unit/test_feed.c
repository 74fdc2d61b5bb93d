/* Feed validation and the decision. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dnsfilter/feed.h"
#include "dnsfilter/timeparse.h"
#include "unit.h"

/* The entry at i, which must exist. */
static struct dnsf_entry entry_at(const struct dnsf_index *index, size_t i)
{
	struct dnsf_entry entry;
	ck_assert(dnsf_index_entry(index, i, &entry));
	return entry;
}

#define HEAD "{\"format\":\"dnsfilter-feed/1\",\"serial\":7,\"timezone\":\"+09:00\","

static struct dnsf_index *load(const char *text, struct dnsf_errors *errors)
{
	return dnsf_index_from_buffer(text, strlen(text), NULL, errors);
}

/* The feed is refused and some message contains every given part. */
static void assert_rejected_with(const char *text, const char *part1, const char *part2)
{
	struct dnsf_errors errors = { 0 };
	struct dnsf_index *index = load(text, &errors);
	ck_assert_ptr_null(index);
	ck_assert_uint_gt(errors.count, 0);
	assert_errors_mention(&errors, part1, part2);
	dnsf_errors_clear(&errors);
}

static enum dnsf_verdict decide_at(const struct dnsf_index *index, const char *name, int64_t now,
				   const char **id)
{
	struct dnsf_key key = key_of_text(name);
	struct dnsf_decision decision;
	dnsf_index_decide(index, &key, now, &decision);
	if (id)
		*id = decision.entry.id;
	return decision.verdict;
}

static const int64_t NOW = 1720000000; /* 2024-07-03 */

static enum dnsf_verdict decide(const struct dnsf_index *index, const char *name)
{
	return decide_at(index, name, NOW, NULL);
}

START_TEST(test_valid_feed_summary)
{
	struct dnsf_errors errors = { 0 };
	struct dnsf_index *index = load(
	    HEAD "\"generated\":\"2024-06-30T12:00:00+09:00\","
		 "\"entries\":[{\"id\":\"A-1\",\"behavior\":\"info-theft\","
		 "\"fqdns\":[\"c2.example.net\",\"*.dga.example.org\"],\"start\":\"2024-04-16\","
		 "\"end\":null,\"action\":\"block\"}],\"allow\":[\"ok.example.net\"]}",
	    &errors);
	ck_assert_ptr_nonnull(index);
	struct dnsf_index_info info;
	dnsf_index_info(index, &info);
	ck_assert_uint_eq(info.entry_count, 1);
	ck_assert_uint_eq(info.serial, 7);
	ck_assert_str_eq(info.generated, "2024-06-30T12:00:00+09:00");
	ck_assert_uint_eq(info.exact_count, 1);
	ck_assert_uint_eq(info.wildcard_count, 1);
	ck_assert_uint_eq(info.allow_count, 1);
	ck_assert_int_eq(entry_at(index, 0).start, 1713225600 - 9 * 3600);
	ck_assert_int_eq(entry_at(index, 0).end, DNSF_TIME_NEVER);
	ck_assert_str_eq(entry_at(index, 0).behavior, "info-theft");
	dnsf_index_free(index);
}
END_TEST

START_TEST(test_exact_and_wildcard_matching)
{
	struct dnsf_errors errors = { 0 };
	const char *id;
	struct dnsf_index *index =
	    load(HEAD "\"entries\":["
		      "{\"id\":\"E\",\"fqdns\":[\"c2.example.net\"],\"start\":\"2024-01-01\"},"
		      "{\"id\":\"W\",\"fqdns\":[\"*.a.b\"],\"start\":\"2024-01-01\"}]}",
		 &errors);
	ck_assert_ptr_nonnull(index);
	ck_assert_int_eq(decide_at(index, "c2.example.net", NOW, &id), DNSF_VERDICT_BLOCK);
	ck_assert_str_eq(id, "E");
	ck_assert_int_eq(decide(index, "C2.EXAMPLE.NET."), DNSF_VERDICT_BLOCK);
	ck_assert_int_eq(decide(index, "x.c2.example.net"), DNSF_VERDICT_NONE);
	ck_assert_int_eq(decide(index, "example.net"), DNSF_VERDICT_NONE);
	ck_assert_int_eq(decide(index, "xc2.example.net"), DNSF_VERDICT_NONE);
	/* *.a.b matches x.a.b and y.x.a.b, not a.b */
	ck_assert_int_eq(decide_at(index, "x.a.b", NOW, &id), DNSF_VERDICT_BLOCK);
	ck_assert_str_eq(id, "W");
	ck_assert_int_eq(decide(index, "y.x.a.b"), DNSF_VERDICT_BLOCK);
	ck_assert_int_eq(decide(index, "a.b"), DNSF_VERDICT_NONE);
	ck_assert_int_eq(decide(index, "xa.b"), DNSF_VERDICT_NONE);
	ck_assert_int_eq(decide(index, "b"), DNSF_VERDICT_NONE);
	dnsf_index_free(index);
}
END_TEST

START_TEST(test_longest_match_and_allow)
{
	struct dnsf_errors errors = { 0 };
	const char *id;
	struct dnsf_index *index =
	    load(HEAD "\"entries\":["
		      "{\"id\":\"SHALLOW\",\"fqdns\":[\"*.example.com\"],\"start\":\"2024-01-01\"},"
		      "{\"id\":\"DEEP\",\"fqdns\":[\"*.deep.example.com\"],\"start\":\"2024-01-"
		      "01\",\"action\":\"monitor\"},"
		      "{\"id\":\"EXACT\",\"fqdns\":[\"x.deep.example.com\"],\"start\":\"2024-01-"
		      "01\",\"action\":\"monitor\"}],"
		      "\"allow\":[\"good.example.com\",\"*.cdn.example.com\"]}",
		 &errors);
	ck_assert_ptr_nonnull(index);
	ck_assert_int_eq(decide_at(index, "y.example.com", NOW, &id), DNSF_VERDICT_BLOCK);
	ck_assert_str_eq(id, "SHALLOW");
	ck_assert_int_eq(decide_at(index, "y.deep.example.com", NOW, &id), DNSF_VERDICT_MONITOR);
	ck_assert_str_eq(id, "DEEP");
	ck_assert_int_eq(decide_at(index, "x.deep.example.com", NOW, &id), DNSF_VERDICT_MONITOR);
	ck_assert_str_eq(id, "EXACT");
	ck_assert_int_eq(decide(index, "good.example.com"), DNSF_VERDICT_ALLOW);
	ck_assert_int_eq(decide(index, "sub.good.example.com"), DNSF_VERDICT_BLOCK);
	ck_assert_int_eq(decide(index, "a.cdn.example.com"), DNSF_VERDICT_ALLOW);
	ck_assert_int_eq(decide(index, "b.a.cdn.example.com"), DNSF_VERDICT_ALLOW);
	ck_assert_int_eq(decide(index, "cdn.example.com"), DNSF_VERDICT_BLOCK);
	dnsf_index_free(index);
}
END_TEST

START_TEST(test_time_windows_and_precedence)
{
	struct dnsf_errors errors = { 0 };
	const char *id;
	/* timezone +09:00: 2024-05-01 starts at 2024-04-30T15:00:00Z */
	struct dnsf_index *index = load(
	    HEAD "\"entries\":["
		 "{\"id\":\"LATE\",\"fqdns\":[\"t.example.com\"],\"start\":\"2024-05-01\"},"
		 "{\"id\":\"EARLY\",\"fqdns\":[\"t.example.com\"],\"start\":\"2024-04-01\",\"end\":"
		 "\"2024-06-01\"},"
		 "{\"id\":\"MON\",\"fqdns\":[\"t.example.com\"],\"start\":\"2024-03-01\","
		 "\"action\":\"monitor\"},"
		 "{\"id\":\"TS\",\"fqdns\":[\"u.example.com\"],\"start\":\"2024-05-01T10:00:00Z\","
		 "\"end\":\"2024-05-01T11:00:00Z\"},"
		 "{\"id\":\"WILD\",\"fqdns\":[\"*.example.com\"],\"start\":\"2024-01-01\"}]}",
	    &errors);
	int64_t may1 = 1714521600 - 9 * 3600, march15 = 1710460800, july = NOW;
	ck_assert_ptr_nonnull(index);
	/* block beats monitor; then the earliest start among active entries */
	ck_assert_int_eq(decide_at(index, "t.example.com", may1, &id), DNSF_VERDICT_BLOCK);
	ck_assert_str_eq(id, "EARLY");
	ck_assert_int_eq(decide_at(index, "t.example.com", may1 - 1, &id), DNSF_VERDICT_BLOCK);
	ck_assert_str_eq(id, "EARLY");
	ck_assert_int_eq(decide_at(index, "t.example.com", july, &id), DNSF_VERDICT_BLOCK);
	ck_assert_str_eq(id, "LATE");
	ck_assert_int_eq(decide_at(index, "t.example.com", march15, &id), DNSF_VERDICT_MONITOR);
	ck_assert_str_eq(id, "MON");
	/* before any entry of the name: the wildcard of a parent decides */
	ck_assert_int_eq(decide_at(index, "u.example.com", 1714557600 - 1, &id),
			 DNSF_VERDICT_BLOCK);
	ck_assert_str_eq(id, "WILD");
	ck_assert_int_eq(decide_at(index, "u.example.com", 1714557600, &id), DNSF_VERDICT_BLOCK);
	ck_assert_str_eq(id, "TS");
	ck_assert_int_eq(decide_at(index, "u.example.com", 1714561200, &id), DNSF_VERDICT_BLOCK);
	ck_assert_str_eq(id, "WILD");
	ck_assert_int_eq(decide_at(index, "t.example.com", 1704067200 - 9 * 3600 - 1, &id),
			 DNSF_VERDICT_NONE);
	dnsf_index_free(index);
}
END_TEST

START_TEST(test_syntax_errors_name_the_place)
{
	assert_rejected_with(HEAD "\"entries\":[", "JSON syntax error at line 1", NULL);
	assert_rejected_with("{\n\"format\": x}", "line 2", NULL);
	assert_rejected_with("[]", "must be a JSON object", NULL);
	assert_rejected_with("{\"format\":\"\xff\"}", "not valid UTF-8", NULL);
}
END_TEST

START_TEST(test_header_errors)
{
	assert_rejected_with("{\"entries\":[]}", "format: missing", NULL);
	assert_rejected_with("{\"format\":\"dnsfilter-feed/2\",\"entries\":[]}", "format: must be",
			     NULL);
	assert_rejected_with(HEAD "\"entries\":{}}", "entries: must be an array", NULL);
	assert_rejected_with("{\"format\":\"dnsfilter-feed/1\"}", "entries: missing", NULL);
	assert_rejected_with(HEAD "\"entries\":[],\"extra\":1}", "extra: unknown field", NULL);
	assert_rejected_with(
	    "{\"format\":\"dnsfilter-feed/1\",\"timezone\":\"JST\",\"entries\":[]}",
	    "timezone:", NULL);
	assert_rejected_with("{\"format\":\"dnsfilter-feed/1\",\"serial\":-1,\"entries\":[]}",
			     "serial:", NULL);
}
END_TEST

START_TEST(test_entry_errors_name_index_id_and_field)
{
	assert_rejected_with(
	    HEAD "\"entries\":[{\"fqdns\":[\"a.example.com\"],\"start\":\"2024-01-01\"}]}",
	    "entry 0 (no id): id: missing", NULL);
	assert_rejected_with(
	    HEAD
	    "\"entries\":[{\"id\":\"OK\",\"fqdns\":[\"a.example.com\"],\"start\":\"2024-01-01\"},"
	    "{\"id\":\"X-2\",\"fqdns\":[\"a..example.com\"],\"start\":\"2024-01-01\"}]}",
	    "entry 1 (X-2): fqdns[0]: \"a..example.com\"", "empty label");
	assert_rejected_with(HEAD
			     "\"entries\":[{\"id\":\"X\",\"fqdns\":[],\"start\":\"2024-01-01\"}]}",
			     "entry 0 (X): fqdns: must be a non-empty array", NULL);
	assert_rejected_with(HEAD "\"entries\":[{\"id\":\"X\",\"fqdns\":[\"a.example.com\"]}]}",
			     "entry 0 (X): start: missing", NULL);
	assert_rejected_with(
	    HEAD
	    "\"entries\":[{\"id\":\"X\",\"fqdns\":[\"a.example.com\"],\"start\":\"2024-13-01\"}]}",
	    "entry 0 (X): start: \"2024-13-01\"", NULL);
	assert_rejected_with(HEAD "\"entries\":[{\"id\":\"X\",\"fqdns\":[\"a.example.com\"],"
				  "\"start\":\"2024-02-01\",\"end\":\"2024-01-01\"}]}",
			     "entry 0 (X): end: before start", NULL);
	assert_rejected_with(HEAD "\"entries\":[{\"id\":\"X\",\"fqdns\":[\"a.example.com\"],"
				  "\"start\":\"2024-01-01\",\"action\":\"drop\"}]}",
			     "entry 0 (X): action:", NULL);
	assert_rejected_with(HEAD
			     "\"entries\":[{\"id\":\"X\",\"fqdns\":[7],\"start\":\"2024-01-01\"}]}",
			     "entry 0 (X): fqdns[0]: not a string", NULL);
	assert_rejected_with(HEAD "\"entries\":[{\"id\":\"X\",\"fqdns\":[\"a.example.com\"],"
				  "\"start\":\"2024-01-01\",\"colour\":1}]}",
			     "entry 0 (X): colour: unknown field", NULL);
	assert_rejected_with(
	    HEAD
	    "\"entries\":[{\"id\":\"D\",\"fqdns\":[\"a.example.com\"],\"start\":\"2024-01-01\"},"
	    "{\"id\":\"D\",\"fqdns\":[\"b.example.com\"],\"start\":\"2024-01-01\"}]}",
	    "entry 1 (D): id: duplicate of entry 0", NULL);
	assert_rejected_with(HEAD "\"entries\":[],\"allow\":[\"bad name\"]}", "allow[0]:", NULL);
}
END_TEST

START_TEST(test_every_error_is_reported)
{
	struct dnsf_errors errors = { 0 };
	const char *text = HEAD "\"entries\":["
				"{\"id\":\"A\",\"fqdns\":[\"a..b\",\"c d.e\"],\"start\":\"x\"},"
				"{\"id\":\"B\",\"fqdns\":[\"-ok.example.com\"]}]}";
	ck_assert_ptr_null(load(text, &errors));
	/* two bad names, a bad start, a missing start */
	ck_assert_uint_eq(errors.count, 4);
	dnsf_errors_clear(&errors);
}
END_TEST

START_TEST(test_public_suffix_needs_force)
{
	struct dnsf_errors errors = { 0 };
	assert_rejected_with(
	    HEAD "\"entries\":[{\"id\":\"P\",\"fqdns\":[\"com\"],\"start\":\"2024-01-01\"}]}",
	    "entry 0 (P): fqdns[0]: \"com\": com is a public suffix", NULL);
	assert_rejected_with(
	    HEAD "\"entries\":[{\"id\":\"P\",\"fqdns\":[\"*.co.jp\"],\"start\":\"2024-01-01\"}]}",
	    "\"*.co.jp\": co.jp is a public suffix", NULL);
	assert_rejected_with(
	    HEAD "\"entries\":[{\"id\":\"P\",\"fqdns\":[\"*.jp\"],\"start\":\"2024-01-01\"}]}",
	    "public suffix", NULL);
	struct dnsf_index *index = load(HEAD "\"entries\":[{\"id\":\"P\",\"force\":true,"
					     "\"fqdns\":[\"*.co.jp\"],\"start\":\"2024-01-01\"}]}",
					&errors);
	ck_assert_ptr_nonnull(index);
	ck_assert_int_eq(decide(index, "evil.co.jp"), DNSF_VERDICT_BLOCK);
	dnsf_index_free(index);
	index = load(
	    HEAD
	    "\"entries\":[{\"id\":\"P\",\"fqdns\":[\"evil.co.jp\"],\"start\":\"2024-01-01\"}]}",
	    &errors);
	ck_assert_ptr_nonnull(index);
	dnsf_index_free(index);
}
END_TEST

START_TEST(test_limits_refuse_big_feeds)
{
	struct dnsf_errors errors = { 0 };
	struct dnsf_feed_limits limits = { .max_bytes = 100, .max_entries = 1, .max_names = 2 };
	const char *two = HEAD
	    "\"entries\":[{\"id\":\"A\",\"fqdns\":[\"a.example.com\"],\"start\":\"2024-01-01\"},"
	    "{\"id\":\"B\",\"fqdns\":[\"b.example.com\"],\"start\":\"2024-01-01\"}]}";
	ck_assert_ptr_null(dnsf_index_from_buffer(two, strlen(two), &limits, &errors));
	ck_assert_ptr_nonnull(strstr(errors.messages[0], "more than the limit of 100"));
	dnsf_errors_clear(&errors);
	limits.max_bytes = 10000;
	ck_assert_ptr_null(dnsf_index_from_buffer(two, strlen(two), &limits, &errors));
	ck_assert_ptr_nonnull(strstr(errors.messages[0], "2 entries, more than the limit of 1"));
	dnsf_errors_clear(&errors);
}
END_TEST

START_TEST(test_huge_feed_file_is_refused_before_reading)
{
	/* a 10M-entry feed is hundreds of megabytes: refused by size at once,
	 * without reading it (a sparse file of 300 MB costs nothing here) */
	char path[] = "/tmp/test_feed_huge_XXXXXX";
	int fd = mkstemp(path);
	struct dnsf_errors errors = { 0 };
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)300 << 20), 0);
	close(fd);
	ck_assert_ptr_null(dnsf_index_from_file(path, NULL, &errors));
	ck_assert_uint_eq(errors.count, 1);
	ck_assert_ptr_nonnull(
	    strstr(errors.messages[0], "314572800 bytes, more than the limit of 268435456"));
	dnsf_errors_clear(&errors);
	unlink(path);
}
END_TEST

START_TEST(test_deep_nesting_is_an_error_not_a_crash)
{
	enum { DEPTH = 100000 };
	char *text = malloc(2 * DEPTH + 1);
	for (int i = 0; i < DEPTH; i++) {
		text[i] = '[';
		text[DEPTH + i] = ']';
	}
	text[2 * DEPTH] = 0;
	assert_rejected_with(text, "JSON nested deeper than 32 levels at line 1 column 33", NULL);
	free(text);
	/* brackets inside strings do not count */
	struct dnsf_errors errors = { 0 };
	struct dnsf_index *index =
	    load(HEAD "\"entries\":[{\"id\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\","
		      "\"fqdns\":[\"a.example.com\"],\"start\":\"2024-01-01\"}]}",
		 &errors);
	ck_assert_ptr_nonnull(index);
	dnsf_index_free(index);
}
END_TEST

#define ENTRY_A "{\"id\":\"A\",\"fqdns\":[\"a.example.com\"],\"start\":\"2024-01-01\"}"

START_TEST(test_text_after_the_document_is_an_error)
{
	struct dnsf_errors errors = { 0 };
	struct dnsf_index *index;

	/* cJSON stops after the first value; the rest would be ignored */
	assert_rejected_with(HEAD "\"entries\":[" ENTRY_A "]} x",
			     "JSON syntax error at line 1 column", "text after the end");
	assert_rejected_with(HEAD "\"entries\":[" ENTRY_A "]}\n" HEAD "\"entries\":[]}",
			     "line 2 column 1: text after the end of the JSON document", NULL);
	const char nul[] = HEAD "\"entries\":[" ENTRY_A "]}\n\0";
	ck_assert_ptr_null(dnsf_index_from_buffer(nul, sizeof(nul) - 1, NULL, &errors));
	assert_errors_mention(&errors, "line 2 column 1: control character 0x00", NULL);
	dnsf_errors_clear(&errors);
	/* whitespace after it is fine */
	index = load(HEAD "\"entries\":[" ENTRY_A "]} \r\n\t\n", &errors);
	ck_assert_ptr_nonnull(index);
	dnsf_index_free(index);
}
END_TEST

START_TEST(test_control_characters_outside_json_whitespace_are_errors)
{
	/* cJSON takes any byte below 0x20 as whitespace and inside strings;
	 * JSON (and Python's json) allows neither */
	assert_rejected_with(HEAD "\"entries\":[\x0c" ENTRY_A "]}",
			     "JSON syntax error at line 1 column", "control character 0x0c");
	assert_rejected_with(HEAD "\"entries\":[{\"id\":\"A\tB\",\"fqdns\":[\"a.example.com\"],"
				  "\"start\":\"2024-01-01\"}]}",
			     "control character 0x09", NULL);
	/* escaped, a control character is text like any other */
	struct dnsf_errors errors = { 0 };
	struct dnsf_index *index =
	    load(HEAD "\"entries\":[{\"id\":\"A\",\"behavior\":\"x\\ty\",\"fqdns\":"
		      "[\"a.example.com\"],\"start\":\"2024-01-01\"}]}",
		 &errors);
	ck_assert_ptr_nonnull(index);
	ck_assert_str_eq(entry_at(index, 0).behavior, "x\ty");
	dnsf_index_free(index);
}
END_TEST

START_TEST(test_duplicate_keys_are_errors_in_every_object)
{
	/* cJSON keeps the first of two keys, Python's json the last: the
	 * module and the report would read the feed two ways */
	assert_rejected_with("{\"format\":\"dnsfilter-feed/1\",\"serial\":1,\"serial\":2,"
			     "\"entries\":[]}",
			     "\"serial\": key given more than once", NULL);
	assert_rejected_with(HEAD "\"entries\":[" ENTRY_A
				  ",{\"id\":\"B\",\"fqdns\":[\"b.example.com\"],"
				  "\"start\":\"2024-01-01\",\"start\":\"2030-01-01\"}]}",
			     "entries[1]: \"start\": key given more than once", NULL);
	assert_rejected_with(HEAD "\"entries\":[],\"allow\":[{\"name\":\"a.example\","
				  "\"name\":\"com\"}]}",
			     "allow[0]: \"name\": key given more than once", NULL);
	/* deeper objects too, and a big object (sorted, not pair by pair) */
	assert_rejected_with(HEAD "\"entries\":[],\"x\":{\"y\":[{\"k\":1,\"k\":2}]}}",
			     "x.y[0]: \"k\": key given more than once", NULL);
	char big[2000];
	size_t used = (size_t)snprintf(big, sizeof(big), HEAD "\"entries\":[],\"x\":{");
	for (int i = 0; i < 40; i++)
		used += (size_t)snprintf(big + used, sizeof(big) - used, "\"k%d\":1,", i);
	snprintf(big + used, sizeof(big) - used, "\"k7\":2}}");
	assert_rejected_with(big, "x: \"k7\": key given more than once", NULL);
	/* reported once however often a key repeats */
	struct dnsf_errors errors = { 0 };
	ck_assert_ptr_null(load("{\"format\":\"dnsfilter-feed/1\",\"entries\":[],\"allow\":[],"
				"\"allow\":[],\"allow\":[]}",
				&errors));
	ck_assert_uint_eq(errors.count, 1);
	dnsf_errors_clear(&errors);
}
END_TEST

START_TEST(test_public_suffix_in_allow_needs_force)
{
	struct dnsf_errors errors = { 0 };

	/* allowing a public suffix would turn the filter off for all of it */
	assert_rejected_with(HEAD "\"entries\":[],\"allow\":[\"com\"]}",
			     "allow[0]: \"com\": com is a public suffix",
			     "write {\"name\": \"com\", \"force\": true} to allow it");
	assert_rejected_with(HEAD "\"entries\":[],\"allow\":[\"ok.example\",\"*.COM.\"]}",
			     "allow[1]: \"*.COM.\": com is a public suffix", NULL);
	assert_rejected_with(HEAD "\"entries\":[],\"allow\":[\"*.co.jp\"]}",
			     "co.jp is a public suffix", NULL);
	assert_rejected_with(HEAD "\"entries\":[],\"allow\":[{\"name\":\"*.com\"}]}",
			     "allow[0].name: \"*.com\": com is a public suffix", NULL);
	assert_rejected_with(HEAD
			     "\"entries\":[],\"allow\":[{\"name\":\"*.com\",\"force\":false}]}",
			     "allow[0].name: \"*.com\": com is a public suffix", NULL);
	/* the object form's own errors */
	assert_rejected_with(HEAD "\"entries\":[],\"allow\":[{\"force\":true}]}",
			     "allow[0]: name: missing", NULL);
	assert_rejected_with(HEAD "\"entries\":[],\"allow\":[{\"name\":\"a.example\",\"x\":1}]}",
			     "allow[0]: x: unknown field", NULL);
	assert_rejected_with(HEAD
			     "\"entries\":[],\"allow\":[{\"name\":\"a.example\",\"force\":1}]}",
			     "allow[0]: force: must be true or false", NULL);
	assert_rejected_with(HEAD "\"entries\":[],\"allow\":[7]}",
			     "allow[0]: must be a name or an object", NULL);
	/* with force, as for entries */
	struct dnsf_index *index = load(
	    HEAD "\"entries\":[{\"id\":\"P\",\"fqdns\":[\"*.evil.com\"],\"start\":\"2024-01-01\"}],"
		 "\"allow\":[{\"name\":\"*.com\",\"force\":true},{\"name\":\"ok.example\"}]}",
	    &errors);
	ck_assert_ptr_nonnull(index);
	ck_assert_int_eq(decide(index, "x.evil.com"), DNSF_VERDICT_ALLOW);
	ck_assert_int_eq(decide(index, "ok.example"), DNSF_VERDICT_ALLOW);
	struct dnsf_index_info info;
	dnsf_index_info(index, &info);
	ck_assert_uint_eq(info.allow_count, 2);
	dnsf_index_free(index);
}
END_TEST

START_TEST(test_ids_longer_than_the_limit_are_refused)
{
	struct dnsf_errors errors = { 0 };
	char text[600], id[DNSF_FEED_ID_MAX + 2];

	/* events, by_id, the metrics and EDE carry an id whole up to the
	 * limit; a longer one would not match the feed there */
	memset(id, 'I', DNSF_FEED_ID_MAX);
	id[DNSF_FEED_ID_MAX] = 0;
	snprintf(text, sizeof(text),
		 HEAD "\"entries\":[{\"id\":\"%s\",\"fqdns\":[\"a.example.com\"],"
		      "\"start\":\"2024-01-01\"}]}",
		 id);
	struct dnsf_index *index = load(text, &errors);
	ck_assert_ptr_nonnull(index);
	ck_assert_str_eq(entry_at(index, 0).id, id);
	dnsf_index_free(index);
	strcat(id, "J");
	snprintf(text, sizeof(text),
		 HEAD "\"entries\":[{\"id\":\"%s\",\"fqdns\":[\"a.example.com\"],"
		      "\"start\":\"2024-01-01\"}]}",
		 id);
	assert_rejected_with(text, "entry 0 (IIII", "): id: 64 bytes, longer than the limit of 63");
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("feed");
	TCase *tc = tcase_create("feed");
	tcase_add_test(tc, test_valid_feed_summary);
	tcase_add_test(tc, test_exact_and_wildcard_matching);
	tcase_add_test(tc, test_longest_match_and_allow);
	tcase_add_test(tc, test_time_windows_and_precedence);
	tcase_add_test(tc, test_syntax_errors_name_the_place);
	tcase_add_test(tc, test_header_errors);
	tcase_add_test(tc, test_entry_errors_name_index_id_and_field);
	tcase_add_test(tc, test_every_error_is_reported);
	tcase_add_test(tc, test_public_suffix_needs_force);
	tcase_add_test(tc, test_limits_refuse_big_feeds);
	tcase_add_test(tc, test_deep_nesting_is_an_error_not_a_crash);
	tcase_add_test(tc, test_huge_feed_file_is_refused_before_reading);
	tcase_add_test(tc, test_text_after_the_document_is_an_error);
	tcase_add_test(tc, test_control_characters_outside_json_whitespace_are_errors);
	tcase_add_test(tc, test_duplicate_keys_are_errors_in_every_object);
	tcase_add_test(tc, test_public_suffix_in_allow_needs_force);
	tcase_add_test(tc, test_ids_longer_than_the_limit_are_refused);
	suite_add_tcase(suite, tc);
	return run_suite(suite);
}
