/*
 * Out of memory, everywhere the core allocates: feed parsing (cJSON's
 * allocations included), the index and trie build, the opt-out set, the
 * settings and the reporter. Each scenario runs again and again with
 * allocation 1, 2, 3, ... made to fail (failing_alloc.h), once with only
 * that allocation failing and once with it and every later one failing,
 * until a run completes with no failure injected. Every run must end in a
 * clean error (a "memory" error, or the documented degraded result), free
 * everything it allocated, and not crash; the last run must give exactly
 * what a run without the failing allocator gives.
 *
 * cJSON's allocations are counted too: inside a JSON arena (the feed) they
 * are the arena's mmap and malloc calls, made from the core; outside one
 * (the settings) cJSON is given hooks that call the wrapped malloc.
 */
#include <arpa/inet.h>
#include <check.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dnsfilter/cidr.h"
#include "dnsfilter/feed.h"
#include "dnsfilter/lastgood.h"
#include "dnsfilter/report.h"
#include "dnsfilter/settings.h"
#include "failing_alloc.h"
#include "unit.h"

/* ---- the runner ---- */

/** One run's state, whatever the scenario keeps. */
struct run {
	struct dnsf_errors errors;
	struct dnsf_index *index;
	struct dnsf_delta *delta;
	struct dnsf_cidr_builder *builder;
	struct dnsf_cidr_set *set;
	struct dnsf_settings settings;
	int ok;
	struct dnsf_reporter *reporter;
	/* dnsf_last_good_load's error counts */
	size_t loaded_copy_errors, loaded_save_errors, loaded_file_memory;
};

/** A scenario: act with the allocator armed, verify the outcome (paused:
 * NULL when right, else why not), release everything. */
struct scenario {
	const char *name;
	void (*act)(struct run *run);
	const char *(*verify)(struct run *run, int injected);
	void (*release)(struct run *run);
};

/*
 * cJSON's allocator for the settings parse, which runs in no JSON arena:
 * malloc and free called from here are the wrapped ones, so they are
 * counted and made to fail. Set only there, and the settings run last:
 * hooks set by others may outlive the core's own (json.c).
 */
static void *cjson_malloc(size_t size)
{
	return malloc(size);
}

static void cjson_free(void *memory)
{
	free(memory);
}

static void route_cjson_through_wrappers(void)
{
	cJSON_Hooks hooks = { .malloc_fn = cjson_malloc, .free_fn = cjson_free };
	cJSON_InitHooks(&hooks);
}

static const char *mode_name(enum fault_mode mode)
{
	return mode == FAULT_ONCE ? "only it failing" : "it and all later ones failing";
}

/* Fail allocation 1, 2, ... until a run needs no failure; every run checked.
 * @return the allocations of the complete run. */
static unsigned long fail_each_allocation(const struct scenario *scenario, enum fault_mode mode)
{
	for (unsigned long nth = 1;; nth++) {
		struct run run;
		char live_text[512];

		memset(&run, 0, sizeof(run));
		fault_arm(nth, mode);
		scenario->act(&run);
		fault_pause();
		int injected = fault_injected();
		const char *why = scenario->verify(&run, injected);
		fault_resume();
		scenario->release(&run);
		dnsf_errors_clear(&run.errors);
		size_t live = fault_live(live_text, sizeof(live_text));
		unsigned long total = fault_disarm();
		ck_assert_msg(!why, "%s, allocation %lu of %lu made to fail (%s): %s",
			      scenario->name, nth, total, mode_name(mode), why);
		ck_assert_msg(live == 0,
			      "%s, allocation %lu made to fail (%s): %zu allocations leaked: %s",
			      scenario->name, nth, mode_name(mode), live, live_text);
		if (!injected) {
			printf("%s: %lu allocations, each made to fail (%s)\n", scenario->name,
			       total, mode_name(mode));
			return total;
		}
	}
}

static void fail_each_allocation_both_ways(const struct scenario *scenario)
{
	unsigned long once = fail_each_allocation(scenario, FAULT_ONCE);
	unsigned long from = fail_each_allocation(scenario, FAULT_FROM);
	ck_assert_uint_eq(once, from);
	ck_assert_msg(once > 0, "%s allocated nothing: the wrappers are not linked in",
		      scenario->name);
}

/* A failed run must say memory ran out, and nothing else went wrong. */
static const char *memory_error_only(const struct dnsf_errors *errors)
{
	static char why[1024];
	if (dnsf_errors_count_kind(errors, DNSF_ERROR_MEMORY) == 0) {
		char *all = dnsf_errors_join(errors, " | ");
		snprintf(why, sizeof(why), "failed without a memory error; errors: %s",
			 all ? all : "?");
		free(all);
		return why;
	}
	if (errors->count != dnsf_errors_count_kind(errors, DNSF_ERROR_MEMORY)) {
		char *all = dnsf_errors_join(errors, " | ");
		snprintf(why, sizeof(why), "errors other than memory: %s", all ? all : "?");
		free(all);
		return why;
	}
	return NULL;
}

static char directory[64];

