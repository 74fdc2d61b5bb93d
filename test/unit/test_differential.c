/*
 * Differential test: random feeds of over 100k names with wildcards, allows,
 * time windows and both actions; the index's decision for random queries
 * must equal that of a naive oracle that checks every suffix of the query
 * against sorted name lists with a rule written out plainly.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsfilter/feed.h"
#include "unit.h"

enum { ENTRIES = 25000, NAMES_PER_ENTRY = 5, ALLOWS = 2000, QUERIES = 200000 };

static const char *const labels[] = { "a", "b", "c", "d", "e", "f", "g",  "h",  "i",
				      "j", "k", "m", "n", "p", "q", "r",  "s",  "t",
				      "u", "v", "w", "x", "y", "z", "c2", "x-y" };
#define LABELS (sizeof(labels) / sizeof(labels[0]))
static const char *const tlds[] = { "com", "net", "test" };

static const int64_t starts[] = { 100, 200, 300, 400 };
static const int64_t ends[] = { 250, 350, 1000, INT64_MAX };

struct oracle_name {
	char name[64];
	int wildcard; /* 1 for "*.name" */
	int allow;
	int entry; /* -1 for allow */
};

struct oracle_entry {
	int64_t start, end;
	int monitor;
};

static struct oracle_name *names;
static size_t name_count;
static struct oracle_entry entries[ENTRIES];

static void random_name(char *out, int min_labels, int max_labels)
{
	int count = min_labels + rand() % (max_labels - min_labels + 1);
	out[0] = 0;
	for (int i = 0; i < count; i++) {
		strcat(out, labels[rand() % LABELS]);
		strcat(out, ".");
	}
	strcat(out, tlds[rand() % 3]);
}

static int compare_oracle_names(const void *x, const void *y)
{
	return strcmp(((const struct oracle_name *)x)->name, ((const struct oracle_name *)y)->name);
}

/* Oracle: the verdict and entry for one query name at one time. */
static enum dnsf_verdict oracle_decide(const char *query, int64_t now, int *entry_out)
{
	const char *suffixes[16];
	size_t suffix_count = 0;
	/* every suffix on a label boundary, longest (the name) first */
	for (const char *p = query; p; p = strchr(p, '.') ? strchr(p, '.') + 1 : NULL)
		suffixes[suffix_count++] = p;
	*entry_out = -1;
	for (size_t s = 0; s < suffix_count; s++) {
		struct oracle_name probe;
		strcpy(probe.name, suffixes[s]);
		struct oracle_name *hit =
		    bsearch(&probe, names, name_count, sizeof(*names), compare_oracle_names);
		if (!hit)
			continue;
		while (hit > names && strcmp(hit[-1].name, probe.name) == 0)
			hit--;
		for (; hit < names + name_count && strcmp(hit->name, probe.name) == 0; hit++)
			if (hit->allow && hit->wildcard == (s > 0))
				return DNSF_VERDICT_ALLOW;
	}
	for (size_t s = 0; s < suffix_count; s++) {
		struct oracle_name probe;
		int best = -1;
		strcpy(probe.name, suffixes[s]);
		struct oracle_name *hit =
		    bsearch(&probe, names, name_count, sizeof(*names), compare_oracle_names);
		if (!hit)
			continue;
		while (hit > names && strcmp(hit[-1].name, probe.name) == 0)
			hit--;
		for (; hit < names + name_count && strcmp(hit->name, probe.name) == 0; hit++) {
			if (hit->allow || hit->wildcard != (s > 0))
				continue;
			const struct oracle_entry *e = &entries[hit->entry];
			if (!(e->start <= now && now < e->end))
				continue;
			if (best < 0)
				best = hit->entry;
			else {
				const struct oracle_entry *b = &entries[best];
				if (e->monitor < b->monitor ||
				    (e->monitor == b->monitor && e->start < b->start) ||
				    (e->monitor == b->monitor && e->start == b->start &&
				     hit->entry < best))
					best = hit->entry;
			}
		}
		if (best >= 0) {
			*entry_out = best;
			return entries[best].monitor ? DNSF_VERDICT_MONITOR : DNSF_VERDICT_BLOCK;
		}
	}
	return DNSF_VERDICT_NONE;
}

static void append(char **buffer, size_t *length, size_t *capacity, const char *text)
{
	size_t n = strlen(text);
	if (*length + n + 1 > *capacity) {
		*capacity = (*length + n + 1) * 2;
		*buffer = realloc(*buffer, *capacity);
		ck_assert_ptr_nonnull(*buffer);
	}
	memcpy(*buffer + *length, text, n + 1);
	*length += n;
}

