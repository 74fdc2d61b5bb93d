/* Deltas between indexes: the names whose decision may have changed. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsfilter/index.h"
#include "unit.h"

#define HEAD "{\"format\":\"dnsfilter-feed/1\",\"serial\":1,\"timezone\":\"+00:00\","

static const int64_t NOW = 1720000000; /* 2024-07-03T09:46:40Z */

static struct dnsf_index *load(const char *text)
{
	struct dnsf_errors errors = { 0 };
	struct dnsf_index *index = dnsf_index_from_buffer(text, strlen(text), NULL, &errors);
	char *all = dnsf_errors_join(&errors, " | ");
	ck_assert_msg(index != NULL, "feed refused: %s\n%s", all, text);
	free(all);
	dnsf_errors_clear(&errors);
	return index;
}

static int covers(const struct dnsf_delta *delta, const char *name)
{
	struct dnsf_key key = key_of_text(name);
	return dnsf_delta_covers(delta, &key);
}

static enum dnsf_verdict verdict(const struct dnsf_index *index, const char *name, int64_t now)
{
	struct dnsf_key key = key_of_text(name);
	struct dnsf_decision decision;
	dnsf_index_decide(index, &key, now, &decision);
	return decision.verdict;
}

static int acts(const struct dnsf_index *index, const char *name, int64_t now)
{
	enum dnsf_verdict v = verdict(index, name, now);
	return v == DNSF_VERDICT_BLOCK || v == DNSF_VERDICT_MONITOR;
}

#define ENTRY(id, name, start)                                                                     \
	"{\"id\":\"" id "\",\"fqdns\":[\"" name "\"],\"start\":\"" start "\"}"

START_TEST(test_same_rules_make_an_empty_delta)
{
	/* the same rules in another feed order, with other ids: nothing to do */
	struct dnsf_index *old =
	    load(HEAD "\"entries\":[" ENTRY("A", "a.example.com", "2024-01-01") "," ENTRY(
		"W", "*.evil.net", "2024-01-01") "],"
						 "\"allow\":[\"ok.evil.net\"]}");
	struct dnsf_index *new =
	    load(HEAD "\"entries\":[" ENTRY("W2", "*.evil.net", "2024-01-01") "," ENTRY(
		"A2", "a.example.com", "2024-01-01") "],"
						     "\"allow\":[\"ok.evil.net\"]}");
	struct dnsf_delta *delta = dnsf_index_delta(old, new);

	ck_assert_ptr_nonnull(delta);
	ck_assert_uint_eq(dnsf_delta_count(delta), 0);
	ck_assert(!covers(delta, "a.example.com"));
	ck_assert(!covers(delta, "x.evil.net"));
	dnsf_delta_free(delta);
	dnsf_index_free(old);
	dnsf_index_free(new);
}
END_TEST

START_TEST(test_changed_names_and_what_is_below_them)
{
	struct dnsf_index *old =
	    load(HEAD "\"entries\":[" ENTRY("A", "a.example.com", "2024-01-01") "," ENTRY(
		"B", "b.example.com",
		"2024-01-01") "," ENTRY("W", "*.evil.net",
					"2024-01-01") "],"
						      "\"allow\":[\"ok.bad.org\"]}");
	/* c added, b's window moved, a wildcard added, an allow dropped */
	struct dnsf_index *new =
	    load(HEAD "\"entries\":[" ENTRY("A", "a.example.com", "2024-01-01") "," ENTRY(
		"B", "b.example.com",
		"2024-02-01") "," ENTRY("C", "c.example.com",
					"2024-01-01") "," ENTRY("W", "*.evil.net",
								"2024-01-01") "," ENTRY("V",
											"*.bad.org",
											"2024-01-"
											"01") "]}");
	struct dnsf_delta *delta = dnsf_index_delta(old, new);

	ck_assert_ptr_nonnull(delta);
	ck_assert_uint_eq(dnsf_delta_count(delta), 4);
	ck_assert(covers(delta, "c.example.com"));
	ck_assert(covers(delta, "b.example.com"));
	ck_assert(covers(delta, "deep.below.b.example.com"));
	ck_assert(covers(delta, "x.bad.org"));
	ck_assert(covers(delta, "ok.bad.org"));
	ck_assert(!covers(delta, "a.example.com"));
	ck_assert(!covers(delta, "example.com"));
	ck_assert(!covers(delta, "x.evil.net"));
	ck_assert(!covers(delta, "ac.example.com"));
	ck_assert(!covers(delta, "cc.example.com"));
	dnsf_delta_free(delta);
	/* without an old index every listed name is new */
	delta = dnsf_index_delta(NULL, new);
	ck_assert_ptr_nonnull(delta);
	ck_assert_uint_eq(dnsf_delta_count(delta), 5);
	ck_assert(covers(delta, "a.example.com"));
	ck_assert(covers(delta, "x.evil.net"));
	ck_assert(!covers(delta, "example.com"));
	dnsf_delta_free(delta);
	dnsf_index_free(old);
	dnsf_index_free(new);
}
END_TEST

