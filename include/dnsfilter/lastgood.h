/*
 * dnsfilter/lastgood.h - the last-good copies of the feed and of the
 * opt-out file.
 *
 * Each time the module loads the configured file, it saves the bytes it
 * validated to <state-dir>/<file name>.last-good (written to a temporary
 * file, synced, renamed into place: a copy is whole or absent). When the
 * configured file later cannot be used at init (missing, unreadable, not
 * a regular file, invalid, over the limits), the module builds from that
 * copy instead, so a bad file never takes the resolver down; it says so in
 * the log, the counter log and the metrics (stale since when).
 */
#ifndef DNSFILTER_LASTGOOD_H
#define DNSFILTER_LASTGOOD_H

#include <stddef.h>
#include <stdint.h>

#include "dnsfilter/error.h"

/**
 * Make something from a file's bytes: an index from a feed, a set from an
 * opt-out file. Returns it, or NULL with the reasons in errors.
 * @param text: the bytes (NUL-terminated after length).
 * @param name: the file they came from, for messages.
 */
typedef void *(*dnsf_build_fn)(const char *text, size_t length, const char *name, void *context,
			       struct dnsf_errors *errors);

/** What dnsf_last_good_load got. */
struct dnsf_loaded {
	/** what build made: from the file, or from the copy; NULL when neither */
	void *result;
	/** 1 when the file failed and result came from the last-good copy */
	int from_copy;
	/** from_copy: when the copy was saved (its mtime, Unix seconds) */
	int64_t copy_saved;
	/** when the file failed: since when it has been unusable (its mtime
	 * when it exists, else now), Unix seconds; 0 when it loaded */
	int64_t failed_since;
	/** why the file failed (empty when it loaded) */
	struct dnsf_errors file_errors;
	/** why the copy could not serve (empty unless it was tried and failed) */
	struct dnsf_errors copy_errors;
	/** why the copy could not be saved after a good load (a warning) */
	struct dnsf_errors save_errors;
};

/**
 * A file the module keeps about a file: <state_dir>/<base name><suffix>.
 * @return malloc'd path, or NULL when out of memory.
 */
char *dnsf_state_path(const char *state_dir, const char *path, const char *suffix);

/** The last-good copy's path for a file: <state_dir>/<base name>.last-good. */
char *dnsf_last_good_path(const char *state_dir, const char *path);

/** The suffix of a feed's index image in the state directory. */
#define DNSF_IMAGE_SUFFIX ".index"

/**
 * Load a file, falling back to its last-good copy.
 * The file is read (at most max_bytes, a regular file only, never blocking)
 * and built; when that works, its bytes are saved as the copy (unless the
 * copy already holds them). When it fails and use_copy is set, the copy is
 * read and built instead.
 * @param path: the configured file.
 * @param copy: the last-good copy's path, or NULL for none.
 * @param use_copy: 1 to fall back to the copy on failure.
 * @param loaded: filled in; free its errors with dnsf_loaded_clear.
 * @return 1 when loaded->result is set.
 */
int dnsf_last_good_load(const char *path, const char *copy, size_t max_bytes, int use_copy,
			dnsf_build_fn build, void *context, struct dnsf_loaded *loaded);

/**
 * Save bytes as a last-good copy: a temporary file beside it, fsync,
 * rename. Skipped when the copy already holds exactly these bytes.
 * @return 1 when the copy holds them, 0 on failure (errors say why).
 */
int dnsf_last_good_save(const char *copy, const char *text, size_t length,
			struct dnsf_errors *errors);

/** Free the errors of a dnsf_loaded (not its result). */
void dnsf_loaded_clear(struct dnsf_loaded *loaded);

#endif
