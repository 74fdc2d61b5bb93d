/*
 * loader.c - loading the feed and the opt-out networks named in the
 * settings, with every error in Unbound's log; the version of a file (a
 * rename or a rewrite changes it); giving memory back after a load.
 */
#include "config.h"

#include "util/log.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "dnsfilter/optout.h"
#include "glue.h"

void dnsfilter_log_errors(const char *what, const struct dnsf_errors *errors)
{
	for (size_t i = 0; i < errors->count_kept; i++)
		log_err("dnsfilter: %s: %s", what, errors->messages[i]);
	if (errors->count > errors->count_kept)
		log_err("dnsfilter: %s: and %zu more errors", what,
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

struct dnsf_index *dnsfilter_load_feed(const struct dnsf_settings *settings)
{
	struct dnsf_feed_limits limits = {
		.max_bytes = settings->feed_max_bytes,
		.max_entries = settings->feed_max_entries,
		.max_names = settings->feed_max_names,
	};
	struct dnsf_errors errors = { 0 };
	struct dnsf_index *index = dnsf_index_from_file(settings->feed, &limits, &errors);

	if (!index) {
		dnsfilter_log_errors(settings->feed, &errors);
		log_err("dnsfilter: %s: feed rejected (%zu error%s)", settings->feed, errors.count,
			errors.count == 1 ? "" : "s");
	}
	dnsf_errors_clear(&errors);
	return index;
}

int dnsfilter_load_optout(const struct dnsf_settings *settings, struct dnsf_cidr_set **set)
{
	struct dnsf_errors errors = { 0 };
	int ok = dnsf_optout_build(settings, set, &errors);

	if (!ok) {
		dnsfilter_log_errors(settings->optout_file ? settings->optout_file : "optout",
				     &errors);
		log_err("dnsfilter: opt-out networks rejected (%zu error%s)", errors.count,
			errors.count == 1 ? "" : "s");
	}
	dnsf_errors_clear(&errors);
	return ok;
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
