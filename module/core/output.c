/*
 * output.c - the reporter's output files (see report.h, "Event log" and
 * "Metrics").
 *
 * The event log and the counter log are appended to with O_APPEND and
 * O_NONBLOCK. Before a batch of lines the path's inode is compared with the
 * open file's, and a file renamed away (rotation) or removed is replaced by
 * a new one at the path. On a FIFO (anything not a regular file) every
 * write is whole lines of at most PIPE_BUF bytes, so it is atomic: all of
 * it or EAGAIN; a slow reader is waited for until a deadline, and what is
 * left is for the caller to count as dropped. A SIGPIPE from a reader gone
 * away is taken back. The metrics file is replaced whole, by a rename.
 * Failures are told to the operator once, until the file works again.
 *
 * Whole lines only: a regular file takes a batch of lines in one write, and
 * a write that stops inside a line (disk full, RLIMIT_FSIZE) leaves part
 * of one, to which the next line would be appended, making both unreadable.
 * That part is truncated away at once (the writer is the file's only
 * writer); if truncating fails (an append-only file), the next write starts
 * with a newline, so the part stands on a line of its own.
 */
#include "report_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void report_complain(struct dnsf_reporter *reporter, int *failing, const char *format, ...)
{
	char *message;
	va_list args;
	if (*failing)
		return;
	*failing = 1;
	if (!reporter->log_error)
		return;
	/* paths and keys are escaped (error.h): a path cannot forge a line */
	va_start(args, format);
	message = dnsf_message_vformat(format, args);
	va_end(args);
	reporter->log_error(reporter->log_error_arg, message ? message : "out of memory");
	free(message);
}

int report_output_open(struct output_file *file)
{
	struct stat status;
	int fd = open(file->path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC | O_NOCTTY,
		      file->mode);
	if (fd < 0)
		return errno;
	if (fstat(fd, &status) != 0) {
		int error = errno;
		close(fd);
		return error;
	}
	if (status.st_dev != file->device || status.st_ino != file->inode)
		file->torn = 0; /* another file: the torn one is no longer ours */
	file->fd = fd;
	file->device = status.st_dev;
	file->inode = status.st_ino;
	file->is_pipe = !S_ISREG(status.st_mode);
	return 0;
}

void report_output_close(struct output_file *file)
{
	if (file->fd >= 0)
		close(file->fd);
	file->fd = -1;
}

int report_output_ready(struct dnsf_reporter *reporter, struct output_file *file)
{
	struct stat at_path;
	if (file->fd >= 0 && (stat(file->path, &at_path) != 0 || at_path.st_ino != file->inode ||
			      at_path.st_dev != file->device))
		report_output_close(file);
	if (file->fd >= 0)
		return 1;
	int error = report_output_open(file);
	if (error) {
		report_complain(reporter, &file->failing, "%s: %s: cannot open: %s%s", file->key,
				file->path, strerror(error),
				error == ENXIO ? " (a FIFO nobody reads)" : "");
		return 0;
	}
	return 1;
}

/* A SIGPIPE from a write to a FIFO without reader is blocked in the writer
 * thread; take it back so it is not left pending. */
static void discard_sigpipe(void)
{
	sigset_t pipe_signal;
	struct timespec no_wait = { 0, 0 };
	sigemptyset(&pipe_signal);
	sigaddset(&pipe_signal, SIGPIPE);
	while (sigtimedwait(&pipe_signal, NULL, &no_wait) == SIGPIPE) {
	}
}

/* How much of bytes[0, length) to write at once: on a pipe, whole lines
 * within PIPE_BUF, so that every write is atomic (all or EAGAIN). */
static size_t write_piece(const struct output_file *file, const char *bytes, size_t length)
{
	if (!file->is_pipe || length <= PIPE_BUF)
		return length;
	for (size_t end = PIPE_BUF; end > 0; end--)
		if (bytes[end - 1] == '\n')
			return end;
	return PIPE_BUF; /* no line is this long (REPORT_EVENT_LINE_MAX) */
}

