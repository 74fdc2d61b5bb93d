/*
 * report.c - the reporter object and its writer thread (see report.h for
 * what is written where, report_internal.h for the reporter's other files).
 *
 * A round of the writer drains every ring up to the head it sees
 * (counters.c), counts each event per id (ids.c) and formats it into a
 * buffer (format.c), then writes the buffer to the event log in whole
 * lines (output.c); a round waits at most DNSF_REPORT_WRITE_MS for a slow
 * file, and what it could not write is dropped and counted. Every stats
 * interval it sums the counters and writes the deltas since the last line
 * that was written whole (so a failed write loses nothing: the next line
 * carries its counts) and the metrics file.
 */
#include "report_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/** The buffer of event lines is written out when it grows past this. */
#define LOG_FLUSH_BYTES (256 * 1024)

/* ---- the writer ---- */

static uint64_t count_lines(const char *bytes, size_t length)
{
	uint64_t lines = 0;
	for (const char *end = bytes + length; (bytes = memchr(bytes, '\n', (size_t)(end - bytes)));
	     bytes++)
		lines++;
	return lines;
}

/* Write the buffered event lines; count those not written as dropped. */
static void flush_log(struct dnsf_reporter *reporter, int64_t deadline)
{
	struct text *buffer = &reporter->log_buffer;
	size_t written = 0;
	if (!buffer->length)
		return;
	if (report_output_ready(reporter, &reporter->log))
		written = report_output_write(reporter, &reporter->log, buffer->bytes,
					      buffer->length, deadline);
	reporter->unwritten_events +=
	    count_lines(buffer->bytes + written, buffer->length - written);
	buffer->length = 0;
}

/** A round of draining: the reporter and when its writes must end. */
struct round {
	/** the reporter */
	struct dnsf_reporter *reporter;
	/** monotonic ms */
	int64_t deadline;
};

/* One event out of a ring: counted per id and formatted into the buffer. */
static void handle_event(void *argument, const struct dnsf_event *event)
{
	struct round *round = argument;
	struct dnsf_reporter *reporter = round->reporter;
	struct text *buffer = &reporter->log_buffer;
	report_ids_count(&reporter->ids, event->id);
	if (!reporter->log.path)
		return;
	size_t before = buffer->length;
	report_format_event(buffer, event, reporter->client_ip);
	if (buffer->failed) {
		buffer->length = before;
		buffer->failed = 0;
		reporter->unwritten_events++;
	}
	if (buffer->length >= LOG_FLUSH_BYTES)
		flush_log(reporter, round->deadline);
}

static void drain(struct dnsf_reporter *reporter)
{
	struct round round = { reporter, report_monotonic_ms() + DNSF_REPORT_WRITE_MS };
	report_slots_drain(reporter, handle_event, &round);
	flush_log(reporter, round.deadline);
}

/* Append a counter line and rewrite the metrics. */
static void write_counters(struct dnsf_reporter *reporter)
{
	struct totals now;
	struct text text = { 0 };
	int64_t at = report_monotonic_ms();
	struct report_state state;

	report_state_read(reporter, &state);
	report_slots_sum(reporter, &now);
	now.dropped += reporter->unwritten_events;
	if (reporter->stats.path) {
		/* the line says the mode of the interval it ends, the metrics
		 * the mode now */
		struct report_state line_state = state;
		if (reporter->line_mode_known)
			line_state.mode = reporter->line_mode;
		report_format_counter_line(&text, &now, &reporter->reported,
					   at - reporter->reported_at, &line_state, &reporter->ids);
		if (text.failed) {
			report_complain(reporter, &reporter->stats.failing, "%s: out of memory",
					reporter->stats.key);
		} else if (report_output_ready(reporter, &reporter->stats) &&
			   report_output_write(reporter, &reporter->stats, text.bytes, text.length,
					       at + DNSF_REPORT_WRITE_MS) == text.length) {
			/* written whole: the next line starts from here */
			reporter->reported = now;
			reporter->reported_at = at;
			report_ids_reset_interval(&reporter->ids);
		}
	}
	reporter->line_mode = state.mode;
	reporter->line_mode_known = 1;
	if (reporter->metrics_path) {
		text.length = 0;
		text.failed = 0;
		report_format_metrics(&text, &now, &state, &reporter->ids);
		int error = text.failed ? ENOMEM
					: report_output_replace(reporter->metrics_path, text.bytes,
								text.length);
		if (error)
			report_complain(reporter, &reporter->metrics_failing,
					"metrics.path: %s: cannot write: %s",
					reporter->metrics_path, strerror(error));
		else
			reporter->metrics_failing = 0;
	}
	free(text.bytes);
}

