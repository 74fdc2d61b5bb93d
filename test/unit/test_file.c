/* Reading a whole file: the bytes, and one error of the right kind that
 * names the file and says what is wrong; the feed, the settings and the
 * opt-out file all read that way. The array growth helper. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dnsfilter/array.h"
#include "dnsfilter/cidr.h"
#include "dnsfilter/feed.h"
#include "dnsfilter/file.h"
#include "dnsfilter/settings.h"
#include "unit.h"

static void assert_one_error(struct dnsf_errors *errors, enum dnsf_error_kind kind,
			     const char *message)
{
	ck_assert_uint_eq(errors->count, 1);
	ck_assert_int_eq(errors->kinds[0], kind);
	ck_assert_uint_eq(dnsf_errors_count_kind(errors, kind), 1);
	ck_assert_str_eq(errors->messages[0], message);
	dnsf_errors_clear(errors);
}

START_TEST(test_reads_the_whole_file_nul_terminated)
{
	char path[] = "/tmp/test_file_XXXXXX";
	const char bytes[] = "a\0b\nc";
	struct dnsf_errors errors = { 0 };
	char *text;
	size_t length;

	make_file(path, bytes, sizeof(bytes) - 1);
	ck_assert(dnsf_file_read(path, 5, path, &text, &length, &errors));
	ck_assert_uint_eq(length, 5);
	ck_assert_mem_eq(text, bytes, 5);
	ck_assert_int_eq(text[5], 0);
	ck_assert_uint_eq(errors.count, 0);
	free(text);
	unlink(path);
}
END_TEST

START_TEST(test_an_empty_file_is_empty_text)
{
	char path[] = "/tmp/test_file_XXXXXX";
	struct dnsf_errors errors = { 0 };
	char *text;
	size_t length = 99;

	make_file(path, "", 0);
	ck_assert(dnsf_file_read(path, 0, path, &text, &length, &errors));
	ck_assert_uint_eq(length, 0);
	ck_assert_str_eq(text, "");
	free(text);
	unlink(path);
}
END_TEST

START_TEST(test_missing_file_is_an_io_error_naming_it)
{
	struct dnsf_errors errors = { 0 };
	char *text = (char *)1;
	size_t length = 99;

	ck_assert(!dnsf_file_read("/nonexistent/feed.json", 100, "/nonexistent/feed.json", &text,
				  &length, &errors));
	ck_assert_ptr_null(text);
	ck_assert_uint_eq(length, 0);
	assert_one_error(&errors, DNSF_ERROR_IO,
			 "/nonexistent/feed.json: cannot open: No such file or directory");
	/* without a name the message starts with what is wrong, for callers
	 * that print the path before it */
	ck_assert(!dnsf_file_read("/nonexistent/feed.json", 100, NULL, &text, &length, &errors));
	assert_one_error(&errors, DNSF_ERROR_IO, "cannot open: No such file or directory");
}
END_TEST

START_TEST(test_a_directory_or_fifo_is_not_a_regular_file)
{
	char directory[] = "/tmp/test_file_XXXXXX";
	char fifo[sizeof(directory) + 8];
	struct dnsf_errors errors = { 0 };
	char *text;
	size_t length;

	ck_assert_ptr_nonnull(mkdtemp(directory));
	ck_assert(!dnsf_file_read(directory, 100, "settings", &text, &length, &errors));
	assert_one_error(&errors, DNSF_ERROR_IO, "settings: not a regular file (a directory)");
	/* a FIFO without a writer: refused at once, not waited on */
	snprintf(fifo, sizeof(fifo), "%s/fifo", directory);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	ck_assert(!dnsf_file_read(fifo, 100, "f", &text, &length, &errors));
	assert_one_error(&errors, DNSF_ERROR_IO, "f: not a regular file (a FIFO)");
	unlink(fifo);
	rmdir(directory);
}
END_TEST

START_TEST(test_a_file_over_the_limit_is_refused_before_reading)
{
	char path[] = "/tmp/test_file_XXXXXX";
	struct dnsf_errors errors = { 0 };
	char *text;
	size_t length;

	make_file(path, "0123456789", 10);
	ck_assert(dnsf_file_read(path, 10, "x", &text, &length, &errors));
	free(text);
	ck_assert(!dnsf_file_read(path, 9, "x", &text, &length, &errors));
	ck_assert_ptr_null(text);
	assert_one_error(&errors, DNSF_ERROR_LIMIT, "x: 10 bytes, more than the limit of 9");
	/* a sparse file of 1 GiB costs nothing and is never read */
	ck_assert_int_eq(truncate(path, (off_t)1 << 30), 0);
	ck_assert(!dnsf_file_read(path, 1 << 20, NULL, &text, &length, &errors));
	assert_one_error(&errors, DNSF_ERROR_LIMIT,
			 "1073741824 bytes, more than the limit of 1048576");
	unlink(path);
}
END_TEST

