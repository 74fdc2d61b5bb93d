/*
 * loader.c - loading the feed and the opt-out networks named in the
 * settings, with every error in Unbound's log, keeping their last-good
 * copies and serving from them at init when a file cannot be used
 * (lastgood.h); the version of a file (a rename or a rewrite changes it);
 * giving memory back after a load.
 */
#include "config.h"

#include "util/log.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dnsfilter/lastgood.h"
#include "dnsfilter/optout.h"
#include "glue.h"

void dnsfilter_log_errors(const char *what, const struct dnsf_errors *errors)
{
	char name[DNSFILTER_LOGGED_SIZE];

	/* the messages escape what they quote already (error.h) */
	dnsfilter_logged(what, name);
	for (size_t i = 0; i < errors->count_kept; i++)
		log_err("dnsfilter: %s: %s", name, errors->messages[i]);
	if (errors->count > errors->count_kept)
		log_err("dnsfilter: %s: and %zu more errors", name,
			errors->count - errors->count_kept);
}

void file_version_read(const char *path, struct file_version *version)
{
	struct stat info;

	memset(version, 0, sizeof(*version));
	if (stat(path, &info) != 0)
		return;
	version->exists = 1;
	version->device = info.st_dev;
	version->inode = info.st_ino;
	version->size = info.st_size;
	version->modified = info.st_mtim;
	version->changed = info.st_ctim;
}

int file_version_same(const struct file_version *a, const struct file_version *b)
{
	return a->exists == b->exists && a->device == b->device && a->inode == b->inode &&
	       a->size == b->size && a->modified.tv_sec == b->modified.tv_sec &&
	       a->modified.tv_nsec == b->modified.tv_nsec &&
	       a->changed.tv_sec == b->changed.tv_sec && a->changed.tv_nsec == b->changed.tv_nsec;
}

static void set_stale(struct dnsfilter *filter, enum dnsf_stale_file file, int64_t since)
{
	filter->stale_since[file] = since;
	dnsf_reporter_set_stale(filter->reporter, file, since);
}