/* Sleep until woken (a ring half full, or stop) or timeout_ms passed. */
static void wait_for_wake(struct dnsf_reporter *reporter, int64_t timeout_ms)
{
	struct pollfd wake = { .fd = reporter->wake[0], .events = POLLIN };
	char bytes[64];
	if (timeout_ms <= 0)
		return;
	if (poll(&wake, 1, (int)timeout_ms) > 0)
		while (read(reporter->wake[0], bytes, sizeof(bytes)) > 0) {
		}
}

static void *writer_main(void *argument)
{
	struct dnsf_reporter *reporter = argument;
	int64_t period = (int64_t)reporter->interval * 1000;
	int64_t next_counters = report_monotonic_ms() + period;
	reporter->line_mode = (enum dnsf_mode)atomic_load(&reporter->mode);
	reporter->line_mode_known = 1;
	for (;;) {
		/* read before draining: what was queued before stop is drained */
		int stopping = atomic_load(&reporter->stopping);
		drain(reporter);
		int64_t now = report_monotonic_ms();
		if (stopping)
			break;
		if (atomic_load(&reporter->mode) != (int)reporter->line_mode) {
			/* the mode changed (enforce-from): this interval ends here;
			 * the next line still comes at its time */
			write_counters(reporter);
		} else if (now >= next_counters) {
			write_counters(reporter);
			next_counters += period;
			if (next_counters <= now) /* fell behind (a slow disk): skip ahead */
				next_counters = now + period;
		}
		int64_t timeout = next_counters - now;
		if (timeout > DNSF_REPORT_WAKE_MS)
			timeout = DNSF_REPORT_WAKE_MS;
		wait_for_wake(reporter, timeout);
	}
	write_counters(reporter);
	return NULL;
}

void report_wake_writer(struct dnsf_reporter *reporter)
{
	char byte = 1;
	/* non-blocking: a full pipe already means "wake up" */
	if (write(reporter->wake[1], &byte, 1) < 0) {
	}
}

/* ---- the reporter ---- */

static int copy_path(const char *path, char **out, const char *key, struct dnsf_errors *errors)
{
	*out = NULL;
	if (!path)
		return 1;
	if (!path[0]) {
		dnsf_errors_add(errors, "%s: must be a non-empty path", key);
		return 0;
	}
	*out = strdup(path);
	if (!*out)
		dnsf_errors_add_kind(errors, DNSF_ERROR_MEMORY, "%s: out of memory", key);
	return *out != NULL;
}

/* Allocate and set up everything but the slots and the files. */
static struct dnsf_reporter *reporter_alloc(const struct dnsf_report_settings *settings)
{
	struct dnsf_reporter *reporter = aligned_alloc(64, sizeof(*reporter));
	if (!reporter)
		return NULL;
	memset(reporter, 0, sizeof(*reporter));
	reporter->log.fd = reporter->stats.fd = -1;
	reporter->wake[0] = reporter->wake[1] = -1;
	reporter->log.key = "log.path";
	reporter->log.mode = 0640; /* client addresses */
	reporter->stats.key = "stats.path";
	reporter->stats.mode = 0644;
	reporter->log_error = settings->log_error;
	reporter->log_error_arg = settings->log_error_arg;
	reporter->client_ip = settings->client_ip;
	reporter->interval = settings->stats_interval;
	atomic_init(&reporter->stopping, 0);
	reporter->reported_at = report_monotonic_ms();
	return reporter;
}