static void make_directory(void)
{
	strcpy(directory, "/tmp/dnsf-faults-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(directory));
}

static void empty_directory(int remove_it)
{
	empty_directory_at(directory, remove_it);
}

static char *path_in_directory(const char *name)
{
	static char paths[4][160];
	static int next;
	char *path = paths[next++ % 4];
	snprintf(path, sizeof(paths[0]), "%s/%s", directory, name);
	return path;
}

/* The whole file, NUL-terminated (at most 1 MiB), or NULL. */
static char *read_whole(const char *path)
{
	FILE *file = fopen(path, "rb");
	if (!file)
		return NULL;
	char *text = calloc(1, 1 << 20);
	size_t length = fread(text, 1, (1 << 20) - 1, file);
	text[length] = 0;
	fclose(file);
	return text;
}

static void write_file(const char *path, const char *text)
{
	FILE *file = fopen(path, "wb");
	ck_assert_ptr_nonnull(file);
	ck_assert_uint_eq(fwrite(text, 1, strlen(text), file), strlen(text));
	fclose(file);
}

/* ---- the feed and the index ---- */

#define FEED_ENTRIES 40

static char *feed_text;
static char feed_path[160];

/* A feed with every field, wildcards, allow names, monitor entries, time
 * windows and more names than the first array allocation holds. */
static char *make_feed(void)
{
	size_t capacity = 64 * 1024, used = 0;
	char *text = malloc(capacity);
	used += (size_t)snprintf(text + used, capacity - used,
				 "{\"format\":\"dnsfilter-feed/1\",\"serial\":2024063001,"
				 "\"generated\":\"2024-06-30T12:00:00+09:00\","
				 "\"timezone\":\"+09:00\",\"entries\":[");
	for (int i = 0; i < FEED_ENTRIES; i++)
		used += (size_t)snprintf(
		    text + used, capacity - used,
		    "%s{\"id\":\"IIJ-20240416-%04d\",\"behavior\":\"%s\","
		    "\"fqdns\":[\"c%d.example.net\",\"*.d%d.example.org\",\"shared.example.com\"],"
		    "\"start\":\"%s\",\"end\":%s,\"action\":\"%s\"%s}",
		    i ? "," : "", i, i % 3 ? "info-theft" : "backdoor", i, i % 7,
		    i % 2 ? "2024-01-01" : "2024-02-01T00:00:00Z",
		    i % 5 ? "null" : "\"2025-01-01\"", i % 4 ? "block" : "monitor",
		    i == 3 ? ",\"force\":false" : "");
	snprintf(text + used, capacity - used,
		 "],\"allow\":[\"ok.d1.example.org\",\"*.cdn.d2.example.org\"]}");
	return text;
}

static const char *const lookup_names[] = {
	"c0.example.net",
	"c1.example.net",
	"C39.Example.NET",
	"x.d5.example.org",
	"a.b.d6.example.org",
	"d3.example.org",
	"ok.d1.example.org",
	"a.cdn.d2.example.org",
	"shared.example.com",
	"nothere.example.net",
	"net",
	".",
};
static const int64_t lookup_times[] = { 1600000000, 1714000000, 1800000000 };
#define LOOKUPS                                                                                    \
	(sizeof(lookup_names) / sizeof(lookup_names[0]) *                                          \
	 (sizeof(lookup_times) / sizeof(lookup_times[0])))

static struct dnsf_decision expected_decisions[LOOKUPS];
/* the ids of the entries that decided (the reference index is gone) */
static char expected_ids[LOOKUPS][32];
static struct dnsf_index_info expected_info;

static void decide_all(const struct dnsf_index *index, struct dnsf_decision *decisions)
{
	size_t n = 0;
	for (size_t i = 0; i < sizeof(lookup_names) / sizeof(lookup_names[0]); i++) {
		struct dnsf_key key = key_of_text(lookup_names[i]);
		for (size_t t = 0; t < sizeof(lookup_times) / sizeof(lookup_times[0]); t++)
			dnsf_index_decide(index, &key, lookup_times[t], &decisions[n++]);
	}
}

/* The index answers as the reference index did. */
static const char *same_index(const struct dnsf_index *index)
{
	struct dnsf_decision decisions[LOOKUPS];
	struct dnsf_index_info info;
	const char *why;

	if (!dnsf_index_check(index, &why))
		return why;
	dnsf_index_info(index, &info);
	if (info.serial != expected_info.serial || info.entry_count != expected_info.entry_count ||
	    info.exact_count != expected_info.exact_count ||
	    info.wildcard_count != expected_info.wildcard_count ||
	    info.allow_count != expected_info.allow_count ||
	    strcmp(info.generated ? info.generated : "", expected_info.generated))
		return "the index's summary differs from the reference";
	for (size_t i = 0; i < info.entry_count; i++) {
		struct dnsf_entry entry;
		char id[48];
		snprintf(id, sizeof(id), "IIJ-20240416-%04zu", i);
		if (!dnsf_index_entry(index, i, &entry) || strcmp(entry.id, id) ||
		    !entry.behavior || entry.fqdn_count != 3)
			return "an entry differs from the feed";
	}
	decide_all(index, decisions);
	for (size_t i = 0; i < LOOKUPS; i++) {
		const struct dnsf_decision *a = &decisions[i], *b = &expected_decisions[i];
		if (a->verdict != b->verdict || a->wildcard != b->wildcard ||
		    a->match_length != b->match_length ||
		    strcmp(a->entry.id ? a->entry.id : "", expected_ids[i]))
			return "a lookup differs from the reference";
	}
	return NULL;
}

static void setup_feed(void)
{
	struct dnsf_errors errors = { 0 };
	static char generated[64];

	make_directory();
	feed_text = make_feed();
	snprintf(feed_path, sizeof(feed_path), "%s/feed.json", directory);
	write_file(feed_path, feed_text);
	struct dnsf_index *index =
	    dnsf_index_from_buffer(feed_text, strlen(feed_text), NULL, &errors);
	char *all = dnsf_errors_join(&errors, " | ");
	ck_assert_msg(index != NULL, "the reference feed is refused: %s", all);
	free(all);
	dnsf_index_info(index, &expected_info);
	snprintf(generated, sizeof(generated), "%s", expected_info.generated);
	expected_info.generated = generated;
	decide_all(index, expected_decisions);
	for (size_t i = 0; i < LOOKUPS; i++) {
		const struct dnsf_entry *entry = &expected_decisions[i].entry;
		snprintf(expected_ids[i], sizeof(expected_ids[i]), "%s",
			 entry->id ? entry->id : "");
		memset(&expected_decisions[i].entry, 0, sizeof(expected_decisions[i].entry));
	}
	ck_assert_int_eq(expected_decisions[0].verdict, DNSF_VERDICT_NONE);
	ck_assert_int_eq(expected_decisions[1].verdict, DNSF_VERDICT_MONITOR);
	ck_assert_int_eq(expected_decisions[4].verdict, DNSF_VERDICT_BLOCK);
	dnsf_index_free(index);
}

static void teardown_feed(void)
{
	free(feed_text);
	feed_text = NULL;
	empty_directory(1);
}

static void act_feed_file(struct run *run)
{
	run->index = dnsf_index_from_file(feed_path, NULL, &run->errors);
}

static const char *verify_feed(struct run *run, int injected)
{
	/* every allocation of a load is needed but one that gives back the
	 * unused tail of an array: a failure that is not reported would be a
	 * check skipped or data lost */
	if (run->index && injected && !fault_injected_shrinks_only())
		return "an allocation failed, and the feed was taken";
	if (run->index)
		return run->errors.count ? "an index, and errors" : same_index(run->index);
	if (!injected)
		return "no index, and no failure injected";
	return memory_error_only(&run->errors);
}

static void release_index(struct run *run)
{
	dnsf_index_free(run->index);
}

START_TEST(test_feed_load_survives_every_failed_allocation)
{
	const struct scenario scenario = { "feed file to index", act_feed_file, verify_feed,
					   release_index };
	fail_each_allocation_both_ways(&scenario);
}
END_TEST

/* A feed with errors of every kind: refused, whatever fails. */
static const char invalid_feed[] =
    "{\"format\":\"dnsfilter-feed/1\",\"typo\":1,\"entries\":["
    "{\"id\":\"A\",\"fqdns\":[\"a..example.net\",\"com\"],\"start\":\"2024-01-01\"},"
    "{\"id\":\"A\",\"fqdns\":[\"b.example.net\"],\"start\":\"2024-01-01\",\"end\":\"2023-01-01\"},"
    "{\"id\":\"B\",\"fqdns\":[],\"start\":\"yesterday\",\"colour\":\"red\"}],"
    "\"allow\":[7]}";

static void act_invalid_feed(struct run *run)
{
	run->index = dnsf_index_from_buffer(invalid_feed, strlen(invalid_feed), NULL, &run->errors);
}

static const char *verify_invalid_feed(struct run *run, int injected)
{
	if (run->index)
		return "an invalid feed gave an index";
	if (run->errors.count == 0)
		return "refused without an error";
	/* with no failure, all nine problems are named */
	if (!injected && (run->errors.count != 9 || run->errors.count_kept != 9))
		return "not every problem of the feed is reported";
	return NULL;
}

START_TEST(test_invalid_feed_is_refused_whatever_fails)
{
	const struct scenario scenario = { "invalid feed", act_invalid_feed, verify_invalid_feed,
					   release_index };
	fail_each_allocation_both_ways(&scenario);
}
END_TEST

/*
 * The module's load: the feed file, falling back to its last-good copy
 * (lastgood.h). The copy holds an older feed (v1), the file a newer one
 * (v2). Whatever allocation fails, the result is the new feed (and the
 * copy then holds it, or a warning says why not), or the old one from the
 * copy with the reason the file failed, or nothing with both reasons; and
 * the copy on disk is always one of the two feeds, whole, with no
 * temporary file left beside it: no fault loses the last good data.
 */
static const char old_feed[] =
    "{\"format\":\"dnsfilter-feed/1\",\"serial\":7,\"entries\":[{\"id\":\"OLD-1\","
    "\"fqdns\":[\"old.example.net\"],\"start\":\"2024-01-01\"}]}";
static char copy_path[200];

static void *build_index(const char *text, size_t length, const char *name, void *context,
			 struct dnsf_errors *errors)
{
	(void)name;
	return dnsf_index_from_buffer(text, length, context, errors);
}

static void act_last_good_load(struct run *run)
{
	struct dnsf_loaded loaded;

	snprintf(copy_path, sizeof(copy_path), "%s.last-good", feed_path);
	dnsf_last_good_load(feed_path, copy_path, 1 << 20, 1, build_index, NULL, &loaded);
	run->index = loaded.result;
	run->ok = loaded.from_copy;
	/* run->errors: one for each reason the file failed */
	for (size_t i = 0; i < loaded.file_errors.count; i++)
		dnsf_errors_add_kind(&run->errors, DNSF_ERROR_IO, "file");
	run->loaded_copy_errors = loaded.copy_errors.count;
	run->loaded_save_errors = loaded.save_errors.count;
	run->loaded_file_memory = dnsf_errors_count_kind(&loaded.file_errors, DNSF_ERROR_MEMORY);
	dnsf_loaded_clear(&loaded);
}

static const char *verify_last_good_load(struct run *run, int injected)
{
	char *copy = read_whole(copy_path);
	const char *result = NULL;
	DIR *dir = opendir(directory);
	struct dirent *entry;

	/* the copy is one of the two feeds, whole */
	if (!copy || (strcmp(copy, old_feed) != 0 && strcmp(copy, feed_text) != 0))
		result = "the last-good copy is damaged or gone";
	while (!result && dir && (entry = readdir(dir)))
		if (strstr(entry->d_name, ".tmp"))
			result = "a temporary file is left beside the copy";
	if (dir)
		closedir(dir);
	if (!result && run->index && !run->ok) {
		result = same_index(run->index);
		if (!result && strcmp(copy, feed_text) != 0 && run->loaded_save_errors == 0)
			result = "the new feed loaded, the copy is old, and no warning says why";
	} else if (!result && run->index) {
		/* from the copy: the old feed, because the file failed for memory */
		struct dnsf_index_info info;
		dnsf_index_info(run->index, &info);
		if (info.serial != 7 || info.entry_count != 1)
			result = "the copy served something else than the old feed";
		else if (!injected || run->loaded_file_memory == 0)
			result = "the copy served, but the file did not fail for memory";
	} else if (!result) {
		if (!injected)
			result = "nothing loaded, and no failure injected";
		else if (run->errors.count == 0 || run->loaded_copy_errors == 0)
			result = "nothing loaded, and the reasons are missing";
	}
	free(copy);
	return result;
}

static void release_last_good_load(struct run *run)
{
	dnsf_index_free(run->index);
	write_file(copy_path, old_feed); /* the next run starts from the old copy */
}

START_TEST(test_last_good_load_loses_no_data_whatever_fails)
{
	const struct scenario scenario = { "feed with its last-good copy", act_last_good_load,
					   verify_last_good_load, release_last_good_load };
	snprintf(copy_path, sizeof(copy_path), "%s.last-good", feed_path);
	write_file(copy_path, old_feed);
	fail_each_allocation_both_ways(&scenario);
}
END_TEST

/* A public suffix is refused unless forced; when the Public Suffix List
 * cannot be loaded (memory ran out in libpsl, or the file and libpsl's
 * built-in list are missing) that check cannot be made, and the feed must
 * be refused rather than taken unchecked. */
/*
 * The changed names between two feeds (the purge after a swap): whatever
 * allocation fails, no delta (the purge then checks every name) and no
 * leak; with none failing, the names that changed.
 */
static struct dnsf_index *delta_old, *delta_new;

static const char delta_old_feed[] =
    "{\"format\":\"dnsfilter-feed/1\",\"entries\":[{\"id\":\"A\",\"fqdns\":["
    "\"a.example.net\",\"b.example.net\",\"*.c.example.net\"],\"start\":\"2024-01-01\"}],"
    "\"allow\":[\"ok.c.example.net\"]}";
static const char delta_new_feed[] =
    "{\"format\":\"dnsfilter-feed/1\",\"entries\":[{\"id\":\"A\",\"fqdns\":["
    "\"a.example.net\",\"d.example.net\",\"*.c.example.net\",\"e.example.org\"],"
    "\"start\":\"2024-01-01\"},{\"id\":\"B\",\"fqdns\":[\"b.example.net\"],"
    "\"start\":\"2025-01-01\"}]}";

static void act_delta(struct run *run)
{
	run->delta = dnsf_index_delta(delta_old, delta_new);
}

static const char *verify_delta(struct run *run, int injected)
{
	if (!run->delta)
		return injected ? NULL : "no delta, and no failure injected";
	/* the trie gives back its arena's unused tail: that may fail */
	if (injected && !fault_injected_shrinks_only())
		return "an allocation failed, and a delta came back";
	/* b (a second entry), d, e.example.org and the dropped allow */
	return dnsf_delta_count(run->delta) == 4 ? NULL : "not the 4 changed names";
}

static void release_delta(struct run *run)
{
	dnsf_delta_free(run->delta);
}

START_TEST(test_changed_names_survive_every_failed_allocation)
{
	const struct scenario scenario = { "changed names of two feeds", act_delta, verify_delta,
					   release_delta };
	struct dnsf_errors errors = { 0 };

	delta_old = dnsf_index_from_buffer(delta_old_feed, strlen(delta_old_feed), NULL, &errors);
	delta_new = dnsf_index_from_buffer(delta_new_feed, strlen(delta_new_feed), NULL, &errors);
	ck_assert_ptr_nonnull(delta_old);
	ck_assert_ptr_nonnull(delta_new);
	fail_each_allocation_both_ways(&scenario);
	dnsf_index_free(delta_old);
	dnsf_index_free(delta_new);
	dnsf_errors_clear(&errors);
}
END_TEST

START_TEST(test_public_suffix_check_fails_closed_without_the_list)
{
	static const char text[] = "{\"format\":\"dnsfilter-feed/1\",\"entries\":[{\"id\":\"X\","
				   "\"fqdns\":[\"com\"],\"start\":\"2024-01-01\"}]}";
	struct dnsf_errors errors = { 0 };

	fault_arm_function("psl_latest");
	struct dnsf_index *index = dnsf_index_from_buffer(text, strlen(text), NULL, &errors);
	int injected = fault_injected();
	fault_disarm();
	int taken = index != NULL;
	size_t error_count = errors.count;
	dnsf_index_free(index);
	dnsf_errors_clear(&errors);
	ck_assert_msg(injected, "the Public Suffix List is no longer loaded with psl_latest");
	ck_assert_msg(!taken, "a feed listing \"com\" was taken without the Public Suffix List "
			      "check");
	ck_assert_uint_gt(error_count, 0);
}
END_TEST

/* ---- the opt-out set ---- */

static const char *const optout_list[] = { "192.0.2.0/24", "2001:db8::/32", "10.0.0.0/8",
					   "::ffff:198.51.100.0/120" };
#define OPTOUT_LIST_COUNT (sizeof(optout_list) / sizeof(optout_list[0]))
static char optout_path[160];

static const char *const probes[] = {
	"192.0.2.7",     "192.0.3.1",     "10.200.0.1",      "198.51.100.9", "203.0.113.5",
	"203.0.113.200", "100.64.2.1",    "100.64.99.0",     "2001:db8::1",  "2001:db9::1",
	"2001:db9:5::7", "2001:db9:77::", "::ffff:10.1.2.3", "::1",          "8.8.8.8",
};
#define PROBES (sizeof(probes) / sizeof(probes[0]))
static int expected_contains[PROBES], expected_list_only[PROBES];
static size_t expected_prefixes, expected_v4_ranges, expected_v6_ranges;

/* An opt-out file with a byte order mark, comments, CRLF and more lines
 * than the builder's first array holds, of both families. */
static void write_optout_file(void)
{
	size_t capacity = 16384, used = 0;
	char *text = malloc(capacity);
	used += (size_t)snprintf(text + used, capacity - used, "\xef\xbb\xbf# opt-out\r\n\n");
	for (int i = 0; i < 70; i++)
		used += (size_t)snprintf(text + used, capacity - used,
					 "203.0.113.%d  # customer %d\n100.64.%d.0/24\r\n", i, i,
					 i * 2);
	for (int i = 0; i < 70; i++)
		used += (size_t)snprintf(text + used, capacity - used, "2001:db9:%x::/48\n", i * 3);
	snprintf(optout_path, sizeof(optout_path), "%s/optout.txt", directory);
	write_file(optout_path, text);
	free(text);
}

static void probe_all(const struct dnsf_cidr_set *set, int *contains)
{
	for (size_t i = 0; i < PROBES; i++) {
		uint8_t address[16];
		int family = strchr(probes[i], ':') ? AF_INET6 : AF_INET;
		ck_assert(inet_pton(family, probes[i], address) == 1);
		contains[i] = dnsf_cidr_set_contains(set, family, address);
	}
}

static struct dnsf_cidr_set *build_optout(int with_file)
{
	struct dnsf_errors errors = { 0 };
	struct dnsf_cidr_builder *builder = dnsf_cidr_builder_new(1000);
	ck_assert(dnsf_cidr_builder_add_list(builder, optout_list, OPTOUT_LIST_COUNT,
					     "optout.networks", &errors));
	ck_assert(!with_file || dnsf_cidr_builder_add_file(builder, optout_path, &errors));
	struct dnsf_cidr_set *set = dnsf_cidr_set_build(builder, &errors);
	ck_assert_ptr_nonnull(set);
	ck_assert_uint_eq(errors.count, 0);
	return set;
}

static void setup_optout(void)
{
	make_directory();
	write_optout_file();
	struct dnsf_cidr_set *set = build_optout(0);
	probe_all(set, expected_list_only);
	dnsf_cidr_set_free(set);
	set = build_optout(1);
	probe_all(set, expected_contains);
	expected_prefixes = dnsf_cidr_set_prefix_count(set);
	expected_v4_ranges = dnsf_cidr_set_range_count(set, AF_INET);
	expected_v6_ranges = dnsf_cidr_set_range_count(set, AF_INET6);
	ck_assert_uint_eq(expected_prefixes, OPTOUT_LIST_COUNT + 210);
	ck_assert(expected_contains[4] && expected_contains[6] && !expected_contains[7]);
	dnsf_cidr_set_free(set);
}

static void teardown_optout(void)
{
	empty_directory(1);
}

/* As the loader does: the settings' list, the file, then the set. */
static void act_optout(struct run *run)
{
	run->builder = dnsf_cidr_builder_new(1000);
	if (!run->builder)
		return;
	run->ok = dnsf_cidr_builder_add_list(run->builder, optout_list, OPTOUT_LIST_COUNT,
					     "optout.networks", &run->errors) &&
		  dnsf_cidr_builder_add_file(run->builder, optout_path, &run->errors);
	if (!run->ok)
		return;
	run->set = dnsf_cidr_set_build(run->builder, &run->errors);
	run->builder = NULL; /* freed by the build in every case */
}

static const char *same_set(const struct dnsf_cidr_set *set, const int *expected)
{
	int contains[PROBES];
	const char *why;

	if (!dnsf_cidr_set_check(set, &why))
		return why;
	probe_all(set, contains);
	for (size_t i = 0; i < PROBES; i++)
		if (contains[i] != expected[i])
			return "a lookup differs from the reference set";
	return NULL;
}

static const char *verify_optout(struct run *run, int injected)
{
	if (run->set) {
		if (injected && !fault_injected_shrinks_only())
			return "an allocation failed, and the networks were taken";
		if (run->errors.count)
			return "a set, and errors";
		if (dnsf_cidr_set_prefix_count(run->set) != expected_prefixes ||
		    dnsf_cidr_set_range_count(run->set, AF_INET) != expected_v4_ranges ||
		    dnsf_cidr_set_range_count(run->set, AF_INET6) != expected_v6_ranges)
			return "the set's counts differ from the reference";
		return same_set(run->set, expected_contains);
	}
	if (!injected)
		return "no set, and no failure injected";
	if (!run->builder && run->errors.count == 0)
		return NULL; /* dnsf_cidr_builder_new said NULL: out of memory */
	return memory_error_only(&run->errors);
}

static void release_optout(struct run *run)
{
	dnsf_cidr_builder_free(run->builder);
	dnsf_cidr_set_free(run->set);
}

START_TEST(test_optout_set_survives_every_failed_allocation)
{
	const struct scenario scenario = { "opt-out list and file to set", act_optout,
					   verify_optout, release_optout };
	fail_each_allocation_both_ways(&scenario);
}
END_TEST

/* A bad file is rolled back whole, also when memory runs out on the way:
 * the set then holds the list only. */
static void act_optout_bad_file(struct run *run)
{
	static const char bad[] = "192.0.2.128/25\n2001:db8:1::/48\n"
				  "203.0.113.0/24\n10.0.0.1/8\n";
	run->builder = dnsf_cidr_builder_new(1000);
	if (!run->builder)
		return;
	run->ok = dnsf_cidr_builder_add_list(run->builder, optout_list, OPTOUT_LIST_COUNT,
					     "optout.networks", &run->errors);
	if (!run->ok)
		return;
	/* refused, as it must be; the set is built from what was kept */
	if (dnsf_cidr_builder_add_file_text(run->builder, bad, strlen(bad), "optout.txt",
					    &run->errors))
		run->ok = 2;
	run->set = dnsf_cidr_set_build(run->builder, &run->errors);
	run->builder = NULL;
}

static const char *verify_optout_bad_file(struct run *run, int injected)
{
	if (run->ok == 2)
		return "a file with a bad line was taken";
	if (run->set) {
		if (dnsf_errors_count_kind(&run->errors, DNSF_ERROR_INVALID) != 1)
			return "the bad line is not the one error";
		if (dnsf_cidr_set_prefix_count(run->set) != OPTOUT_LIST_COUNT)
			return "the bad file was not rolled back";
		return same_set(run->set, expected_list_only);
	}
	if (!injected)
		return "no set, and no failure injected";
	if (!run->builder && run->errors.count == 0)
		return NULL;
	if (dnsf_errors_count_kind(&run->errors, DNSF_ERROR_MEMORY) == 0)
		return "no set, and no memory error";
	return NULL;
}

START_TEST(test_bad_optout_file_is_rolled_back_whatever_fails)
{
	const struct scenario scenario = { "opt-out with a bad file", act_optout_bad_file,
					   verify_optout_bad_file, release_optout };
	fail_each_allocation_both_ways(&scenario);
}
END_TEST

/* ---- settings ---- */

static const char settings_text[] =
    "{\"feed\":\"feed.json\",\"sinkhole\":{\"a\":\"192.0.2.1\",\"aaaa\":\"2001:db8::1\"},"
    "\"ttl\":42,\"other-types\":\"nxdomain\",\"mode\":\"monitor\",\"ede\":false,"
    "\"optout\":{\"networks\":[\"192.0.2.0/24\",\"2001:db8::/32\"],\"file\":\"optout.txt\"},"
    "\"log.path\":\"/var/log/dnsfilter/events.jsonl\",\"log.client-ip\":\"truncate\","
    "\"stats\":{\"path\":\"stats.jsonl\",\"interval\":10},\"metrics.path\":\"x.prom\"}";

static void act_settings(struct run *run)
{
	route_cjson_through_wrappers();
	run->ok = dnsf_settings_parse(settings_text, strlen(settings_text),
				      "/etc/unbound/dnsfilter.json", &run->settings, &run->errors);
}

static const char *verify_settings(struct run *run, int injected)
{
	const struct dnsf_settings *s = &run->settings;
	if (run->ok && injected)
		return "an allocation failed, and the settings were taken";
	if (run->ok)
		return run->errors.count || !s->feed || strcmp(s->feed, "/etc/unbound/feed.json") ||
			       s->optout_network_count != 2 ||
			       strcmp(s->optout_networks[1], "2001:db8::/32") ||
			       strcmp(s->stats_path, "/etc/unbound/stats.jsonl") ||
			       s->stats_interval != 10 || s->ttl != 42
			   ? "the settings differ from the file"
			   : NULL;
	if (!injected)
		return "refused, and no failure injected";
	return memory_error_only(&run->errors);
}

static void release_settings(struct run *run)
{
	dnsf_settings_free(&run->settings);
}

START_TEST(test_settings_survive_every_failed_allocation)
{
	const struct scenario scenario = { "settings", act_settings, verify_settings,
					   release_settings };
	fail_each_allocation_both_ways(&scenario);
}
END_TEST

/* Bad values are quoted with cJSON's printer: when that fails the message
 * says "that" instead, and the settings are still refused. */
static const char bad_settings_text[] =
    "{\"feed\":7,\"ttl\":\"long\",\"mode\":[1],\"optout.networks\":[\"10.0.0.1/8\",3]}";

static void act_bad_settings(struct run *run)
{
	route_cjson_through_wrappers();
	run->ok = dnsf_settings_parse(bad_settings_text, strlen(bad_settings_text),
				      "/etc/unbound/dnsfilter.json", &run->settings, &run->errors);
}

static const char *verify_bad_settings(struct run *run, int injected)
{
	if (run->ok)
		return "bad settings were taken";
	if (run->errors.count == 0)
		return "refused without an error";
	if (!injected && run->errors.count_kept != run->errors.count)
		return "a message is missing";
	return NULL;
}

START_TEST(test_bad_settings_are_refused_whatever_fails)
{
	const struct scenario scenario = { "bad settings", act_bad_settings, verify_bad_settings,
					   release_settings };
	fail_each_allocation_both_ways(&scenario);
}
END_TEST

/* ---- the reporter ---- */

#define REPORT_IDS 40
#define REPORT_BLOCKED 100
#define REPORT_MONITORED 20
#define REPORT_QUERIES 500

static char complaints[4096];

static void record_complaint(void *arg, const char *message)
{
	size_t used = strlen(complaints);
	(void)arg;
	snprintf(complaints + used, sizeof(complaints) - used, "%s\n", message);
}

static void setup_report(void)
{
	make_directory();
}

static void teardown_report(void)
{
	empty_directory(1);
}

/* As Unbound's threads and the module's stop do, all on this thread (a
 * reporter never started writes its last round in the caller). */
static void act_report(struct run *run)
{
	struct dnsf_report_settings settings = { .log_path = path_in_directory("events.jsonl"),
						 .client_ip = DNSF_CLIENT_IP_TRUNCATE,
						 .stats_path = path_in_directory("stats.jsonl"),
						 .stats_interval = 60,
						 .metrics_path =
						     path_in_directory("dnsfilter.prom"),
						 .log_error = record_complaint };
	struct sockaddr_in client = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0xcb007107) };
	static const uint8_t qname[] = "\002c2\007example\003net";

	complaints[0] = 0;
	run->reporter = dnsf_reporter_new(&settings, &run->errors);
	if (!run->reporter)
		return;
	struct dnsf_counters *counters = dnsf_reporter_thread(run->reporter);
	for (int i = 0; i < REPORT_QUERIES; i++)
		dnsf_count_query(counters);
	for (int i = 0; i < REPORT_BLOCKED + REPORT_MONITORED; i++) {
		struct dnsf_event event = { .time_ms = 1713229323456 + i, .qtype = 1 };
		dnsf_event_set_client(&event, (const struct sockaddr *)&client);
		dnsf_event_set_qname_wire(&event, qname, sizeof(qname));
		snprintf(event.id, sizeof(event.id), "IIJ-20240416-%04d", i % REPORT_IDS);
		event.monitor = i >= REPORT_BLOCKED;
		dnsf_report_match(counters, &event);
	}
	dnsf_reporter_set_feed(run->reporter, 2024063001);
	dnsf_reporter_stop(run->reporter);
}

