/*
 * lastgood.c - the last-good copies (see lastgood.h).
 */
#include "dnsfilter/lastgood.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dnsfilter/file.h"

char *dnsf_state_path(const char *state_dir, const char *path, const char *suffix)
{
	const char *base = strrchr(path, '/');
	size_t size;
	char *state;

	base = base ? base + 1 : path;
	size = strlen(state_dir) + strlen(base) + strlen(suffix) + 2;
	state = malloc(size);
	if (state)
		snprintf(state, size, "%s/%s%s", state_dir, base, suffix);
	return state;
}

char *dnsf_last_good_path(const char *state_dir, const char *path)
{
	return dnsf_state_path(state_dir, path, ".last-good");
}

/* Does the copy hold exactly these bytes already? (Saves a write of a
 * large feed at every restart.) */
static int copy_holds(const char *copy, const char *text, size_t length)
{
	struct dnsf_errors ignored = { 0 };
	size_t held_length;
	char *held;
	int same;

	if (!dnsf_file_read(copy, length, NULL, &held, &held_length, &ignored)) {
		dnsf_errors_clear(&ignored);
		return 0;
	}
	same = held_length == length && memcmp(held, text, length) == 0;
	free(held);
	return same;
}

/* The bytes to save, for dnsf_file_replace. */
struct bytes {
	const char *text;
	size_t length;
};

static int write_bytes(int fd, void *context)
{
	const struct bytes *bytes = context;
	return dnsf_file_write_all(fd, bytes->text, bytes->length);
}

int dnsf_last_good_save(const char *copy, const char *text, size_t length,
			struct dnsf_errors *errors)
{
	struct bytes bytes = { text, length };

	if (copy_holds(copy, text, length))
		return 1;
	return dnsf_file_replace(copy, write_bytes, &bytes, errors);
}

/* Read and build one file; 1 with *result set, or 0 with errors. */
static int load_one(const char *path, size_t max_bytes, dnsf_build_fn build, void *context,
		    void **result, char **text, size_t *length, struct dnsf_errors *errors)
{
	*result = NULL;
	if (!dnsf_file_read(path, max_bytes, NULL, text, length, errors))
		return 0;
	*result = build(*text, *length, path, context, errors);
	if (!*result && errors->count == 0)
		dnsf_errors_add_kind(errors, DNSF_ERROR_MEMORY, "out of memory");
	return *result != NULL;
}

int dnsf_last_good_load(const char *path, const char *copy, size_t max_bytes, int use_copy,
			dnsf_build_fn build, void *context, struct dnsf_loaded *loaded)
{
	struct stat info;
	size_t length = 0;
	char *text = NULL;

	memset(loaded, 0, sizeof(*loaded));
	if (load_one(path, max_bytes, build, context, &loaded->result, &text, &length,
		     &loaded->file_errors)) {
		if (copy)
			dnsf_last_good_save(copy, text, length, &loaded->save_errors);
		free(text);
		return 1;
	}
	free(text);
	text = NULL;
	loaded->failed_since =
	    stat(path, &info) == 0 ? (int64_t)info.st_mtime : (int64_t)time(NULL);
	if (!use_copy || !copy)
		return 0;
	if (stat(copy, &info) != 0) {
		dnsf_errors_add_kind(&loaded->copy_errors, DNSF_ERROR_IO, "%s",
				     errno == ENOENT ? "no last-good copy yet" : strerror(errno));
		return 0;
	}
	loaded->copy_saved = (int64_t)info.st_mtime;
	if (load_one(copy, max_bytes, build, context, &loaded->result, &text, &length,
		     &loaded->copy_errors))
		loaded->from_copy = 1;
	free(text);
	return loaded->result != NULL;
}

void dnsf_loaded_clear(struct dnsf_loaded *loaded)
{
	dnsf_errors_clear(&loaded->file_errors);
	dnsf_errors_clear(&loaded->copy_errors);
	dnsf_errors_clear(&loaded->save_errors);
}
