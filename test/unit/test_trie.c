/* The radix trie: build, walk, invariants. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "dnsfilter/trie.h"
#include "unit.h"

static struct dnsf_trie_item item(const char *key, uint32_t value)
{
	struct dnsf_trie_item it = { (const uint8_t *)key, (uint32_t)strlen(key), value };
	return it;
}

START_TEST(test_walk_reports_every_stored_prefix)
{
	/* sorted: "a", "ab", "abc", "abd", "b" */
	struct dnsf_trie_item items[] = { item("a", 1), item("ab", 2), item("abc", 3),
					  item("abd", 4), item("b", 5) };
	struct dnsf_trie trie;
	struct dnsf_trie_match m[8];
	const char *why;
	ck_assert(dnsf_trie_build(&trie, items, 5));
	ck_assert_msg(dnsf_trie_check(&trie, &why), "%s", why);
	size_t n = dnsf_trie_walk(&trie, (const uint8_t *)"abcz", 4, m, 8);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(m[0].value, 1);
	ck_assert_uint_eq(m[0].length, 1);
	ck_assert_uint_eq(m[1].value, 2);
	ck_assert_uint_eq(m[2].value, 3);
	ck_assert_uint_eq(m[2].length, 3);
	n = dnsf_trie_walk(&trie, (const uint8_t *)"abd", 3, m, 8);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(m[2].value, 4);
	n = dnsf_trie_walk(&trie, (const uint8_t *)"c", 1, m, 8);
	ck_assert_uint_eq(n, 0);
	n = dnsf_trie_walk(&trie, (const uint8_t *)"", 0, m, 8);
	ck_assert_uint_eq(n, 0);
	dnsf_trie_free(&trie);
}
END_TEST

START_TEST(test_compressed_path_needs_every_byte)
{
	struct dnsf_trie_item items[] = { item("hello", 7) };
	struct dnsf_trie trie;
	struct dnsf_trie_match m[2];
	ck_assert(dnsf_trie_build(&trie, items, 1));
	ck_assert_uint_eq(dnsf_trie_walk(&trie, (const uint8_t *)"hell", 4, m, 2), 0);
	ck_assert_uint_eq(dnsf_trie_walk(&trie, (const uint8_t *)"helpo", 5, m, 2), 0);
	ck_assert_uint_eq(dnsf_trie_walk(&trie, (const uint8_t *)"hello!", 6, m, 2), 1);
	ck_assert_uint_eq(m[0].value, 7);
	dnsf_trie_free(&trie);
}
END_TEST

START_TEST(test_unsorted_or_duplicate_input_is_refused)
{
	struct dnsf_trie_item unsorted[] = { item("b", 1), item("a", 2) };
	struct dnsf_trie_item duplicate[] = { item("a", 1), item("a", 2) };
	struct dnsf_trie trie;
	ck_assert(!dnsf_trie_build(&trie, unsorted, 2));
	ck_assert_ptr_null(trie.arena);
	ck_assert(!dnsf_trie_build(&trie, duplicate, 2));
}
END_TEST

START_TEST(test_bytes_outside_the_alphabet)
{
	struct dnsf_trie_item upper[] = { item("A", 1) };
	struct dnsf_trie_item dot[] = { item("a.b", 1) };
	struct dnsf_trie_item ok[] = { item("a", 1), item("a-b_9", 2) };
	struct dnsf_trie trie;
	struct dnsf_trie_match m[4];
	ck_assert(!dnsf_trie_build(&trie, upper, 1));
	ck_assert(!dnsf_trie_build(&trie, dot, 1));
	ck_assert(dnsf_trie_build(&trie, ok, 2));
	/* a query byte outside the alphabet just has no child */
	ck_assert_uint_eq(dnsf_trie_walk(&trie, (const uint8_t *)"a\xff", 2, m, 4), 1);
	ck_assert_uint_eq(dnsf_trie_walk(&trie, (const uint8_t *)"a-b_9", 5, m, 4), 2);
	ck_assert_uint_eq(m[1].value, 2);
	dnsf_trie_free(&trie);
}
END_TEST

START_TEST(test_empty_trie_finds_nothing)
{
	struct dnsf_trie trie;
	struct dnsf_trie_match m[1];
	const char *why;
	ck_assert(dnsf_trie_build(&trie, NULL, 0));
	ck_assert(dnsf_trie_check(&trie, &why));
	ck_assert_uint_eq(dnsf_trie_walk(&trie, (const uint8_t *)"a", 1, m, 1), 0);
	dnsf_trie_free(&trie);
}
END_TEST

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

