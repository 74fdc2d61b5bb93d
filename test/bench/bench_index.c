/*
 * bench_index - what the feed index costs: parse + validate + build time,
 * memory per name (index alone, and peak while loading), and lookup time,
 * for generated feeds of 10k, 100k and 1M names (2-5 labels, 5 % wildcards,
 * 10 names an entry). Not a test: it prints figures and never fails on them.
 *
 * A second table: the index image (index.h, "Images") of each feed: the
 * time to write it and to map it back (page cache warm: a restart with an
 * unchanged feed), its size a name, and the proportional set size (PSS) of
 * the mapping in each of two processes that map the same image, which
 * shows the pages shared between Unbound processes on one host.
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

/* The image figures of one feed size, printed after the first table. */
struct image_row {
	size_t n;
	double write_s, map_s, bytes_per_name, pss_kib[2], rss_kib[2];
};
static struct image_row image_rows[16];
static size_t image_row_count;

/* Pss and Rss (KiB) of the mapping of path in process pid. */
static void mapping_sizes(pid_t pid, const char *path, double *pss, double *rss)
{
	char file[64], line[512];
	int inside = 0;
	snprintf(file, sizeof(file), "/proc/%d/smaps", (int)pid);
	FILE *f = fopen(file, "r");
	*pss = *rss = -1;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long from, to;
		if (sscanf(line, "%lx-%lx ", &from, &to) == 2) /* a mapping's first line */
			inside = strstr(line, path) != NULL;
		if (inside && strncmp(line, "Pss:", 4) == 0)
			*pss = atof(line + 4);
		if (inside && strncmp(line, "Rss:", 4) == 0)
			*rss = atof(line + 4);
	}
	fclose(f);
}

/* Write the feed's image, map it back, and map it in two processes. */
static void bench_image(size_t n, const char *feed_path, const struct dnsf_index *index)
{
	struct image_row *row = &image_rows[image_row_count++];
	struct dnsf_errors errors = { 0 };
	char image[64];
	uint8_t hash[DNSF_FEED_HASH_SIZE] = { 0 };
	int ready[2], release[2];
	pid_t children[2];

	(void)feed_path;
	snprintf(image, sizeof(image), "/tmp/bench_index_%d.index", (int)getpid());
	row->n = n;
	double start = seconds_now();
	if (!dnsf_index_write_image(index, hash, image, &errors)) {
		fprintf(stderr, "cannot write the image: %s\n", errors.messages[0]);
		exit(1);
	}
	row->write_s = seconds_now() - start;
	start = seconds_now();
	struct dnsf_index *mapped = dnsf_index_from_image(image, hash, &errors);
	row->map_s = seconds_now() - start;
	if (!mapped) {
		fprintf(stderr, "image refused: %s\n", errors.messages[0]);
		exit(1);
	}
	struct dnsf_index_info info;
	dnsf_index_info(mapped, &info);
	row->bytes_per_name = (double)(info.memory_bytes) / (double)n;
	dnsf_index_free(mapped);
	if (pipe(ready) != 0 || pipe(release) != 0)
		exit(2);
	for (int c = 0; c < 2; c++) {
		children[c] = fork();
		if (children[c] == 0) {
			struct dnsf_errors child_errors = { 0 };
			/* mapping checks the whole file: every page is touched */
			struct dnsf_index *own = dnsf_index_from_image(image, hash, &child_errors);
			char byte = own ? 1 : 0, wait_byte;
			if (write(ready[1], &byte, 1) != 1 || read(release[0], &wait_byte, 1) != 1)
				_exit(1);
			dnsf_index_free(own);
			_exit(0);
		}
	}
	for (int c = 0; c < 2; c++) {
		char byte = 0;
		if (read(ready[0], &byte, 1) != 1 || !byte)
			exit(1);
	}
	for (int c = 0; c < 2; c++)
		mapping_sizes(children[c], image, &row->pss_kib[c], &row->rss_kib[c]);
	for (int c = 0; c < 2; c++) {
		char byte = 1;
		if (write(release[1], &byte, 1) != 1)
			exit(1);
	}
	for (int c = 0; c < 2; c++)
		waitpid(children[c], NULL, 0);
	close(ready[0]);
	close(ready[1]);
	close(release[0]);
	close(release[1]);
	unlink(image);
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
	bench_image(n, path, index);
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
	printf("\n| names | image write s | image map s (warm) | image B/name | "
	       "mapping Rss, process 1 / 2 (KiB) | mapping Pss, process 1 / 2 (KiB) |\n");
	printf("|---:|---:|---:|---:|---:|---:|\n");
	for (size_t i = 0; i < image_row_count; i++) {
		const struct image_row *row = &image_rows[i];
		printf("| %zu | %.3f | %.3f | %.1f | %.0f / %.0f | %.0f / %.0f |\n", row->n,
		       row->write_s, row->map_s, row->bytes_per_name, row->rss_kib[0],
		       row->rss_kib[1], row->pss_kib[0], row->pss_kib[1]);
	}
	return 0;
}
