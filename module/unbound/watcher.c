/*
 * watcher.c - the watcher thread: it reloads the feed and the opt-out
 * networks when their files change (loader.c) and asks for a purge of the
 * caches when they did, when an entry starts or when enforce-from comes
 * (the switch from monitor to enforce).
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dnsfilter/optout.h"
#include "dnsfilter/timeparse.h"
#include "glue.h"

/* Publish a new index; the old one is freed once no reader can hold it. */
static void publish_index(struct dnsfilter *filter, struct dnsf_index *index)
{
	struct dnsf_index *old = atomic_exchange(&filter->index, index);
	dnsf_grace_wait(filter->grace);
	dnsf_index_free(old);
	dnsfilter_trim_memory();
}

static void publish_optout(struct dnsfilter *filter, struct dnsf_cidr_set *set)
{
	struct dnsf_cidr_set *old = atomic_exchange(&filter->optout, set);
	dnsf_grace_wait(filter->grace);
	dnsf_cidr_set_free(old);
}

static double seconds_since(const struct timespec *start)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* Wait until the purge asked for as request is done (a worker does it,
 * woken by a query to this Unbound), at most DNSFILTER_PURGE_WAIT_SECONDS
 * and never past a stop; the wake-up query goes again every second in case
 * one was lost. Says in said how it ended, for the line that tells the
 * change: after "cache purged", no path serves an answer the change made
 * stale. */
static void wait_for_purge(struct dnsfilter *filter, uint64_t request, char *said, size_t size)
{
	struct timespec start;
	double resend_at = 1.0;

	clock_gettime(CLOCK_MONOTONIC, &start);
	if (filter->self_address_length == 0) {
		snprintf(said, size, "the cache is purged at the next query");
		return;
	}
	pthread_mutex_lock(&filter->lock);
	for (;;) {
		double waited = seconds_since(&start);
		if (atomic_load(&filter->purge_done) >= request) {
			snprintf(said, size, "cache purged after %.1f ms", waited * 1e3);
			break;
		}
		if (filter->stopping || waited >= DNSFILTER_PURGE_WAIT_SECONDS) {
			snprintf(said, size, "the cache purge is still under way");
			break;
		}
		if (waited >= resend_at) {
			pthread_mutex_unlock(&filter->lock);
			dnsfilter_wake_worker(filter);
			pthread_mutex_lock(&filter->lock);
			resend_at += 1.0;
		}
		/* 2 ms, or until a stop signals the condition */
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += 2000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&filter->wake, &filter->lock, &until);
	}
	pthread_mutex_unlock(&filter->lock);
}

static void count_feed_failure(struct dnsfilter *filter)
{
	if (filter->reporter)
		dnsf_reporter_count_feed_failure(filter->reporter);
}

static void check_feed(struct dnsfilter *filter)
{
	struct file_version version;
	struct timespec start;
	struct dnsf_index *index;
	char name[DNSFILTER_LOGGED_SIZE], purged[64], changed[64] = "";

	file_version_read(filter->settings.feed, &version);
	if (file_version_same(&version, &filter->feed_version))
		return;
	/* The version is read before the file: a change during the load
	 * shows up at the next check. */
	filter->feed_version = version;
	clock_gettime(CLOCK_MONOTONIC, &start);
	index = dnsfilter_load_feed(filter, 0);
	if (!index) {
		dnsfilter_trim_memory();
		log_err("dnsfilter: %s: the loaded feed stays in force",
			dnsfilter_logged(filter->settings.feed, name));
		count_feed_failure(filter);
		return;
	}
	struct dnsf_index_info info;
	dnsf_index_info(index, &info);
	/* the names whose cached answers the purge must look at again (NULL,
	 * out of memory: all of them) */
	struct timespec delta_start;
	clock_gettime(CLOCK_MONOTONIC, &delta_start);
	struct dnsf_delta *delta = dnsf_index_delta(atomic_load(&filter->index), index);
	double delta_seconds = seconds_since(&delta_start);
	publish_index(filter, index);
	double load_seconds = seconds_since(&start);
	if (filter->reporter)
		dnsf_reporter_set_feed(filter->reporter, info.serial);
	/* Told once the purge is done: until then a real answer cached earlier
	 * for a newly listed name may still be served from the cache. */
	if (delta && dnsf_delta_count(delta) == 0) {
		/* no name the feed acts on that it did not act on before */
		dnsf_delta_free(delta);
		snprintf(purged, sizeof(purged), "no cache purge needed (no name newly listed)");
	} else {
		snprintf(changed, sizeof(changed), " (%zu changed names found in %.0f ms)",
			 delta ? dnsf_delta_count(delta) : info.exact_count + info.wildcard_count,
			 delta_seconds * 1e3);
		wait_for_purge(filter, dnsfilter_request_purge(filter, delta), purged,
			       sizeof(purged));
	}
	log_info("dnsfilter: %s: new feed in force: serial %llu, %zu entries, %zu names, "
		 "loaded in %.3f s; %s%s",
		 dnsfilter_logged(filter->settings.feed, name), (unsigned long long)info.serial,
		 info.entry_count, info.exact_count + info.wildcard_count, load_seconds, purged,
		 changed);
}