static void time_text(int64_t t, char *out)
{
	/* small epoch seconds as RFC 3339 */
	snprintf(out, 40, "1970-01-01T00:%02d:%02dZ", (int)(t / 60), (int)(t % 60));
}

static void run_round(unsigned seed)
{
	char *feed = NULL, line[256], name[64], start[40], end[40];
	size_t length = 0, capacity = 0;
	struct dnsf_errors errors = { 0 };
	const char *why;

	srand(seed);
	names = calloc(ENTRIES * NAMES_PER_ENTRY + ALLOWS, sizeof(*names));
	name_count = 0;
	append(&feed, &length, &capacity, "{\"format\":\"dnsfilter-feed/1\",\"entries\":[");
	for (int e = 0; e < ENTRIES; e++) {
		entries[e].start = starts[rand() % 4];
		entries[e].end = ends[rand() % 4];
		if (entries[e].end < entries[e].start)
			entries[e].end = INT64_MAX;
		entries[e].monitor = rand() % 4 == 0;
		time_text(entries[e].start, start);
		if (entries[e].end == INT64_MAX)
			strcpy(end, "null");
		else {
			end[0] = '"';
			time_text(entries[e].end, end + 1);
			strcat(end, "\"");
		}
		snprintf(line, sizeof(line),
			 "%s{\"id\":\"E%d\",\"force\":true,\"start\":\"%s\","
			 "\"end\":%s,\"action\":\"%s\",\"fqdns\":[",
			 e ? "," : "", e, start, end, entries[e].monitor ? "monitor" : "block");
		append(&feed, &length, &capacity, line);
		for (int n = 0; n < NAMES_PER_ENTRY; n++) {
			struct oracle_name *o = &names[name_count++];
			random_name(name, 1, 3);
			o->wildcard = rand() % 5 == 0;
			o->entry = e;
			strcpy(o->name, name);
			snprintf(line, sizeof(line), "%s\"%s%s\"", n ? "," : "",
				 o->wildcard ? "*." : "", name);
			append(&feed, &length, &capacity, line);
		}
		append(&feed, &length, &capacity, "]}");
	}
	append(&feed, &length, &capacity, "],\"allow\":[");
	for (int a = 0; a < ALLOWS; a++) {
		struct oracle_name *o = &names[name_count++];
		random_name(name, 1, 3);
		o->wildcard = rand() % 3 == 0;
		o->allow = 1;
		o->entry = -1;
		strcpy(o->name, name);
		snprintf(line, sizeof(line), "%s\"%s%s\"", a ? "," : "", o->wildcard ? "*." : "",
			 name);
		append(&feed, &length, &capacity, line);
	}
	append(&feed, &length, &capacity, "]}");

	struct dnsf_index *index = dnsf_index_from_buffer(feed, length, NULL, &errors);
	ck_assert_msg(index != NULL, "feed refused: %s",
		      errors.count_kept ? errors.messages[0] : "?");
	ck_assert_msg(dnsf_index_check(index, &why), "invariant: %s", why);
	qsort(names, name_count, sizeof(*names), compare_oracle_names);

	size_t verdicts[4] = { 0 };
	for (int q = 0; q < QUERIES; q++) {
		struct dnsf_decision decision;
		int64_t now = rand() % 1200;
		int expected_entry;
		random_name(name, 1, 5);
		struct dnsf_key key = key_of_text(name);
		dnsf_index_decide(index, &key, now, &decision);
		enum dnsf_verdict expected = oracle_decide(name, now, &expected_entry);
		ck_assert_msg(decision.verdict == expected, "%s at %lld: index %s, oracle %s", name,
			      (long long)now, dnsf_verdict_name(decision.verdict),
			      dnsf_verdict_name(expected));
		if (expected_entry >= 0)
			ck_assert_msg(decision.entry.id &&
					  decision.entry.position == (uint32_t)expected_entry,
				      "%s at %lld: index entry %s, oracle E%d", name,
				      (long long)now, decision.entry.id ? decision.entry.id : "-",
				      expected_entry);
		verdicts[expected]++;
	}
	/* the random data must exercise every verdict */
	for (int v = 0; v < 4; v++)
		ck_assert_msg(verdicts[v] > 100, "verdict %s seen only %zu times",
			      dnsf_verdict_name(v), verdicts[v]);
	dnsf_index_free(index);
	free(names);
	free(feed);
}

START_TEST(test_index_agrees_with_oracle)
{
	run_round(1 + (unsigned)_i);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("differential");
	TCase *tc = tcase_create("differential");
	tcase_set_timeout(tc, 600);
	tcase_add_loop_test(tc, test_index_agrees_with_oracle, 0, 3);
	suite_add_tcase(suite, tc);
	return run_suite(suite);
}