static const char *verify_event_lines(char *events, size_t *lines)
{
	*lines = 0;
	for (char *line = events, *end; line && (end = strchr(line, '\n')); line = end + 1) {
		*end = 0;
		cJSON *parsed = cJSON_Parse(line);
		int good = cJSON_IsObject(parsed) &&
			   cJSON_IsString(cJSON_GetObjectItem(parsed, "qname")) &&
			   strcmp(cJSON_GetObjectItem(parsed, "qname")->valuestring,
				  "c2.example.net") == 0;
		cJSON_Delete(parsed);
		if (!good)
			return "an event line is not a whole event";
		(*lines)++;
	}
	return NULL;
}

/* The counter line adds up: every event is in the event log or counted as
 * dropped; by_id never counts more than happened. */
static const char *verify_counter_line(const char *stats, size_t event_lines, int injected)
{
	static char why[256];
	cJSON *line = cJSON_Parse(stats);
	const char *result = NULL;
	double by_id_sum = 0;
	const cJSON *item;

	if (!cJSON_IsObject(line)) {
		cJSON_Delete(line);
		return "the counter line is not JSON";
	}
	double blocked = cJSON_GetNumberValue(cJSON_GetObjectItem(line, "blocked"));
	double monitored = cJSON_GetNumberValue(cJSON_GetObjectItem(line, "monitored"));
	double queries = cJSON_GetNumberValue(cJSON_GetObjectItem(line, "queries"));
	double dropped = cJSON_GetNumberValue(cJSON_GetObjectItem(line, "dropped_events"));
	cJSON_ArrayForEach(item, cJSON_GetObjectItem(line, "by_id"))
	{
		by_id_sum += item->valuedouble;
		if (item->valuedouble > (REPORT_BLOCKED + REPORT_MONITORED) / REPORT_IDS)
			result = "an id counted more matches than it had";
	}
	if (blocked != REPORT_BLOCKED || monitored != REPORT_MONITORED ||
	    queries != REPORT_QUERIES) {
		snprintf(why, sizeof(why), "counters wrong: blocked %g monitored %g queries %g",
			 blocked, monitored, queries);
		result = why;
	} else if ((double)event_lines + dropped != REPORT_BLOCKED + REPORT_MONITORED) {
		snprintf(why, sizeof(why), "%zu event lines + %g dropped is not %d events",
			 event_lines, dropped, REPORT_BLOCKED + REPORT_MONITORED);
		result = why;
	} else if (by_id_sum > REPORT_BLOCKED + REPORT_MONITORED ||
		   (!injected && (by_id_sum != REPORT_BLOCKED + REPORT_MONITORED || dropped))) {
		result = "by_id does not add up";
	}
	cJSON_Delete(line);
	return result;
}

