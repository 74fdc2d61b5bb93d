/*
 * watcher.c - loading the feed and the opt-out networks, and the watcher
 * thread that reloads them when their files change.
 *
 * A new version is parsed and built on the watcher thread, off the query
 * path, then published with an atomic exchange; the old one is freed after
 * a grace period in which every resolver thread has left the section in
 * which it might use it. A file that fails validation leaves the current
 * data in force; the failure is logged and counted, and the file is tried
 * again only when it changes.
 */
#include "config.h"

#include "util/log.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* Publish a new index; the old one is freed once no reader can hold it. */
static void publish_index(struct dnsfilter_env *state, struct dnsf_index *index)
{
	struct dnsf_index *old = atomic_exchange(&state->index, index);
	dnsf_grace_wait(state->grace);
	dnsf_index_free(old);
	dnsfilter_trim_memory();
}

static void publish_optout(struct dnsfilter_env *state, struct dnsf_cidr_set *set)
{
	struct dnsf_cidr_set *old = atomic_exchange(&state->optout, set);
	dnsf_grace_wait(state->grace);
	dnsf_cidr_set_free(old);
}

static double seconds_since(const struct timespec *start)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static void count_feed_failure(struct dnsfilter_env *state)
{
	if (state->reporter)
		dnsf_reporter_count_feed_failure(state->reporter);
}

static void check_feed(struct dnsfilter_env *state)
{
	struct file_version version;
	struct timespec start;
	struct dnsf_index *index;

	file_version_read(state->settings.feed, &version);
	if (file_version_same(&version, &state->feed_version))
		return;
	/* The version is read before the file: a change during the load
	 * shows up at the next check. */
	state->feed_version = version;
	if (!version.exists) {
		log_err("dnsfilter: %s: %s; the loaded feed stays in force", state->settings.feed,
			strerror(errno));
		count_feed_failure(state);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	index = dnsfilter_load_feed(&state->settings);
	if (!index) {
		dnsfilter_trim_memory();
		log_err("dnsfilter: %s: the loaded feed stays in force", state->settings.feed);
		count_feed_failure(state);
		return;
	}
	struct dnsf_index_info info;
	dnsf_index_info(index, &info);
	publish_index(state, index);
	dnsfilter_request_purge(state);
	if (state->reporter)
		dnsf_reporter_set_feed(state->reporter, info.serial);
	log_info("dnsfilter: %s: new feed in force: serial %llu, %zu entries, %zu names, "
		 "loaded in %.3f s",
		 state->settings.feed, (unsigned long long)info.serial, info.entry_count,
		 info.exact_count + info.wildcard_count, seconds_since(&start));
}

static void check_optout(struct dnsfilter_env *state)
{
	struct file_version version;
	struct dnsf_cidr_set *set;

	if (!state->settings.optout_file)
		return;
	file_version_read(state->settings.optout_file, &version);
	if (file_version_same(&version, &state->optout_version))
		return;
	state->optout_version = version;
	if (!dnsfilter_load_optout(&state->settings, &set)) {
		log_err("dnsfilter: %s: the opt-out networks in force stay",
			state->settings.optout_file);
		if (state->reporter)
			dnsf_reporter_count_feed_failure(state->reporter);
		return;
	}
	publish_optout(state, set);
	log_info("dnsfilter: %s: new opt-out networks in force: %zu prefixes",
		 state->settings.optout_file, set ? dnsf_cidr_set_prefix_count(set) : 0);
}

/* The first start of an entry after now (the watcher owns the index
 * pointer's writes, so it may read the index without a section). */
static int64_t next_start_after(const struct dnsfilter_env *state, int64_t now)
{
	const struct dnsf_index *index = atomic_load((_Atomic(struct dnsf_index *) *)&state->index);

	return index ? dnsf_index_next_start(index, now) : INT64_MAX;
}

/* An entry started: cached real answers of its names must go. */
static void check_starts(struct dnsfilter_env *state)
{
	int64_t now = (int64_t)time(NULL);

	if (now >= state->next_start) {
		verbose(VERB_OPS, "dnsfilter: an entry started: purging the cache");
		dnsfilter_request_purge(state);
	}
	state->next_start = next_start_after(state, now);
}

/* When to wake (CLOCK_MONOTONIC): at the next file check, or at the next
 * entry start to the millisecond, since a cached real answer of the
 * entry's names may be served until the purge that follows. */
static struct timespec wake_time(const struct dnsfilter_env *state)
{
	int64_t sleep_ns =
	    (int64_t)(state->settings.watch_interval ? state->settings.watch_interval : 3600) *
	    1000000000;
	struct timespec now, wall;

	clock_gettime(CLOCK_MONOTONIC, &now);
	clock_gettime(CLOCK_REALTIME, &wall);
	if (state->next_start != INT64_MAX) {
		int64_t to_start = (state->next_start - (int64_t)wall.tv_sec) * 1000000000 -
				   wall.tv_nsec + 1000000; /* 1 ms past the start */
		if (to_start < sleep_ns)
			sleep_ns = to_start < 0 ? 0 : to_start;
	}
	now.tv_sec += sleep_ns / 1000000000;
	now.tv_nsec += sleep_ns % 1000000000;
	if (now.tv_nsec >= 1000000000) {
		now.tv_sec++;
		now.tv_nsec -= 1000000000;
	}
	return now;
}

static void *watcher_main(void *argument)
{
	struct dnsfilter_env *state = argument;

	state->next_start = next_start_after(state, (int64_t)time(NULL));
	pthread_mutex_lock(&state->lock);
	while (!state->stopping) {
		struct timespec until = wake_time(state);
		while (!state->stopping &&
		       pthread_cond_timedwait(&state->wake, &state->lock, &until) == 0)
			; /* woken without a stop: keep sleeping until the deadline */
		if (state->stopping)
			break;
		pthread_mutex_unlock(&state->lock);
		if (state->settings.watch_interval) {
			check_feed(state);
			check_optout(state);
		}
		check_starts(state);
		pthread_mutex_lock(&state->lock);
	}
	pthread_mutex_unlock(&state->lock);
	return NULL;
}

int dnsfilter_watcher_start(struct dnsfilter_env *state)
{
	pthread_condattr_t attributes;

	/* The thread also runs with watch-interval 0: it purges the cache
	 * when an entry starts. */
	pthread_condattr_init(&attributes);
	pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
	pthread_cond_init(&state->wake, &attributes);
	pthread_condattr_destroy(&attributes);
	pthread_mutex_init(&state->lock, NULL);
	state->stopping = 0;
	if (pthread_create(&state->watcher, NULL, watcher_main, state) != 0) {
		log_err("dnsfilter: cannot start the watcher thread: %s", strerror(errno));
		pthread_cond_destroy(&state->wake);
		pthread_mutex_destroy(&state->lock);
		return 0;
	}
	state->watcher_running = 1;
	return 1;
}

void dnsfilter_watcher_stop(struct dnsfilter_env *state)
{
	if (!state->watcher_running)
		return;
	pthread_mutex_lock(&state->lock);
	state->stopping = 1;
	pthread_cond_signal(&state->wake);
	pthread_mutex_unlock(&state->lock);
	pthread_join(state->watcher, NULL);
	pthread_cond_destroy(&state->wake);
	pthread_mutex_destroy(&state->lock);
	state->watcher_running = 0;
}
