/*
 * report_internal.h - what the reporter's files share; private to
 * module/core (the API is include/dnsfilter/report.h, which also says what
 * is written where). One concern per file:
 *
 *   report.c    the reporter object: settings, lifetime, the writer thread
 *               and its rounds
 *   counters.c  the per-thread slots: counters and event rings, the
 *               resolver side and the writer's end of the rings
 *   ids.c       matches counted per entry id (by_id, dnsfilter_matches_total)
 *   format.c    the text written: event lines, counter lines, metrics
 *   output.c    the output files: rotation, non-blocking writes, FIFOs,
 *               the metrics file replaced atomically
 *   event.c     filling in an event on a resolver thread
 *
 * Names shared between these files start with report_.
 */
#ifndef DNSFILTER_REPORT_INTERNAL_H
#define DNSFILTER_REPORT_INTERNAL_H

#include "dnsfilter/report.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/** Longest event line: every field at its longest, all escaped. */
#define REPORT_EVENT_LINE_MAX 4096
_Static_assert(REPORT_EVENT_LINE_MAX <= PIPE_BUF, "an event line fits one pipe write");

/* ---- structures ---- */

/** One thread's slot (report.h: struct dnsf_counters). */
struct dnsf_counters {
	/* Written by the owning thread only (the overflow slot: atomic adds). */
	/** client queries answered, not opted out */
	_Alignas(64) _Atomic uint64_t queries;
	/** queries of opted-out clients */
	_Atomic uint64_t optout;
	/** blocked queries */
	_Atomic uint64_t blocked;
	/** monitored queries */
	_Atomic uint64_t monitored;
	/** events dropped because the ring was full (or missing) */
	_Atomic uint64_t dropped;
	/** events put into the ring so far (wraps) */
	_Atomic uint32_t head;
	/** the producer's last view of tail */
	uint32_t tail_seen;
	/** DNSF_REPORT_RING events, set once by the owner; NULL: none yet */
	struct dnsf_event *_Atomic ring;
	/** the reporter, for waking its writer */
	struct dnsf_reporter *reporter;
	/** the shared overflow slot: several threads write it */
	int shared;

	/* Written by the writer only. */
	/** events taken out of the ring so far (wraps) */
	_Alignas(64) _Atomic uint32_t tail;
};

/** Counter values at one moment, summed over the threads. */
struct totals {
	/** client queries, not opted out */
	uint64_t queries;
	/** opted-out queries */
	uint64_t optout;
	/** blocked */
	uint64_t blocked;
	/** monitored */
	uint64_t monitored;
	/** events missing from the event log */
	uint64_t dropped;
	/** failed feed loads */
	uint64_t feed_failures;
};

/** Growing text; on allocation failure, failed is set and appends stop. */
struct text {
	/** the bytes (not NUL-terminated) */
	char *bytes;
	/** bytes used */
	size_t length;
	/** bytes allocated */
	size_t capacity;
	/** an append did not fit in memory */
	int failed;
};

/** Matches counted for one entry id. */
struct id_count {
	/** the id, NUL-terminated; "" marks a free cell */
	char id[DNSF_EVENT_ID_SIZE + 1];
	/** since the last counter line written */
	uint64_t interval;
	/** since the reporter was made */
	uint64_t total;
};

/** Open-addressed hash table of id_count. */
struct id_table {
	/** cells, capacity of them (a power of two) or NULL */
	struct id_count *cells;
	/** number of cells */
	size_t capacity;
	/** cells in use */
	size_t count;
	/** the count of events with an empty id (not stored in a cell) */
	struct id_count empty;
};

/** An appended-to output file (event log, counter log). */
struct output_file {
	/** the settings key, for messages */
	const char *key;
	/** the path (malloc'd), or NULL: not configured */
	char *path;
	/** creation mode */
	mode_t mode;
	/** open descriptor, or -1 */
	int fd;
	/** device of the open file */
	dev_t device;
	/** inode of the open file, compared with the path's for rotation */
	ino_t inode;
	/** not a regular file: written in whole lines of at most PIPE_BUF */
	int is_pipe;
	/** a failure was reported and it has not worked since */
	int failing;
	/** a write was cut short inside a line and the file could not be
	 * truncated back: it ends in part of a line, whole_end is where the
	 * last whole line ended */
	int torn;
	/** see torn */
	off_t whole_end;
};

struct dnsf_reporter {
	/* Read by the resolver threads, written only before start. */
	/** unique among reporters, for the threads' cached slots */
	uint64_t generation;
	/** wakes the writer: [0] read by it, [1] written non-blocking */
	int wake[2];
	/** told of file failures, or NULL */
	void (*log_error)(void *arg, const char *message);
	/** for log_error */
	void *log_error_arg;
	/** what the event log shows of the client */
	enum dnsf_client_ip client_ip;
	/** seconds between counter lines */
	uint32_t interval;
	/** the metrics file (malloc'd), or NULL */
	char *metrics_path;
	/** the writer thread */
	pthread_t thread;
	/** the writer was started and not yet joined */
	int running;
	/** the last round has run */
	int stopped;

	/* Written now and then by any thread. */
	/** the feed serial in force */
	_Alignas(64) _Atomic uint64_t feed_serial;
	/** failed feed loads */
	_Atomic uint64_t feed_failures;
	/** per enum dnsf_stale_file: stale since (Unix s), 0: fresh */
	_Atomic int64_t stale_since[2];
	/** the mode in force (enum dnsf_mode) */
	_Atomic int mode;
	/** slots handed out (may pass DNSF_REPORT_SLOTS) */
	_Atomic uint32_t used;
	/** set by dnsf_reporter_stop */
	_Atomic int stopping;
	/** serialises the threads that share the overflow slot */
	_Alignas(64) pthread_mutex_t overflow_lock;

