/*
 * bench_index - what the feed index costs: parse + validate + build time,
 * memory per name (index alone, and peak while loading), and lookup time,
 * for generated feeds of 10k, 100k and 1M names (2-5 labels, 5 % wildcards,
 * 10 names an entry). Not a test: it prints figures and never fails on them.
 *
 * usage: bench_index [N ...]      (default: 10000 100000 1000000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpsl.h>

#include "dnsfilter/feed.h"

static const char *const tlds[] = { "com", "net", "org", "jp", "info",  "xyz",
				    "ru",  "cn",  "top", "io", "co.jp", "com.cn" };

static uint64_t rng_state = 42;
static uint32_t rng(void)
{
	rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (uint32_t)(rng_state >> 33);
}

static double seconds_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static const psl_ctx_t *psl;

/* A realistic name: 2-5 labels in all, labels of 3-20 characters; never a
 * public suffix (the feed would refuse it without "force"). */
static void random_name(char *out)
{
again:;
	const char *tld = tlds[rng() % (sizeof(tlds) / sizeof(tlds[0]))];
	int labels = 1 + (int)(rng() % 4) - (strchr(tld, '.') != NULL);
	if (labels < 1)
		labels = 1;
	out[0] = 0;
	for (int i = 0; i < labels; i++) {
		int length = 3 + (int)(rng() % 18);
		char *p = out + strlen(out);
		for (int j = 0; j < length; j++)
			p[j] = "abcdefghijklmnopqrstuvwxyz0123456789"[rng() % (j ? 36 : 26)];
		p[length] = '.';
		p[length + 1] = 0;
	}
	strcat(out, tld);
	if (psl && psl_is_public_suffix2(psl, out, PSL_TYPE_ANY))
		goto again;
}

/* Write a feed of n names to path; the names go to names[]. */
static void write_feed(const char *path, size_t n, char (*names)[128])
{
	FILE *f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(2);
	}
	fprintf(f, "{\"format\":\"dnsfilter-feed/"
		   "1\",\"serial\":1,\"timezone\":\"+09:00\",\"entries\":[\n");
	for (size_t i = 0; i < n; i++) {
		random_name(names[i]);
		if (i % 10 == 0)
			fprintf(f,
				"%s{\"id\":\"BENCH-%zu\",\"behavior\":\"info-theft\","
				"\"start\":\"2024-04-16\",\"end\":null,\"fqdns\":[",
				i ? "]},\n" : "", i / 10);
		fprintf(f, "%s\"%s%s\"", i % 10 ? "," : "", rng() % 20 == 0 ? "*." : "", names[i]);
	}
	fprintf(f, "]}\n]}\n");
	fclose(f);
}