/* Was the operator told about key's file? A complaint whose own text
 * could not be made for want of memory is a bare "out of memory" line
 * (output.c), which counts for every file. */
static int complained_about(const char *key)
{
	return strstr(complaints, key) || strncmp(complaints, "out of memory\n", 14) == 0 ||
	       strstr(complaints, "\nout of memory\n");
}

/* A file the reporter could not write must have been complained about. */
static const char *missing_without_complaint(const char *text, const char *key)
{
	static char why[256];
	if (text || complained_about(key))
		return NULL;
	snprintf(why, sizeof(why), "no %s file, and no complaint about it", key);
	return why;
}

static const char *verify_report(struct run *run, int injected)
{
	static char why[512];
	const char *result = NULL;
	size_t lines = 0;

	if (!run->reporter) {
		if (!injected)
			return "no reporter, and no failure injected";
		/* with memory gone for good the message itself may be missing
		 * (error.h: the error is still counted) */
		if (run->errors.count == 0 ||
		    (run->errors.count_kept > 0 &&
		     !errors_mention(&run->errors, "out of memory", NULL) &&
		     !errors_mention(&run->errors, "Cannot allocate memory", NULL))) {
			char *all = dnsf_errors_join(&run->errors, " | ");
			snprintf(why, sizeof(why), "refused, but not for memory: %s", all);
			free(all);
			return why;
		}
		return NULL;
	}
	if (run->errors.count)
		return "a reporter, and errors";
	char *events = read_whole(path_in_directory("events.jsonl"));
	char *stats = read_whole(path_in_directory("stats.jsonl"));
	char *metrics = read_whole(path_in_directory("dnsfilter.prom"));
	/* a file the reporter could not write is complained about and tried
	 * again later; its events are counted as dropped */
	result = missing_without_complaint(events, "log.path");
	if (!result)
		result = missing_without_complaint(stats, "stats.path");
	if (!result)
		result = missing_without_complaint(metrics, "metrics.path");
	if (!result && events)
		result = verify_event_lines(events, &lines);
	if (!result && (!stats || !stats[0]) && !complained_about("stats.path: "))
		result = "no counter line, and no complaint about it";
	if (!result && stats && stats[0])
		result = verify_counter_line(stats, lines, injected);
	if (!result && (!metrics || !strstr(metrics, "\ndnsfilter_blocked_total 100\n")) &&
	    !complained_about("metrics.path: "))
		result = "metrics not written at stop, and no complaint about it";
	if (!result && !injected && complaints[0])
		result = "complaints with no failure injected";
	if (result && result != why) {
		snprintf(why, sizeof(why), "%.200s (complaints: %.200s)", result,
			 complaints[0] ? complaints : "none");
		result = why;
	}
	free(events);
	free(stats);
	free(metrics);
	return result;
}