START_TEST(test_an_unreadable_file_is_an_io_error)
{
	char path[] = "/tmp/test_file_XXXXXX";
	struct dnsf_errors errors = { 0 };
	char *text;
	size_t length;

	if (geteuid() == 0)
		return; /* root reads it anyway */
	make_file(path, "x", 1);
	ck_assert_int_eq(chmod(path, 0), 0);
	ck_assert(!dnsf_file_read(path, 10, NULL, &text, &length, &errors));
	assert_one_error(&errors, DNSF_ERROR_IO, "cannot open: Permission denied");
	unlink(path);
}
END_TEST

START_TEST(test_feed_settings_and_optout_file_are_read_the_same_way)
{
	struct dnsf_errors errors = { 0 };
	struct dnsf_settings settings;
	struct dnsf_cidr_builder *builder = dnsf_cidr_builder_new(10);

	/* the feed and the settings: the caller prints the path first */
	ck_assert_ptr_null(dnsf_index_from_file("/tmp", NULL, &errors));
	assert_one_error(&errors, DNSF_ERROR_IO, "not a regular file (a directory)");
	ck_assert(!dnsf_settings_load("/tmp", &settings, &errors));
	assert_one_error(&errors, DNSF_ERROR_IO, "not a regular file (a directory)");
	dnsf_settings_free(&settings);
	/* the opt-out file: the message names it */
	ck_assert(!dnsf_cidr_builder_add_file(builder, "/tmp", &errors));
	assert_one_error(&errors, DNSF_ERROR_IO, "/tmp: not a regular file (a directory)");
	dnsf_cidr_builder_free(builder);
}
END_TEST

START_TEST(test_a_feed_over_its_limit_is_a_limit_error)
{
	char path[] = "/tmp/test_file_XXXXXX";
	struct dnsf_errors errors = { 0 };
	struct dnsf_feed_limits limits;

	make_file(path, "{}", 2);
	dnsf_feed_limits_default(&limits);
	limits.max_bytes = 1;
	ck_assert_ptr_null(dnsf_index_from_file(path, &limits, &errors));
	assert_one_error(&errors, DNSF_ERROR_LIMIT, "2 bytes, more than the limit of 1");
	/* read, but not a feed: invalid */
	ck_assert_ptr_null(dnsf_index_from_file(path, NULL, &errors));
	ck_assert_uint_gt(dnsf_errors_count_kind(&errors, DNSF_ERROR_INVALID), 0);
	ck_assert_uint_eq(dnsf_errors_count_kind(&errors, DNSF_ERROR_IO), 0);
	dnsf_errors_clear(&errors);
	unlink(path);
}
END_TEST

START_TEST(test_array_grows_by_doubling)
{
	int *array = NULL;
	size_t capacity = 0;

	ck_assert(dnsf_array_grow((void **)&array, &capacity, 1, sizeof(*array)));
	ck_assert_uint_eq(capacity, 64);
	array[63] = 7;
	ck_assert(dnsf_array_grow((void **)&array, &capacity, 64, sizeof(*array)));
	ck_assert_uint_eq(capacity, 64);
	ck_assert(dnsf_array_grow((void **)&array, &capacity, 65, sizeof(*array)));
	ck_assert_uint_eq(capacity, 128);
	ck_assert_int_eq(array[63], 7);
	ck_assert(dnsf_array_grow((void **)&array, &capacity, 1000, sizeof(*array)));
	ck_assert_uint_eq(capacity, 1024);
	/* a size that overflows is refused, the array kept */
	ck_assert(!dnsf_array_grow((void **)&array, &capacity, (size_t)-1 / 2, sizeof(*array)));
	ck_assert_uint_eq(capacity, 1024);
	ck_assert_int_eq(array[63], 7);
	free(array);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("file");
	TCase *tc = tcase_create("file");
	tcase_add_test(tc, test_reads_the_whole_file_nul_terminated);
	tcase_add_test(tc, test_an_empty_file_is_empty_text);
	tcase_add_test(tc, test_missing_file_is_an_io_error_naming_it);
	tcase_add_test(tc, test_a_directory_or_fifo_is_not_a_regular_file);
	tcase_add_test(tc, test_a_file_over_the_limit_is_refused_before_reading);
	tcase_add_test(tc, test_an_unreadable_file_is_an_io_error);
	tcase_add_test(tc, test_feed_settings_and_optout_file_are_read_the_same_way);
	tcase_add_test(tc, test_a_feed_over_its_limit_is_a_limit_error);
	tcase_add_test(tc, test_array_grows_by_doubling);
	suite_add_tcase(suite, tc);
	return run_suite(suite);
}