static int compare_doubles(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Load in a child process so its peak RSS is the loader's alone. */
static long peak_rss_kib_of_load(const char *path)
{
	pid_t pid = fork();
	if (pid == 0) {
		struct dnsf_errors errors = { 0 };
		struct dnsf_index *index = dnsf_index_from_file(path, NULL, &errors);
		_exit(index ? 0 : 1);
	}
	int status;
	struct rusage usage;
	wait4(pid, &status, 0, &usage);
	return usage.ru_maxrss;
}

static long baseline_rss_kib(void)
{
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	int status;
	struct rusage usage;
	wait4(pid, &status, 0, &usage);
	return usage.ru_maxrss;
}

static void bench(size_t n)
{
	char path[] = "/tmp/bench_index_XXXXXX";
	char(*names)[128] = malloc(n * sizeof(*names));
	struct dnsf_errors errors = { 0 };
	int fd = mkstemp(path);
	close(fd);
	rng_state = 42;
	write_feed(path, n, names);

	double start = seconds_now();
	struct dnsf_index *index = dnsf_index_from_file(path, NULL, &errors);
	double load = seconds_now() - start;
	if (!index) {
		fprintf(stderr, "feed refused: %s\n", errors.count_kept ? errors.messages[0] : "?");
		exit(1);
	}
	long peak = peak_rss_kib_of_load(path) - baseline_rss_kib();

	/* Lookups: half random names, a quarter listed names, a quarter names
	 * below listed ones; each batch holds one kind, so that the median of
	 * each kind can be told apart too. */
	enum { BATCH = 1000, BATCHES = 2000 };
	/* keys packed one after another, so reading them costs little cache */
	uint8_t *pool = malloc((size_t)BATCH * BATCHES * 64);
	uint32_t *offsets = malloc(((size_t)BATCH * BATCHES + 1) * sizeof(*offsets));
	size_t pool_size = 0;
	double *batch_ns = malloc(BATCHES * sizeof(*batch_ns));
	size_t blocked = 0;
	for (size_t i = 0; i < BATCH * BATCHES; i++) {
		char name[160];
		uint8_t wire[DNSF_WIRE_MAX];
		size_t length;
		size_t kind = (i / BATCH) % 4;
		if (kind == 1)
			strcpy(name, names[rng() % n]);
		else if (kind == 2)
			snprintf(name, sizeof(name), "www.%s", names[rng() % n]);
		else
			random_name(name);
		struct dnsf_key key;
		dnsf_wire_from_text(name, wire, &length);
		dnsf_key_from_wire(wire, length, &key);
		if (key.length > 64)
			key.length = 64; /* keeps the pool bounded; rare */
		offsets[i] = (uint32_t)pool_size;
		memcpy(pool + pool_size, key.bytes, key.length);
		pool_size += key.length;
	}
	offsets[(size_t)BATCH * BATCHES] = (uint32_t)pool_size;
	for (size_t b = 0; b < BATCHES; b++) {
		struct dnsf_decision decision;
		double t0 = seconds_now();
		for (size_t i = 0; i < BATCH; i++) {
			struct dnsf_key key;
			size_t k = b * BATCH + i;
			key.length = offsets[k + 1] - offsets[k];
			memcpy(key.bytes, pool + offsets[k], key.length);
			dnsf_index_decide(index, &key, 1720000000, &decision);
			blocked += decision.verdict == DNSF_VERDICT_BLOCK;
		}
		batch_ns[b] = (seconds_now() - t0) * 1e9 / BATCH;
	}
	/* medians of the listed (kind 1) and random (kinds 0, 3) batches */
	double listed[BATCHES], random_ns[BATCHES];
	size_t listed_count = 0, random_count = 0;
	for (size_t b = 0; b < BATCHES; b++) {
		if (b % 4 == 1)
			listed[listed_count++] = batch_ns[b];
		else if (b % 4 != 2)
			random_ns[random_count++] = batch_ns[b];
	}
	qsort(listed, listed_count, sizeof(double), compare_doubles);
	qsort(random_ns, random_count, sizeof(double), compare_doubles);
	qsort(batch_ns, BATCHES, sizeof(*batch_ns), compare_doubles);

	struct dnsf_index_info info;
	dnsf_index_info(index, &info);
	printf("| %zu | %.3f | %.2f | %.1f | %.1f | %.0f | %.0f | %.0f | %.0f |\n", n, load,
	       load * 1e6 / (double)n, (double)info.memory_bytes / (double)n,
	       (double)peak * 1024.0 / (double)n, batch_ns[BATCHES / 2],
	       batch_ns[BATCHES * 99 / 100], listed[listed_count / 2], random_ns[random_count / 2]);
	(void)blocked;
	fflush(stdout);
	dnsf_index_free(index);
	unlink(path);
	free(pool);
	free(offsets);
	free(batch_ns);
	free(names);
}

int main(int argc, char **argv)
{
	size_t sizes[16] = { 10000, 100000, 1000000 };
	size_t count = 3;
	psl = psl_builtin();
	if (argc > 1) {
		count = 0;
		for (int i = 1; i < argc && count < 16; i++)
			sizes[count++] = strtoul(argv[i], NULL, 10);
	}
	printf("| names | load s | load µs/name | index B/name | peak load B/name | "
	       "lookup median ns | lookup p99 ns | listed median ns | not listed median ns |\n");
	printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	for (size_t i = 0; i < count; i++)
		bench(sizes[i]);
	return 0;
}