static void check_optout(struct dnsfilter *filter)
{
	struct file_version version;
	struct dnsf_cidr_set *set;
	char name[DNSFILTER_LOGGED_SIZE];

	if (!filter->settings.optout_file)
		return;
	file_version_read(filter->settings.optout_file, &version);
	if (file_version_same(&version, &filter->optout_version))
		return;
	filter->optout_version = version;
	if (!dnsfilter_load_optout(filter, 0, &set)) {
		log_err("dnsfilter: %s: the opt-out networks in force stay",
			dnsfilter_logged(filter->settings.optout_file, name));
		if (filter->reporter)
			dnsf_reporter_count_feed_failure(filter->reporter);
		return;
	}
	publish_optout(filter, set);
	log_info("dnsfilter: %s: new opt-out networks in force: %zu prefixes",
		 dnsfilter_logged(filter->settings.optout_file, name),
		 set ? dnsf_cidr_set_prefix_count(set) : 0);
}

/* The first start of an entry, or enforce-from, after now (the watcher
 * owns the index pointer's writes, so it may read the index without a
 * section). */
static int64_t next_start_after(const struct dnsfilter *filter, int64_t now)
{
	const struct dnsf_index *index =
	    atomic_load((_Atomic(struct dnsf_index *) *)&filter->index);
	int64_t next = index ? dnsf_index_next_start(index, now) : INT64_MAX;
	int64_t enforce_from = filter->settings.enforce_from;

	if (enforce_from != DNSF_ENFORCE_FROM_NONE && enforce_from > now && enforce_from < next)
		next = enforce_from;
	return next;
}

/* The mode in force changed (enforce-from came): say so, tell the
 * reporter (the counter log and metrics say the mode), and purge, as at an
 * entry's start: the module now blocks names it only monitored, and a real
 * answer of one that is in the cache (put there by load_cache, say) must
 * not be served after the switch. */
static void switch_mode(struct dnsfilter *filter, enum dnsf_mode mode)
{
	char when[32];

	dnsf_format_time(filter->settings.enforce_from, when);
	if (mode == DNSF_MODE_ENFORCE)
		log_info("dnsfilter: enforce-from %s reached: enforcing from now on; purging "
			 "the cache",
			 when);
	else
		log_warn("dnsfilter: the clock went back before enforce-from %s: monitoring "
			 "again",
			 when);
	filter->mode_in_force = mode;
	dnsf_reporter_set_mode(filter->reporter, mode);
	dnsfilter_request_purge(filter, NULL);
}

/* An entry started, or enforce-from came: cached real answers of names
 * the module now blocks must go. */
static void check_starts(struct dnsfilter *filter)
{
	int64_t now = (int64_t)time(NULL);
	enum dnsf_mode mode = dnsf_settings_mode_at(&filter->settings, now);

	if (mode != filter->mode_in_force) {
		switch_mode(filter, mode);
	} else if (now >= filter->next_start) {
		/* the index's entries that started since the last check: no
		 * start lies between that check and next_start */
		const struct dnsf_index *index = atomic_load(&filter->index);
		struct dnsf_delta *delta =
		    index ? dnsf_index_starts(index, filter->next_start - 1, now) : NULL;
		verbose(VERB_OPS, "dnsfilter: an entry started: purging the cache");
		dnsfilter_request_purge(filter, delta);
	}
	filter->next_start = next_start_after(filter, now);
}

