/*
 * unit.h - what the unit test suites share: running a suite as a test
 * program, and helpers more than one suite needs. Static inline, so a suite
 * that does not use one gets no warning, and each suite stays one file.
 */
#ifndef DNSFILTER_TEST_UNIT_H
#define DNSFILTER_TEST_UNIT_H

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dnsfilter/error.h"
#include "dnsfilter/name.h"

/* Run the suite: exit status 0 when every test passed, 1 otherwise. */
static inline int run_suite(Suite *suite)
{
	SRunner *runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed ? 1 : 0;
}

/* ---- errors ---- */

/* Some kept message contains part1 and part2 (part2 may be NULL). */
static inline int errors_mention(const struct dnsf_errors *errors, const char *part1,
				 const char *part2)
{
	for (size_t i = 0; i < errors->count_kept; i++)
		if (strstr(errors->messages[i], part1) &&
		    (!part2 || strstr(errors->messages[i], part2)))
			return 1;
	return 0;
}

/* As errors_mention, failing the test with every message when not. */
static inline void assert_errors_mention(const struct dnsf_errors *errors, const char *part1,
					 const char *part2)
{
	char *all = dnsf_errors_join(errors, " | ");
	ck_assert_msg(errors_mention(errors, part1, part2),
		      "no message with \"%s\" and \"%s\" in: %s", part1, part2 ? part2 : "", all);
	free(all);
}

/* ---- names ---- */

/* The key of a name in presentation format (escapes allowed), as a query
 * for it would be looked up. */
static inline struct dnsf_key key_of_text(const char *text)
{
	uint8_t wire[DNSF_WIRE_MAX];
	size_t length;
	struct dnsf_key key;
	ck_assert_msg(dnsf_wire_from_text(text, wire, &length), "parse %s", text);
	ck_assert_msg(dnsf_key_from_wire(wire, length, &key), "key %s", text);
	return key;
}

/* ---- files and time ---- */

/* Make a file from a mkstemp template (path is changed to its name) with
 * the given bytes. */
static inline void make_file(char *path, const char *bytes, size_t length)
{
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, bytes, length), (ssize_t)length);
	close(fd);
}

/* Remove the files of a flat directory, and the directory itself when
 * remove_it is set. */
static inline void empty_directory_at(const char *directory, int remove_it)
{
	DIR *dir = opendir(directory);
	struct dirent *entry;
	char path[512];
	while (dir && (entry = readdir(dir))) {
		if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", directory, entry->d_name);
		unlink(path);
	}
	if (dir)
		closedir(dir);
	if (remove_it)
		rmdir(directory);
}

static inline int64_t now_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static inline void sleep_ms(int ms)
{
	struct timespec delay = { ms / 1000, (long)(ms % 1000) * 1000000 };
	nanosleep(&delay, NULL);
}

#endif
