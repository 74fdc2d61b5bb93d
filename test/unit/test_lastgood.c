/* Unit tests: the last-good copies (lastgood.h). */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dnsfilter/lastgood.h"
#include "unit.h"

/* A build that takes text starting with "ok" and refuses anything else. */
static int builds;

static void *build_ok(const char *text, size_t length, const char *name, void *context,
		      struct dnsf_errors *errors)
{
	(void)context;
	builds++;
	if (length < 2 || memcmp(text, "ok", 2) != 0) {
		dnsf_errors_add(errors, "%s: not ok", name);
		return NULL;
	}
	return strndup(text, length);
}

static char directory[64];
static char file[128], copy[128];

static void setup(void)
{
	strcpy(directory, "/tmp/test_lastgood_XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(directory));
	snprintf(file, sizeof(file), "%s/feed.json", directory);
	char *path = dnsf_last_good_path(directory, "/somewhere/else/feed.json");
	ck_assert_ptr_nonnull(path);
	snprintf(copy, sizeof(copy), "%s", path);
	free(path);
	builds = 0;
}

static void teardown(void)
{
	char command[160];
	snprintf(command, sizeof(command), "rm -rf '%s'", directory);
	ck_assert_int_eq(system(command), 0);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

static char *read_text(const char *path)
{
	static char buffer[256];
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	size_t n = fread(buffer, 1, sizeof(buffer) - 1, f);
	buffer[n] = 0;
	fclose(f);
	return buffer;
}

START_TEST(test_copy_path_is_the_base_name_in_the_state_dir)
{
	char *path = dnsf_last_good_path("/var/lib/unbound", "/etc/unbound/feed.json");
	ck_assert_str_eq(path, "/var/lib/unbound/feed.json.last-good");
	free(path);
	path = dnsf_last_good_path(".", "feed.json");
	ck_assert_str_eq(path, "./feed.json.last-good");
	free(path);
}
END_TEST

START_TEST(test_a_good_file_is_loaded_and_saved)
{
	struct dnsf_loaded loaded;
	write_text(file, "ok one");
	ck_assert(dnsf_last_good_load(file, copy, 1000, 1, build_ok, NULL, &loaded));
	ck_assert_str_eq(loaded.result, "ok one");
	ck_assert(!loaded.from_copy);
	ck_assert_int_eq(loaded.failed_since, 0);
	ck_assert_uint_eq(loaded.save_errors.count, 0);
	ck_assert_str_eq(read_text(copy), "ok one");
	struct stat info;
	ck_assert_int_eq(stat(copy, &info), 0);
	ck_assert_int_eq(info.st_mode & 0777, 0600);
	free(loaded.result);
	dnsf_loaded_clear(&loaded);
}
END_TEST

START_TEST(test_a_bad_file_serves_the_copy_and_keeps_it)
{
	struct dnsf_loaded loaded;
	write_text(file, "ok one");
	ck_assert(dnsf_last_good_load(file, copy, 1000, 1, build_ok, NULL, &loaded));
	free(loaded.result);
	dnsf_loaded_clear(&loaded);

	write_text(file, "broken");
	struct timespec times[2] = { { 1700000000, 0 }, { 1700000000, 0 } };
	ck_assert_int_eq(utimensat(AT_FDCWD, file, times, 0), 0);
	ck_assert(dnsf_last_good_load(file, copy, 1000, 1, build_ok, NULL, &loaded));
	ck_assert_str_eq(loaded.result, "ok one");
	ck_assert(loaded.from_copy);
	ck_assert_int_eq(loaded.failed_since, 1700000000);
	ck_assert_int_gt(loaded.copy_saved, 0);
	assert_errors_mention(&loaded.file_errors, "not ok", NULL);
	/* the bad bytes never replace the copy */
	ck_assert_str_eq(read_text(copy), "ok one");
	free(loaded.result);
	dnsf_loaded_clear(&loaded);
}
END_TEST

START_TEST(test_without_use_copy_a_bad_file_is_only_a_failure)
{
	struct dnsf_loaded loaded;
	write_text(copy, "ok old");
	write_text(file, "broken");
	ck_assert(!dnsf_last_good_load(file, copy, 1000, 0, build_ok, NULL, &loaded));
	ck_assert_ptr_null(loaded.result);
	ck_assert(!loaded.from_copy);
	ck_assert_int_gt(loaded.failed_since, 0);
	dnsf_loaded_clear(&loaded);
}
END_TEST

START_TEST(test_missing_file_and_missing_copy_say_both)
{
	struct dnsf_loaded loaded;
	ck_assert(!dnsf_last_good_load(file, copy, 1000, 1, build_ok, NULL, &loaded));
	assert_errors_mention(&loaded.file_errors, "cannot open", NULL);
	assert_errors_mention(&loaded.copy_errors, "no last-good copy yet", NULL);
	ck_assert_int_eq(builds, 0);
	dnsf_loaded_clear(&loaded);
}
END_TEST

START_TEST(test_file_over_the_limit_serves_the_copy)
{
	struct dnsf_loaded loaded;
	write_text(copy, "ok small");
	write_text(file, "ok but far too long for the limit");
	ck_assert(dnsf_last_good_load(file, copy, 10, 1, build_ok, NULL, &loaded));
	ck_assert_str_eq(loaded.result, "ok small");
	ck_assert_uint_eq(dnsf_errors_count_kind(&loaded.file_errors, DNSF_ERROR_LIMIT), 1);
	free(loaded.result);
	dnsf_loaded_clear(&loaded);
}
END_TEST

START_TEST(test_a_bad_copy_is_no_copy)
{
	struct dnsf_loaded loaded;
	write_text(copy, "broken too");
	write_text(file, "broken");
	ck_assert(!dnsf_last_good_load(file, copy, 1000, 1, build_ok, NULL, &loaded));
	assert_errors_mention(&loaded.copy_errors, "not ok", NULL);
	dnsf_loaded_clear(&loaded);
}
END_TEST

START_TEST(test_save_into_a_missing_directory_fails_and_leaves_nothing)
{
	struct dnsf_errors errors = { 0 };
	char missing[160];
	snprintf(missing, sizeof(missing), "%s/no/such.last-good", directory);
	ck_assert(!dnsf_last_good_save(missing, "ok", 2, &errors));
	assert_errors_mention(&errors, "cannot create", NULL);
	dnsf_errors_clear(&errors);
}
END_TEST

START_TEST(test_save_is_skipped_when_the_copy_holds_the_bytes)
{
	struct dnsf_errors errors = { 0 };
	struct stat before, after;
	ck_assert(dnsf_last_good_save(copy, "ok same", 7, &errors));
	ck_assert_int_eq(stat(copy, &before), 0);
	ck_assert(dnsf_last_good_save(copy, "ok same", 7, &errors));
	ck_assert_int_eq(stat(copy, &after), 0);
	/* not rewritten: the same inode (a save renames a new file over it) */
	ck_assert_uint_eq(before.st_ino, after.st_ino);
	ck_assert(dnsf_last_good_save(copy, "ok diff", 7, &errors));
	ck_assert_int_eq(stat(copy, &after), 0);
	ck_assert_uint_ne(before.st_ino, after.st_ino);
	ck_assert_str_eq(read_text(copy), "ok diff");
	ck_assert_uint_eq(errors.count, 0);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("lastgood");
	TCase *tc = tcase_create("lastgood");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_copy_path_is_the_base_name_in_the_state_dir);
	tcase_add_test(tc, test_a_good_file_is_loaded_and_saved);
	tcase_add_test(tc, test_a_bad_file_serves_the_copy_and_keeps_it);
	tcase_add_test(tc, test_without_use_copy_a_bad_file_is_only_a_failure);
	tcase_add_test(tc, test_missing_file_and_missing_copy_say_both);
	tcase_add_test(tc, test_file_over_the_limit_serves_the_copy);
	tcase_add_test(tc, test_a_bad_copy_is_no_copy);
	tcase_add_test(tc, test_save_into_a_missing_directory_fails_and_leaves_nothing);
	tcase_add_test(tc, test_save_is_skipped_when_the_copy_holds_the_bytes);
	suite_add_tcase(suite, tc);
	return run_suite(suite);
}