/* Open the files; the metrics file is written once, all zero. */
static void open_files(struct dnsf_reporter *reporter)
{
	struct output_file *files[] = { &reporter->log, &reporter->stats };
	for (size_t i = 0; i < 2; i++) {
		int error = files[i]->path ? report_output_open(files[i]) : 0;
		/* A file that cannot be opened (a missing directory, a full or
		 * read-only disk) must not stop the resolver: it is said once
		 * and opened again before each write (report_output_ready). A
		 * FIFO whose reader is not there yet is not even worth saying. */
		if (error && error != ENXIO)
			report_complain(reporter, &files[i]->failing,
					"%s: %s: cannot open: %s; trying again", files[i]->key,
					files[i]->path, strerror(error));
	}
	if (reporter->metrics_path) {
		struct totals zero = { 0 };
		struct report_state state;
		struct text text = { 0 };
		report_state_read(reporter, &state);
		report_format_metrics(&text, &zero, &state, &reporter->ids);
		int error = text.failed ? ENOMEM
					: report_output_replace(reporter->metrics_path, text.bytes,
								text.length);
		if (error) /* written again every interval */
			report_complain(reporter, &reporter->metrics_failing,
					"metrics.path: %s: cannot write: %s; trying again",
					reporter->metrics_path, strerror(error));
		free(text.bytes);
	}
}

struct dnsf_reporter *dnsf_reporter_new(const struct dnsf_report_settings *settings,
					struct dnsf_errors *errors)
{
	size_t errors_before = errors->count;
	struct dnsf_reporter *reporter;

	if (settings->stats_interval < 1 || settings->stats_interval > 86400) {
		dnsf_errors_add(errors, "stats.interval: must be a whole number from 1 to 86400");
		return NULL;
	}
	reporter = reporter_alloc(settings);
	if (!reporter) {
		dnsf_errors_add(errors, "reporter: out of memory");
		return NULL;
	}
	if (!report_slots_setup(reporter) || pipe2(reporter->wake, O_NONBLOCK | O_CLOEXEC) != 0)
		dnsf_errors_add(errors, "reporter: %s", strerror(errno));
	if (copy_path(settings->log_path, &reporter->log.path, "log.path", errors) &&
	    copy_path(settings->stats_path, &reporter->stats.path, "stats.path", errors) &&
	    copy_path(settings->metrics_path, &reporter->metrics_path, "metrics.path", errors) &&
	    errors->count == errors_before)
		open_files(reporter);
	if (errors->count != errors_before) {
		dnsf_reporter_free(reporter);
		return NULL;
	}
	return reporter;
}

int dnsf_reporter_start(struct dnsf_reporter *reporter)
{
	sigset_t all, previous;
	if (reporter->running || reporter->stopped)
		return 0;
	/* signals are for Unbound's threads; SIGPIPE stays pending here */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &previous);
	int failed = pthread_create(&reporter->thread, NULL, writer_main, reporter);
	pthread_sigmask(SIG_SETMASK, &previous, NULL);
	if (failed)
		return 0;
	reporter->running = 1;
	return 1;
}

int dnsf_reporter_stop(struct dnsf_reporter *reporter)
{
	if (reporter->stopped)
		return !reporter->running;
	atomic_store(&reporter->stopping, 1);
	if (reporter->running) {
		struct timespec deadline;
		report_wake_writer(reporter);
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_sec += DNSF_REPORT_STOP_MS / 1000;
		deadline.tv_nsec += (long)(DNSF_REPORT_STOP_MS % 1000) * 1000000;
		if (deadline.tv_nsec >= 1000000000) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000;
		}
		if (pthread_timedjoin_np(reporter->thread, NULL, &deadline) != 0) {
			/* stuck in the kernel: stop must not wait for it */
			pthread_detach(reporter->thread);
			reporter->stopped = 1;
			return 0;
		}
		reporter->running = 0;
	} else {
		/* never started: the last round here, with SIGPIPE held back */
		sigset_t all, previous;
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &previous);
		drain(reporter);
		write_counters(reporter);
		pthread_sigmask(SIG_SETMASK, &previous, NULL);
	}
	reporter->stopped = 1;
	return 1;
}

void dnsf_reporter_free(struct dnsf_reporter *reporter)
{
	if (!reporter)
		return;
	if (reporter->running && !dnsf_reporter_stop(reporter))
		return; /* the writer left behind still uses it */
	report_output_close(&reporter->log);
	report_output_close(&reporter->stats);
	report_slots_teardown(reporter);
	for (int i = 0; i < 2; i++)
		if (reporter->wake[i] >= 0)
			close(reporter->wake[i]);
	free(reporter->log.path);
	free(reporter->stats.path);
	free(reporter->metrics_path);
	free(reporter->log_buffer.bytes);
	report_ids_free(&reporter->ids);
	free(reporter);
}
