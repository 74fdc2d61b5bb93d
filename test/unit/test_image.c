/* Index images (index.h, "Images"): written and mapped back, an image
 * decides exactly as the index it was written from; a damaged, truncated
 * or foreign image is refused with a reason and never used. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../support/splitmix.h"
#include "dnsfilter/feed.h"
#include "unit.h"

static char directory[64], image_path[128];
static char *feed_text;

/* A feed of entries with exact and wildcard names, monitor entries, time
 * windows and an allow list, from a seeded generator. */
static char *make_feed(size_t entries)
{
	size_t size = 256 + entries * 256, used = 0;
	char *text = malloc(size);
	ck_assert_ptr_nonnull(text);
	used += (size_t)snprintf(text + used, size - used,
				 "{\"format\":\"dnsfilter-feed/1\",\"serial\":42,"
				 "\"generated\":\"2024-06-30T12:00:00Z\",\"entries\":[");
	for (size_t i = 0; i < entries; i++)
		used += (size_t)snprintf(
		    text + used, size - used,
		    "%s{\"id\":\"ID-%04zu\",\"behavior\":\"%s\",\"action\":\"%s\","
		    "\"start\":\"2024-0%zu-01\",%s\"fqdns\":[\"n%zu.x%zu.test\",\"*.w%zu.test\"]}",
		    i ? "," : "", i, i % 3 ? "backdoor" : "info-theft", i % 5 ? "block" : "monitor",
		    1 + i % 6, i % 4 ? "" : "\"end\":\"2024-09-01\",", i, i % 7, i % 11);
	used += (size_t)snprintf(text + used, size - used,
				 "],\"allow\":[\"n3.x3.test\",\"*.ok.w2.test\"]}");
	return text;
}