	/* The writer's: its thread's, or the caller's when never started. */
	/** the event log */
	_Alignas(64) struct output_file log;
	/** the counter log */
	struct output_file stats;
	/** a metrics failure was reported and it has not worked since */
	int metrics_failing;
	/** event lines not yet written */
	struct text log_buffer;
	/** events drained but not written to the event log */
	uint64_t unwritten_events;
	/** totals as of the last counter line written */
	struct totals reported;
	/** monotonic ms of the last counter line written (or of the start) */
	int64_t reported_at;
	/** the mode in force since the last counter line (valid once
	 * line_mode_known is set): a change of mode ends the interval, so a
	 * line counts the queries of one mode */
	enum dnsf_mode line_mode;
	/** line_mode is set */
	int line_mode_known;
	/** matches per id */
	struct id_table ids;

	/** per-thread slots, each on cache lines of its own */
	struct dnsf_counters slots[DNSF_REPORT_SLOTS];
	/** the slot of threads past DNSF_REPORT_SLOTS */
	struct dnsf_counters overflow;
};

/* ---- clocks ---- */

static inline int64_t report_monotonic_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static inline int64_t report_wall_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* ---- report.c ---- */

/** Wake the writer (a non-blocking write to its pipe); from any thread. */
void report_wake_writer(struct dnsf_reporter *reporter);

/* ---- counters.c ---- */

/**
 * Set up the slots, the generation and the any-thread counters of a
 * zeroed reporter, and allocate the overflow slot's ring.
 * @return 1, or 0 when the ring could not be allocated (errno is set);
 *   report_slots_teardown is right either way.
 */
int report_slots_setup(struct dnsf_reporter *reporter);

/** Free the rings (no thread may use a slot any more). */
void report_slots_teardown(struct dnsf_reporter *reporter);

/** The counters summed over the slots, feed_failures included; dropped
 * counts only events the rings had no room for. */
void report_slots_sum(struct dnsf_reporter *reporter, struct totals *totals);

/** Take every event the producers have published so far, in each ring's
 * order, giving each to take (the writer's side of the rings). */
void report_slots_drain(struct dnsf_reporter *reporter,
			void (*take)(void *arg, const struct dnsf_event *event), void *arg);

/* ---- ids.c ---- */

/** Count a match of id; a failed allocation loses only the per-id count. */
void report_ids_count(struct id_table *table, const char *event_id);

/**
 * The counted ids in byte order (only those with an interval count when
 * interval_only), as a malloc'd array; *count is set. NULL when none or out
 * of memory (then *count is 0 and *failed is set).
 */
struct id_count **report_ids_sorted(struct id_table *table, int interval_only, size_t *count,
				    int *failed);

/** Start a new interval: every interval count 0. */
void report_ids_reset_interval(struct id_table *table);

/** Free the cells. */
void report_ids_free(struct id_table *table);

/* ---- format.c ---- */

/** Append one event's line (report.h, "Event log"). */
void report_format_event(struct text *text, const struct dnsf_event *event,
			 enum dnsf_client_ip client_ip);

/** What the counter line and the metrics say of the data in force. */
struct report_state {
	/** the feed's serial */
	uint64_t serial;
	/** per enum dnsf_stale_file: stale since (Unix s), 0: fresh */
	int64_t stale_since[2];
	/** the mode: of the interval in a counter line, now in the metrics */
	enum dnsf_mode mode;
};

/** The state now (any thread's last word). */
void report_state_read(struct dnsf_reporter *reporter, struct report_state *state);

/** Append the counter line (report.h, "Counter log"): the deltas from last
 * to now, covering covered_ms, by_id from the interval counts of ids. */
void report_format_counter_line(struct text *text, const struct totals *now,
				const struct totals *last, int64_t covered_ms,
				const struct report_state *state, struct id_table *ids);

/** Append the metrics (report.h, "Metrics"), per id from the totals of ids. */
void report_format_metrics(struct text *text, const struct totals *totals,
			   const struct report_state *state, struct id_table *ids);

/* ---- output.c ---- */

/** Tell the operator (log_error), once until *failing is cleared again by
 * a success. */
void report_complain(struct dnsf_reporter *reporter, int *failing, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/** Open (create) the file's path for appending, non-blocking.
 * @return 0 or an errno value. */
int report_output_open(struct output_file *file);

/** Close the file if it is open. */
void report_output_close(struct output_file *file);

/**
 * Before a write: if the path no longer names the open file (renamed away
 * by a rotation, or removed), close it and open the path anew; a failure
 * is complained about.
 * @return 1 when the file is open.
 */
int report_output_ready(struct dnsf_reporter *reporter, struct output_file *file);

/**
 * Write bytes (whole lines), waiting for a slow file until deadline
 * (monotonic ms). On an error the file is closed, to be reopened later.
 * Only whole lines stay in the file: a write cut short inside a line (a
 * full disk, a file size limit) is truncated back to the last whole line,
 * or, when that fails, the next write starts with a newline.
 * @return the bytes written, whole lines.
 */
size_t report_output_write(struct dnsf_reporter *reporter, struct output_file *file,
			   const char *bytes, size_t length, int64_t deadline);

/**
 * Replace the file at path with bytes: written to a temporary file beside
 * it and renamed over it, so a reader sees the old file or the new one,
 * never a part.
 * @return 0 or an errno value.
 */
int report_output_replace(const char *path, const char *bytes, size_t length);

#endif