START_TEST(test_starts_name_the_entries_that_started)
{
	struct dnsf_index *index =
	    load(HEAD "\"entries\":[" ENTRY("A", "a.example.com", "2024-01-01") "," ENTRY(
		"L", "*.later.example.com", "2024-07-03T10:00:00Z") "]}");
	int64_t ten = NOW + 200 * 60 / 10; /* 2024-07-03T10:06:40Z */
	struct dnsf_delta *delta = dnsf_index_starts(index, NOW, ten);

	ck_assert_ptr_nonnull(delta);
	ck_assert_uint_eq(dnsf_delta_count(delta), 1);
	ck_assert(covers(delta, "x.later.example.com"));
	ck_assert(!covers(delta, "a.example.com"));
	dnsf_delta_free(delta);
	/* the bounds: after excluded, until included */
	delta = dnsf_index_starts(index, 1720000800, ten);
	ck_assert_uint_eq(dnsf_delta_count(delta), 0);
	dnsf_delta_free(delta);
	delta = dnsf_index_starts(index, NOW, 1720000800);
	ck_assert_uint_eq(dnsf_delta_count(delta), 1);
	dnsf_delta_free(delta);
	dnsf_index_free(index);
}
END_TEST

/* Random feeds over a small tree of names: whenever the new index acts on
 * a name (block, monitor) and the old did not (or, for starts, an index
 * acts on it at a time and did not at the time before), the delta covers
 * the name. A name the new index stops acting on need not be covered: no
 * answer of it can be in the cache. */
static const char *const labels[] = { "a", "b", "c" };
static const char *const starts[] = { "2024-01-01", "2024-07-03T09:00:00Z", "2024-07-03T10:00:00Z",
				      "2024-08-01" };
static const char *const ends[] = { "", "2024-07-03T09:30:00Z", "2024-07-03T11:00:00Z" };
static const int64_t times[] = { 1719997200 - 1, 1719997200, 1719999000, NOW,
				 1720000800,     1720004400, 1722470400 };

static void random_name(char *name, size_t size)
{
	int depth = 1 + rand() % 3;
	name[0] = 0;
	for (int i = 0; i < depth; i++) {
		strncat(name, labels[rand() % 3], size - strlen(name) - 1);
		strncat(name, ".", size - strlen(name) - 1);
	}
	strncat(name, "t.test", size - strlen(name) - 1);
}

static void random_feed(char *text, size_t size)
{
	int entries = 1 + rand() % 8, allows = rand() % 3;
	size_t n = (size_t)snprintf(text, size, HEAD "\"entries\":[");
	for (int i = 0; i < entries; i++) {
		char name[64];
		random_name(name, sizeof(name));
		int start = rand() % 4, end = rand() % 3;
		/* an end after the start, or none */
		if (start == 3 || (start == 2 && end == 1))
			end = 0;
		n += (size_t)snprintf(
		    text + n, size - n,
		    "%s{\"id\":\"E%d\",\"fqdns\":[\"%s%s\"],\"start\":\"%s\"%s%s%s%s}",
		    i ? "," : "", i, rand() % 2 ? "*." : "", name, starts[start],
		    end ? ",\"end\":\"" : "", ends[end], end ? "\"" : "",
		    rand() % 3 ? "" : ",\"action\":\"monitor\"");
	}
	n += (size_t)snprintf(text + n, size - n, "],\"allow\":[");
	for (int i = 0; i < allows; i++) {
		char name[64];
		random_name(name, sizeof(name));
		n += (size_t)snprintf(text + n, size - n, "%s\"%s%s\"", i ? "," : "",
				      rand() % 2 ? "*." : "", name);
	}
	snprintf(text + n, size - n, "]}");
}

START_TEST(test_random_feeds_every_changed_verdict_is_covered)
{
	char old_text[4096], new_text[4096], name[64];
	srand(11);
	for (int round = 0; round < 400; round++) {
		random_feed(old_text, sizeof(old_text));
		/* half the rounds: the same feed with one change, else another feed */
		if (round % 2) {
			random_feed(new_text, sizeof(new_text));
		} else {
			strcpy(new_text, old_text);
			char *e = strstr(new_text, "\"E0\"");
			if (e)
				e[2] = 'X'; /* another id: no change at all */
		}
		struct dnsf_index *old = load(old_text), *new = load(new_text);
		struct dnsf_delta *delta = dnsf_index_delta(old, new);
		ck_assert_ptr_nonnull(delta);
		if (round % 2 == 0)
			ck_assert_uint_eq(dnsf_delta_count(delta), 0);
		for (int q = 0; q < 60; q++) {
			random_name(name, sizeof(name));
			if (rand() % 4 == 0) { /* below the deepest listed names too */
				memmove(name + 2, name, strlen(name) + 1);
				memcpy(name, "z.", 2);
			}
			for (size_t t = 0; t < sizeof(times) / sizeof(times[0]); t++)
				if (acts(new, name, times[t]) && !acts(old, name, times[t]))
					ck_assert_msg(covers(delta, name),
						      "%s acts at %lld, not before, but is not "
						      "covered\nold %s\nnew %s",
						      name, (long long)times[t], old_text,
						      new_text);
			for (size_t t = 1; t < sizeof(times) / sizeof(times[0]); t++) {
				if (acts(new, name, times[t]) && !acts(new, name, times[t - 1])) {
					struct dnsf_delta *started =
					    dnsf_index_starts(new, times[t - 1], times[t]);
					ck_assert_msg(covers(started, name),
						      "%s acts from %lld on but is not covered\n%s",
						      name, (long long)times[t], new_text);
					dnsf_delta_free(started);
				}
			}
		}
		dnsf_delta_free(delta);
		dnsf_index_free(old);
		dnsf_index_free(new);
	}
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("delta");
	TCase *tc = tcase_create("delta");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_same_rules_make_an_empty_delta);
	tcase_add_test(tc, test_changed_names_and_what_is_below_them);
	tcase_add_test(tc, test_starts_name_the_entries_that_started);
	tcase_add_test(tc, test_random_feeds_every_changed_verdict_is_covered);
	suite_add_tcase(suite, tc);
	return run_suite(suite);
}