/* When to wake (CLOCK_MONOTONIC): at the next file check, or at the next
 * entry start to the millisecond, since a cached real answer of the
 * entry's names may be served until the purge that follows. */
static struct timespec wake_time(const struct dnsfilter *filter)
{
	int64_t sleep_ns =
	    (int64_t)(filter->settings.watch_interval ? filter->settings.watch_interval : 3600) *
	    1000000000;
	struct timespec now, wall;

	clock_gettime(CLOCK_MONOTONIC, &now);
	clock_gettime(CLOCK_REALTIME, &wall);
	/* In whole seconds first: a start in year 9999 is 2.5e20 ns away, past
	 * what int64_t holds; only a start within the sleep needs nanoseconds. */
	if (filter->next_start != INT64_MAX &&
	    filter->next_start - (int64_t)wall.tv_sec <= sleep_ns / 1000000000) {
		int64_t to_start = (filter->next_start - (int64_t)wall.tv_sec) * 1000000000 -
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
	struct dnsfilter *filter = argument;

	filter->next_start = next_start_after(filter, (int64_t)time(NULL));
	pthread_mutex_lock(&filter->lock);
	while (!filter->stopping) {
		struct timespec until = wake_time(filter);
		while (!filter->stopping &&
		       pthread_cond_timedwait(&filter->wake, &filter->lock, &until) == 0)
			; /* woken without a stop: keep sleeping until the deadline */
		if (filter->stopping)
			break;
		pthread_mutex_unlock(&filter->lock);
		if (filter->settings.watch_interval) {
			check_feed(filter);
			check_optout(filter);
		}
		check_starts(filter);
		pthread_mutex_lock(&filter->lock);
	}
	pthread_mutex_unlock(&filter->lock);
	return NULL;
}

int dnsfilter_watcher_start(struct dnsfilter *filter)
{
	pthread_condattr_t attributes;

	/* The thread also runs with watch-interval 0: it purges the cache
	 * when an entry starts. */
	pthread_condattr_init(&attributes);
	pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
	pthread_cond_init(&filter->wake, &attributes);
	pthread_condattr_destroy(&attributes);
	pthread_mutex_init(&filter->lock, NULL);
	filter->stopping = 0;
	int error = pthread_create(&filter->watcher, NULL, watcher_main, filter);
	if (error != 0) {
		log_err("dnsfilter: cannot start the watcher thread: %s", strerror(error));
		pthread_cond_destroy(&filter->wake);
		pthread_mutex_destroy(&filter->lock);
		return 0;
	}
	filter->watcher_running = 1;
	return 1;
}

int dnsfilter_watcher_stop(struct dnsfilter *filter)
{
	struct timespec deadline;
	int error;

	if (!filter->watcher_running)
		return 1;
	pthread_mutex_lock(&filter->lock);
	filter->stopping = 1;
	pthread_cond_signal(&filter->wake);
	pthread_mutex_unlock(&filter->lock);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += DNSFILTER_WATCHER_STOP_SECONDS;
	error = pthread_timedjoin_np(filter->watcher, NULL, &deadline);
	if (error == ETIMEDOUT) {
		char name[DNSFILTER_LOGGED_SIZE];
		/* Stuck in the kernel (a file on a dead network mount): stop
		 * and reload must not wait for it. It keeps the filter (never
		 * freed) and the module's code (pinned), and ends on its own
		 * once its system call returns, since stopping is set. */
		log_err("dnsfilter: the watcher thread has not stopped in %d s (a file "
			"operation that does not return: %s on a dead network mount?); "
			"leaving it behind",
			DNSFILTER_WATCHER_STOP_SECONDS,
			dnsfilter_logged(filter->settings.feed, name));
		pthread_detach(filter->watcher);
		host_pin_module();
		return 0;
	}
	pthread_cond_destroy(&filter->wake);
	pthread_mutex_destroy(&filter->lock);
	filter->watcher_running = 0;
	return 1;
}