static void rfc3339(int64_t seconds, char *text, size_t size)
{
	time_t clock = (time_t)seconds;
	struct tm tm;

	if (!gmtime_r(&clock, &tm) || strftime(text, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(text, size, "%lld", (long long)seconds);
}

/*
 * What a load did, in the log and the stale state: a file that failed is
 * logged with every reason; at init its copy serves (or nothing does); on
 * the watcher the data in force stays. Stale since: when the file became
 * unusable, kept from the first failure until a load succeeds.
 */
static void report_load(struct dnsfilter *filter, enum dnsf_stale_file file, const char *path,
			const char *copy, const char *what, struct dnsf_loaded *loaded)
{
	/* the opt-out parser's messages name the file and line already */
	const char *prefix = file == DNSF_STALE_FEED ? path : "opt-out";
	char saved[40], path_buffer[DNSFILTER_LOGGED_SIZE], copy_buffer[DNSFILTER_LOGGED_SIZE];
	const char *logged_copy = copy ? dnsfilter_logged(copy, copy_buffer) : "";

	path = dnsfilter_logged(path, path_buffer);

	dnsfilter_log_errors(prefix, &loaded->save_errors);
	if (loaded->save_errors.count)
		log_err("dnsfilter: %s: cannot keep the last-good copy; a later start with a bad "
			"%s would fail",
			path, what);
	if (loaded->result && !loaded->from_copy) {
		if (filter->stale_since[file])
			log_info("dnsfilter: %s: loaded; the %s in force is current again", path,
				 what);
		set_stale(filter, file, 0);
		return;
	}
	dnsfilter_log_errors(prefix, &loaded->file_errors);
	log_err("dnsfilter: %s: %s rejected (%zu error%s)", path, what, loaded->file_errors.count,
		loaded->file_errors.count == 1 ? "" : "s");
	if (!filter->stale_since[file])
		set_stale(filter, file, loaded->failed_since);
	if (loaded->from_copy) {
		rfc3339(loaded->copy_saved, saved, sizeof(saved));
		log_err("dnsfilter: %s: serving the last-good %s %s (saved %s): STALE until %s "
			"is fixed",
			path, what, logged_copy, saved, path);
	} else if (copy && loaded->copy_errors.count) {
		dnsfilter_log_errors(copy, &loaded->copy_errors);
	}
}

/* What building an index from a feed's bytes needs and tells. */
struct index_build {
	const struct dnsf_feed_limits *limits;
	/* the image to map when it was built from these bytes, and to write
	 * when it was not */
	const char *image;
};

/* Does a mapped index keep the limits (they may have been lowered since
 * its image was written)? */
static int within_limits(const struct dnsf_index *index, const struct dnsf_feed_limits *limits)
{
	struct dnsf_index_info info;

	dnsf_index_info(index, &info);
	return info.entry_count <= limits->max_entries &&
	       info.exact_count + info.wildcard_count + info.allow_count <= limits->max_names;
}

/* The index of a feed's bytes: mapped from its image when the image was
 * built from the same bytes (content hash), else parsed, and the image
 * written for the next load. */
static void *build_index(const char *text, size_t length, const char *name, void *context,
			 struct dnsf_errors *errors)
{
	const struct index_build *build = context;
	char logged[DNSFILTER_LOGGED_SIZE];
	uint8_t hash[DNSF_FEED_HASH_SIZE];
	struct dnsf_errors image_errors = { 0 };
	struct dnsf_index *index;

	(void)name;
	dnsf_feed_hash(text, length, hash);
	index = dnsf_index_from_image(build->image, hash, &image_errors);
	if (index && within_limits(index, build->limits)) {
		verbose(VERB_OPS, "dnsfilter: %s: index mapped from its image (feed unchanged)",
			dnsfilter_logged(build->image, logged));
		dnsf_errors_clear(&image_errors);
		return index;
	}
	dnsf_index_free(index);
	/* missing, or of an older feed: the usual case after a change */
	if (image_errors.count && !dnsf_errors_count_kind(&image_errors, DNSF_ERROR_IO) &&
	    !strstr(image_errors.messages[0], "another feed"))
		dnsfilter_log_errors(build->image, &image_errors);
	dnsf_errors_clear(&image_errors);
	index = dnsf_index_from_buffer(text, length, build->limits, errors);
	if (index && !dnsf_index_write_image(index, hash, build->image, &image_errors)) {
		dnsfilter_log_errors(build->image, &image_errors);
		log_err("dnsfilter: %s: cannot keep the index image; the next load parses the feed "
			"again",
			dnsfilter_logged(build->image, logged));
	}
	dnsf_errors_clear(&image_errors);
	return index;
}

struct dnsf_index *dnsfilter_load_feed(struct dnsfilter *filter, int use_copy)
{
	const struct dnsf_settings *settings = &filter->settings;
	struct dnsf_feed_limits limits;
	struct dnsf_loaded loaded;

	dnsf_settings_feed_limits(settings, &limits);
	struct index_build build = { &limits, filter->feed_image };
	dnsf_last_good_load(settings->feed, filter->feed_copy, limits.max_bytes, use_copy,
			    build_index, &build, &loaded);
	report_load(filter, DNSF_STALE_FEED, settings->feed, filter->feed_copy, "feed", &loaded);
	dnsf_loaded_clear(&loaded);
	return loaded.result;
}

static void *build_optout(const char *text, size_t length, const char *name, void *context,
			  struct dnsf_errors *errors)
{
	struct dnsf_cidr_set *set = NULL;

	dnsf_optout_build_text(context, text, length, name, &set, errors);
	return set;
}

int dnsfilter_load_optout(struct dnsfilter *filter, int use_copy, struct dnsf_cidr_set **set)
{
	const struct dnsf_settings *settings = &filter->settings;
	struct dnsf_errors errors = { 0 };
	struct dnsf_loaded loaded;
	int ok;

	if (!settings->optout_file) {
		/* the settings' networks alone: invalid ones are the settings' fault */
		ok = dnsf_optout_build(settings, set, &errors);
		if (!ok) {
			dnsfilter_log_errors("optout", &errors);
			log_err("dnsfilter: opt-out networks rejected (%zu error%s)", errors.count,
				errors.count == 1 ? "" : "s");
		}
		dnsf_errors_clear(&errors);
		return ok;
	}
	dnsf_last_good_load(settings->optout_file, filter->optout_copy, DNSF_CIDR_FILE_MAX_BYTES,
			    use_copy, build_optout, (void *)settings, &loaded);
	report_load(filter, DNSF_STALE_OPTOUT, settings->optout_file, filter->optout_copy,
		    "opt-out set", &loaded);
	dnsf_loaded_clear(&loaded);
	*set = loaded.result;
	return *set != NULL;
}

/* Give freed memory back to the system: a feed's build frees tens of
 * megabytes that malloc would otherwise keep, and RSS would grow with
 * every refresh. */
void dnsfilter_trim_memory(void)
{
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}