START_TEST(test_random_keys_match_a_linear_scan)
{
	enum { KEYS = 20000, QUERIES = 20000 };
	char **keys = malloc(KEYS * sizeof(*keys));
	struct dnsf_trie_item *items = malloc(KEYS * sizeof(*items));
	struct dnsf_trie trie;
	const char *why;
	size_t unique = 0;
	srand(7);
	for (int i = 0; i < KEYS; i++) {
		int length = 1 + rand() % 6;
		keys[i] = malloc(8);
		for (int j = 0; j < length; j++)
			keys[i][j] = "abc"[rand() % 3];
		keys[i][length] = 0;
	}
	qsort(keys, KEYS, sizeof(*keys), compare_strings);
	for (int i = 0; i < KEYS; i++)
		if (unique == 0 || strcmp(keys[i], (const char *)items[unique - 1].key) != 0) {
			items[unique] = item(keys[i], (uint32_t)unique);
			unique++;
		}
	ck_assert(dnsf_trie_build(&trie, items, unique));
	ck_assert_msg(dnsf_trie_check(&trie, &why), "%s", why);
	ck_assert_uint_eq(trie.key_count, unique);
	for (int q = 0; q < QUERIES; q++) {
		char query[10];
		int length = rand() % 9;
		struct dnsf_trie_match m[10];
		for (int j = 0; j < length; j++)
			query[j] = "abcd"[rand() % 4];
		size_t n = dnsf_trie_walk(&trie, (const uint8_t *)query, (size_t)length, m, 10);
		size_t expected = 0;
		for (size_t i = 0; i < unique; i++) {
			if (items[i].length <= (uint32_t)length &&
			    memcmp(items[i].key, query, items[i].length) == 0) {
				ck_assert_uint_lt(expected, n);
				ck_assert_uint_eq(m[expected].value, items[i].value);
				ck_assert_uint_eq(m[expected].length, items[i].length);
				expected++;
			}
		}
		ck_assert_uint_eq(n, expected);
	}
	dnsf_trie_free(&trie);
	for (int i = 0; i < KEYS; i++)
		free(keys[i]);
	free(keys);
	free(items);
}
END_TEST

/* foreach: every key once, in the order they were given (sorted), with
 * its value; keys use the whole alphabet. */
struct collected {
	char keys[64][16];
	uint32_t values[64];
	size_t count;
};

static void collect(const uint8_t *key, size_t length, uint32_t value, void *context)
{
	struct collected *c = context;
	ck_assert_uint_lt(c->count, 64);
	ck_assert_uint_lt(length, 16);
	memcpy(c->keys[c->count], key, length);
	c->keys[c->count][length] = 0;
	c->values[c->count++] = value;
}

START_TEST(test_foreach_yields_every_key_in_order)
{
	static const char *const keys[] = { "-",  "0z", "9",   "_a",  "a", "a-b", "a0",
					    "a_", "ab", "abc", "abd", "b", "z9",  "zz" };
	enum { COUNT = sizeof(keys) / sizeof(keys[0]) };
	struct dnsf_trie_item items[COUNT];
	struct dnsf_trie trie;
	struct collected c = { .count = 0 };

	for (size_t i = 0; i < COUNT; i++)
		items[i] = item(keys[i], (uint32_t)(100 + i));
	ck_assert(dnsf_trie_build(&trie, items, COUNT));
	dnsf_trie_foreach(&trie, collect, &c);
	ck_assert_uint_eq(c.count, COUNT);
	for (size_t i = 0; i < COUNT; i++) {
		ck_assert_str_eq(c.keys[i], keys[i]);
		ck_assert_uint_eq(c.values[i], 100 + i);
	}
	dnsf_trie_free(&trie);
	/* an empty trie: no call */
	c.count = 0;
	ck_assert(dnsf_trie_build(&trie, NULL, 0));
	dnsf_trie_foreach(&trie, collect, &c);
	ck_assert_uint_eq(c.count, 0);
	dnsf_trie_free(&trie);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("trie");
	TCase *tc = tcase_create("trie");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_walk_reports_every_stored_prefix);
	tcase_add_test(tc, test_compressed_path_needs_every_byte);
	tcase_add_test(tc, test_unsorted_or_duplicate_input_is_refused);
	tcase_add_test(tc, test_bytes_outside_the_alphabet);
	tcase_add_test(tc, test_empty_trie_finds_nothing);
	tcase_add_test(tc, test_random_keys_match_a_linear_scan);
	tcase_add_test(tc, test_foreach_yields_every_key_in_order);
	suite_add_tcase(suite, tc);
	return run_suite(suite);
}