static void setup(void)
{
	strcpy(directory, "/tmp/test_image_XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(directory));
	snprintf(image_path, sizeof(image_path), "%s/feed.json.index", directory);
	feed_text = make_feed(60);
}

static void teardown(void)
{
	char command[160];
	free(feed_text);
	snprintf(command, sizeof(command), "rm -rf '%s'", directory);
	ck_assert_int_eq(system(command), 0);
}

static struct dnsf_index *build(void)
{
	struct dnsf_errors errors = { 0 };
	struct dnsf_index *index =
	    dnsf_index_from_buffer(feed_text, strlen(feed_text), NULL, &errors);
	char *all = dnsf_errors_join(&errors, " | ");
	ck_assert_msg(index != NULL, "feed refused: %s", all);
	free(all);
	return index;
}

static void write_image(const struct dnsf_index *index, uint8_t hash[DNSF_FEED_HASH_SIZE])
{
	struct dnsf_errors errors = { 0 };
	dnsf_feed_hash(feed_text, strlen(feed_text), hash);
	ck_assert(dnsf_index_write_image(index, hash, image_path, &errors));
	ck_assert_uint_eq(errors.count, 0);
}

static char *read_image(size_t *size)
{
	FILE *f = fopen(image_path, "rb");
	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	*size = (size_t)ftell(f);
	rewind(f);
	/* 8-byte aligned, as a mapping is */
	char *bytes = aligned_alloc(8, (*size + 8) & ~(size_t)7);
	ck_assert_ptr_nonnull(bytes);
	ck_assert_uint_eq(fread(bytes, 1, *size, f), *size);
	fclose(f);
	return bytes;
}

/* Names to ask: listed, below wildcards, allowed, unlisted. */
static void query_name(size_t i, char *out, size_t size)
{
	switch (i % 5) {
	case 0:
		snprintf(out, size, "n%zu.x%zu.test", i % 70, i % 7);
		break;
	case 1:
		snprintf(out, size, "a%zu.w%zu.test", i, i % 13);
		break;
	case 2:
		snprintf(out, size, "w%zu.test", i % 11);
		break;
	case 3:
		snprintf(out, size, "x.ok.w2.test");
		break;
	default:
		snprintf(out, size, "n%zu.other.test", i);
	}
}

static const int64_t times[] = { 1700000000, 1711929600, 1717200000, 1725148800, 1800000000 };

/* Both indexes decide every name at every time the same. */
static void assert_same_decisions(const struct dnsf_index *a, const struct dnsf_index *b)
{
	for (size_t i = 0; i < 400; i++) {
		char name[64];
		query_name(i, name, sizeof(name));
		struct dnsf_key key = key_of_text(name);
		for (size_t t = 0; t < sizeof(times) / sizeof(times[0]); t++) {
			struct dnsf_decision x, y;
			dnsf_index_decide(a, &key, times[t], &x);
			dnsf_index_decide(b, &key, times[t], &y);
			ck_assert_msg(x.verdict == y.verdict && x.wildcard == y.wildcard &&
					  x.match_length == y.match_length,
				      "%s at %lld: %s vs %s", name, (long long)times[t],
				      dnsf_verdict_name(x.verdict), dnsf_verdict_name(y.verdict));
			ck_assert_int_eq(!x.entry.id, !y.entry.id);
			if (x.entry.id) {
				ck_assert_str_eq(x.entry.id, y.entry.id);
				ck_assert_str_eq(x.entry.behavior, y.entry.behavior);
				ck_assert_uint_eq(x.entry.position, y.entry.position);
			}
		}
	}
}

START_TEST(test_image_decides_as_the_index)
{
	uint8_t hash[DNSF_FEED_HASH_SIZE];
	struct dnsf_errors errors = { 0 };
	struct dnsf_index *built = build();
	write_image(built, hash);
	struct dnsf_index *mapped = dnsf_index_from_image(image_path, hash, &errors);
	char *all = dnsf_errors_join(&errors, " | ");
	ck_assert_msg(mapped != NULL, "image refused: %s", all);
	free(all);

	struct dnsf_index_info x, y;
	dnsf_index_info(built, &x);
	dnsf_index_info(mapped, &y);
	ck_assert_uint_eq(x.serial, y.serial);
	ck_assert_int_eq(x.has_serial, y.has_serial);
	ck_assert_str_eq(x.generated, y.generated);
	ck_assert_uint_eq(x.entry_count, y.entry_count);
	ck_assert_uint_eq(x.exact_count, y.exact_count);
	ck_assert_uint_eq(x.wildcard_count, y.wildcard_count);
	ck_assert_uint_eq(x.allow_count, y.allow_count);
	for (size_t i = 0; i < x.entry_count; i++) {
		struct dnsf_entry a, b;
		ck_assert(dnsf_index_entry(built, i, &a) && dnsf_index_entry(mapped, i, &b));
		ck_assert_str_eq(a.id, b.id);
		ck_assert_str_eq(a.behavior, b.behavior);
		ck_assert_int_eq(a.start, b.start);
		ck_assert_int_eq(a.end, b.end);
		ck_assert_int_eq(a.action, b.action);
	}
	ck_assert_int_eq(dnsf_index_next_start(built, 0), dnsf_index_next_start(mapped, 0));
	const char *why;
	ck_assert_msg(dnsf_index_check(mapped, &why), "%s", why);
	assert_same_decisions(built, mapped);
	dnsf_index_free(mapped);
	dnsf_index_free(built);
}
END_TEST

START_TEST(test_image_of_another_feed_is_refused)
{
	uint8_t hash[DNSF_FEED_HASH_SIZE], other[DNSF_FEED_HASH_SIZE];
	struct dnsf_errors errors = { 0 };
	struct dnsf_index *built = build();
	write_image(built, hash);
	dnsf_feed_hash("{}", 2, other);
	ck_assert_ptr_null(dnsf_index_from_image(image_path, other, &errors));
	assert_errors_mention(&errors, "built from another feed", NULL);
	dnsf_errors_clear(&errors);
	/* without a hash to match, the image itself is fine */
	struct dnsf_index *any = dnsf_index_from_image(image_path, NULL, &errors);
	ck_assert_ptr_nonnull(any);
	dnsf_index_free(any);
	dnsf_index_free(built);
}
END_TEST

START_TEST(test_every_truncation_is_refused)
{
	uint8_t hash[DNSF_FEED_HASH_SIZE];
	size_t size;
	struct dnsf_index *built = build();
	write_image(built, hash);
	char *bytes = read_image(&size);
	for (size_t length = 0; length < size; length++) {
		struct dnsf_errors errors = { 0 };
		struct dnsf_index *index =
		    dnsf_index_from_image_bytes(bytes, length, hash, 1, &errors);
		ck_assert_msg(index == NULL, "an image cut to %zu of %zu bytes was taken", length,
			      size);
		ck_assert_uint_gt(errors.count, 0);
		dnsf_errors_clear(&errors);
	}
	struct dnsf_errors errors = { 0 };
	struct dnsf_index *whole = dnsf_index_from_image_bytes(bytes, size, hash, 1, &errors);
	ck_assert_ptr_nonnull(whole);
	dnsf_index_free(whole);
	free(bytes);
	dnsf_index_free(built);
}
END_TEST

START_TEST(test_every_damaged_byte_is_refused)
{
	uint8_t hash[DNSF_FEED_HASH_SIZE];
	size_t size;
	struct dnsf_index *built = build();
	write_image(built, hash);
	char *bytes = read_image(&size);
	for (size_t i = 0; i < size; i++) {
		struct dnsf_errors errors = { 0 };
		bytes[i] ^= 0x20;
		struct dnsf_index *index =
		    dnsf_index_from_image_bytes(bytes, size, hash, 1, &errors);
		ck_assert_msg(index == NULL, "an image with byte %zu changed was taken", i);
		dnsf_errors_clear(&errors);
		bytes[i] ^= 0x20;
	}
	free(bytes);
	dnsf_index_free(built);
}
END_TEST

/* Without the checksum, whatever the structural checks let through must
 * still be safe to look up in (ASan run): random damage, seeded. */
START_TEST(test_damage_past_the_checksum_is_caught_or_harmless)
{
	uint8_t hash[DNSF_FEED_HASH_SIZE];
	size_t size, taken = 0;
	struct dnsf_index *built = build();
	write_image(built, hash);
	char *clean = read_image(&size);
	char *bytes = aligned_alloc(8, (size + 8) & ~(size_t)7);
	ck_assert_ptr_nonnull(bytes);
	splitmix_state = 7;
	for (int round = 0; round < 3000; round++) {
		memcpy(bytes, clean, size);
		for (int k = 0; k < 1 + round % 4; k++)
			bytes[random_below((unsigned)size)] = (char)next_random();
		struct dnsf_errors errors = { 0 };
		struct dnsf_index *index =
		    dnsf_index_from_image_bytes(bytes, size, NULL, 0, &errors);
		dnsf_errors_clear(&errors);
		if (!index)
			continue;
		taken++;
		for (size_t i = 0; i < 50; i++) {
			char name[64];
			struct dnsf_decision decision;
			query_name(i, name, sizeof(name));
			struct dnsf_key key = key_of_text(name);
			dnsf_index_decide(index, &key, times[i % 5], &decision);
			if (decision.entry.id)
				ck_assert_uint_lt(strlen(decision.entry.id), size);
		}
		dnsf_index_free(index);
	}
	/* damage to padding or to counts only reported is taken; most is not */
	ck_assert_uint_lt(taken, 3000);
	free(bytes);
	free(clean);
	dnsf_index_free(built);
}
END_TEST

START_TEST(test_not_an_image)
{
	struct dnsf_errors errors = { 0 };
	char path[160];
	snprintf(path, sizeof(path), "%s/feed.json", directory);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(feed_text, f);
	fclose(f);
	ck_assert_ptr_null(dnsf_index_from_image(path, NULL, &errors));
	assert_errors_mention(&errors, "bad magic", NULL);
	dnsf_errors_clear(&errors);
	ck_assert_ptr_null(dnsf_index_from_image("/nonexistent/x.index", NULL, &errors));
	assert_errors_mention(&errors, "cannot open", NULL);
	dnsf_errors_clear(&errors);
	ck_assert_ptr_null(dnsf_index_from_image(directory, NULL, &errors));
	assert_errors_mention(&errors, "not a regular", NULL);
	dnsf_errors_clear(&errors);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("image");
	TCase *tc = tcase_create("image");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_image_decides_as_the_index);
	tcase_add_test(tc, test_image_of_another_feed_is_refused);
	tcase_add_test(tc, test_every_truncation_is_refused);
	tcase_add_test(tc, test_every_damaged_byte_is_refused);
	tcase_add_test(tc, test_damage_past_the_checksum_is_caught_or_harmless);
	tcase_add_test(tc, test_not_an_image);
	suite_add_tcase(suite, tc);
	return run_suite(suite);
}