static void release_report(struct run *run)
{
	dnsf_reporter_free(run->reporter);
	empty_directory(0);
}

START_TEST(test_reporter_survives_every_failed_allocation)
{
	const struct scenario scenario = { "reporter", act_report, verify_report, release_report };
	fail_each_allocation_both_ways(&scenario);
}
END_TEST

/* ---- the query path ---- */

/* What a resolver thread does for a query allocates nothing, so it cannot
 * fail for want of memory. */
START_TEST(test_query_path_allocates_nothing)
{
	struct dnsf_errors errors = { 0 };
	struct dnsf_report_settings settings = { .stats_interval = 60 };
	struct dnsf_index *index =
	    dnsf_index_from_buffer(feed_text, strlen(feed_text), NULL, &errors);
	struct dnsf_cidr_builder *builder = dnsf_cidr_builder_new(10);
	ck_assert(
	    dnsf_cidr_builder_add_list(builder, optout_list, OPTOUT_LIST_COUNT, "optout", &errors));
	struct dnsf_cidr_set *set = dnsf_cidr_set_build(builder, &errors);
	struct dnsf_reporter *reporter = dnsf_reporter_new(&settings, &errors);
	static const uint8_t qname[] = "\002C2\001d\002d3\007example\003org";
	uint8_t address[16] = { 0x20, 0x01, 0x0d, 0xb8, 1 };
	ck_assert_ptr_nonnull(index);
	ck_assert_ptr_nonnull(set);
	ck_assert_ptr_nonnull(reporter);
	struct dnsf_counters *counters = dnsf_reporter_thread(reporter); /* its ring, once */

	fault_arm(0, FAULT_ONCE);
	struct dnsf_key key;
	struct dnsf_decision decision;
	struct dnsf_event event = { .qtype = 28 };
	int parsed = dnsf_key_from_wire(qname, sizeof(qname), &key);
	dnsf_index_decide(index, &key, 1714000000, &decision);
	/* the memo the resolution's callbacks then ask */
	static struct dnsf_memo memo;
	struct dnsf_decision remembered;
	dnsf_memo_put(&memo, index, qname, sizeof(qname), 1714000000, &decision);
	int memo_hit = dnsf_memo_get(&memo, index, qname, sizeof(qname), 1714000000, &remembered);
	int opted_out = dnsf_cidr_set_contains(set, AF_INET6, address);
	dnsf_count_query(counters);
	dnsf_event_set_qname_wire(&event, qname, sizeof(qname));
	snprintf(event.id, sizeof(event.id), "%s", decision.entry.id ? decision.entry.id : "");
	dnsf_report_match(counters, &event);
	unsigned long allocations = fault_disarm();

	ck_assert(parsed);
	ck_assert(memo_hit);
	ck_assert_int_eq(decision.verdict, DNSF_VERDICT_BLOCK);
	ck_assert(opted_out);
	ck_assert_uint_eq(allocations, 0);
	dnsf_reporter_free(reporter);
	dnsf_cidr_set_free(set);
	dnsf_index_free(index);
	dnsf_errors_clear(&errors);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("alloc_faults");
	TCase *feed = tcase_create("feed");
	TCase *optout = tcase_create("optout");
	TCase *settings = tcase_create("settings");
	TCase *report = tcase_create("report");

	tcase_add_checked_fixture(feed, setup_feed, teardown_feed);
	tcase_add_test(feed, test_feed_load_survives_every_failed_allocation);
	tcase_add_test(feed, test_invalid_feed_is_refused_whatever_fails);
	tcase_add_test(feed, test_changed_names_survive_every_failed_allocation);
	tcase_add_test(feed, test_public_suffix_check_fails_closed_without_the_list);
	tcase_add_test(feed, test_last_good_load_loses_no_data_whatever_fails);
	tcase_set_timeout(feed, 240);
	suite_add_tcase(suite, feed);
	tcase_add_checked_fixture(optout, setup_optout, teardown_optout);
	tcase_add_test(optout, test_optout_set_survives_every_failed_allocation);
	tcase_add_test(optout, test_bad_optout_file_is_rolled_back_whatever_fails);
	tcase_set_timeout(optout, 240);
	suite_add_tcase(suite, optout);
	tcase_add_checked_fixture(report, setup_report, teardown_report);
	tcase_add_test(report, test_reporter_survives_every_failed_allocation);
	tcase_set_timeout(report, 240);
	suite_add_tcase(suite, report);
	TCase *query = tcase_create("query path");
	tcase_add_checked_fixture(query, setup_feed, teardown_feed);
	tcase_add_test(query, test_query_path_allocates_nothing);
	suite_add_tcase(suite, query);
	/* last: it sets cJSON's hooks (route_cjson_through_wrappers) */
	tcase_add_test(settings, test_settings_survive_every_failed_allocation);
	tcase_add_test(settings, test_bad_settings_are_refused_whatever_fails);
	tcase_set_timeout(settings, 240);
	suite_add_tcase(suite, settings);
	return run_suite(suite);
}