/* A regular file ends in part of a line (torn): truncate it back to the
 * last whole line, or end that part with a newline. @return 1 when the
 * file now ends with a whole line. */
static int mend_torn(struct output_file *file)
{
	struct stat status;
	if (fstat(file->fd, &status) != 0)
		return 0;
	/* someone truncated it meanwhile (logrotate copytruncate): nothing
	 * of the torn line is left */
	if (status.st_size <= file->whole_end || ftruncate(file->fd, file->whole_end) == 0 ||
	    write(file->fd, "\n", 1) == 1) {
		file->torn = 0;
		return 1;
	}
	return 0;
}

/* After a regular file took done bytes of a write that started at offset
 * start and then failed: the bytes of whole lines, with the part of a line
 * after them truncated away (or the file marked torn). */
static size_t keep_whole_lines(struct output_file *file, const char *bytes, size_t done,
			       off_t start)
{
	size_t whole = done;
	while (whole > 0 && bytes[whole - 1] != '\n')
		whole--;
	if (whole == done || file->is_pipe)
		return whole;
	if (start < 0 || ftruncate(file->fd, start + (off_t)whole) != 0) {
		file->torn = 1;
		file->whole_end = start < 0 ? 0 : start + (off_t)whole;
	}
	return whole;
}

size_t report_output_write(struct dnsf_reporter *reporter, struct output_file *file,
			   const char *bytes, size_t length, int64_t deadline)
{
	size_t done = 0;
	off_t start = -1;
	if (file->fd >= 0 && !file->is_pipe) {
		if (file->torn && !mend_torn(file)) {
			report_complain(reporter, &file->failing,
					"%s: %s: cannot end a line cut short: %s", file->key,
					file->path, strerror(errno));
			return 0;
		}
		start = lseek(file->fd, 0, SEEK_END);
	}
	while (done < length && file->fd >= 0) {
		size_t piece = write_piece(file, bytes + done, length - done);
		ssize_t written = write(file->fd, bytes + done, piece);
		if (written > 0) {
			done += (size_t)written;
			continue;
		}
		if (written < 0 && errno == EINTR)
			continue;
		if (written < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int64_t wait = deadline - report_monotonic_ms();
			struct pollfd ready = { .fd = file->fd, .events = POLLOUT };
			if (wait <= 0)
				break;
			poll(&ready, 1, (int)wait);
			continue;
		}
		int error = written < 0 ? errno : EIO;
		if (error == EPIPE)
			discard_sigpipe();
		report_complain(reporter, &file->failing, "%s: %s: cannot write: %s", file->key,
				file->path, strerror(error));
		done = keep_whole_lines(file, bytes, done, start);
		report_output_close(file);
	}
	if (done == length)
		file->failing = 0;
	return done;
}

int report_output_replace(const char *path, const char *bytes, size_t length)
{
	char *temporary = NULL;
	int fd, error = 0;
	/* "x.prom.AbC123": the textfile collector reads only *.prom */
	if (asprintf(&temporary, "%s.XXXXXX", path) < 0)
		return ENOMEM;
	fd = mkostemp(temporary, O_CLOEXEC);
	if (fd < 0) {
		error = errno;
		free(temporary);
		return error;
	}
	for (size_t done = 0; done < length && !error;) {
		ssize_t written = write(fd, bytes + done, length - done);
		if (written > 0)
			done += (size_t)written;
		else if (written == 0 || errno != EINTR)
			error = written == 0 ? EIO : errno;
	}
	if (!error && fchmod(fd, 0644) != 0) /* the collector may run as another user */
		error = errno;
	if (close(fd) != 0 && !error)
		error = errno;
	if (!error && rename(temporary, path) != 0)
		error = errno;
	if (error)
		unlink(temporary);
	free(temporary);
	return error;
}
