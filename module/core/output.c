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
	char message[1024];
	va_list args;
	if (*failing)
		return;
	*failing = 1;
	if (!reporter->log_error)
		return;
	va_start(args, format);
	vsnprintf(message, sizeof(message), format, args);
	va_end(args);
	reporter->log_error(reporter->log_error_arg, message);
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

size_t report_output_write(struct dnsf_reporter *reporter, struct output_file *file,
			   const char *bytes, size_t length, int64_t deadline)
{
	size_t done = 0;
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
