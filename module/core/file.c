/*
 * file.c - reading a whole regular file with a size limit (see file.h).
 *
 * The size comes from fstat of the open file, so the limit is checked
 * before anything is allocated or read; a file that changes size while it
 * is read (a writer not using rename) is a read error, not half a file.
 */
#include "dnsfilter/file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What a file that is not regular is, for the message. */
static const char *file_type(mode_t mode)
{
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISSOCK(mode))
		return "a socket";
	if (S_ISCHR(mode))
		return "a character device";
	if (S_ISBLK(mode))
		return "a block device";
	return "not a file";
}

int dnsf_file_read(const char *path, size_t max_bytes, const char *name, char **text,
		   size_t *length, struct dnsf_errors *errors)
{
	const char *prefix = name ? name : "", *colon = name ? ": " : "";
	struct stat info;
	size_t size, done = 0;
	char *bytes = NULL;
	int fd;

	*text = NULL;
	*length = 0;
	/* O_NONBLOCK: opening a FIFO must not wait for a writer; a regular
	 * file ignores it */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		dnsf_errors_add_kind(errors, DNSF_ERROR_IO, "%s%scannot open: %s", prefix, colon,
				     strerror(errno));
		return 0;
	}
	if (fstat(fd, &info) != 0) {
		dnsf_errors_add_kind(errors, DNSF_ERROR_IO, "%s%sread error: %s", prefix, colon,
				     strerror(errno));
		goto fail;
	}
	if (!S_ISREG(info.st_mode)) {
		dnsf_errors_add_kind(errors, DNSF_ERROR_IO, "%s%snot a regular file (%s)", prefix,
				     colon, file_type(info.st_mode));
		goto fail;
	}
	if (info.st_size < 0 || (unsigned long long)info.st_size > max_bytes) {
		dnsf_errors_add_kind(errors, DNSF_ERROR_LIMIT,
				     "%s%s%lld bytes, more than the limit of %zu", prefix, colon,
				     (long long)info.st_size, max_bytes);
		goto fail;
	}
	size = (size_t)info.st_size;
	bytes = malloc(size + 1);
	if (!bytes) {
		dnsf_errors_add_kind(errors, DNSF_ERROR_MEMORY,
				     "%s%sout of memory reading %zu bytes", prefix, colon, size);
		goto fail;
	}
	while (done < size) {
		ssize_t got = read(fd, bytes + done, size - done);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			dnsf_errors_add_kind(errors, DNSF_ERROR_IO, "%s%sread error: %s", prefix,
					     colon, strerror(errno));
			goto fail;
		}
		if (got == 0) {
			dnsf_errors_add_kind(errors, DNSF_ERROR_IO,
					     "%s%sread error: %zu bytes, not %zu: the file "
					     "changed while it was read",
					     prefix, colon, done, size);
			goto fail;
		}
		done += (size_t)got;
	}
	close(fd);
	bytes[size] = 0;
	*text = bytes;
	*length = size;
	return 1;
fail:
	free(bytes);
	close(fd);
	return 0;
}

int dnsf_file_write_all(int fd, const void *bytes, size_t length)
{
	const char *cursor = bytes;

	while (length > 0) {
		ssize_t written = write(fd, cursor, length);
		if (written < 0 && errno == EINTR)
			continue;
		if (written <= 0) {
			if (written == 0)
				errno = ENOSPC;
			return 0;
		}
		cursor += written;
		length -= (size_t)written;
	}
	return 1;
}

/* Make a rename durable; a failure here only weakens that. */
static void sync_directory_of(const char *path)
{
	char *copy = strdup(path);
	int fd;

	if (!copy)
		return;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
	free(copy);
}

int dnsf_file_replace(const char *path, int (*write_body)(int fd, void *context), void *context,
		      struct dnsf_errors *errors)
{
	size_t size = strlen(path) + 32;
	char *temporary = malloc(size);
	int fd;

	if (!temporary) {
		dnsf_errors_add_kind(errors, DNSF_ERROR_MEMORY, "%s: out of memory", path);
		return 0;
	}
	snprintf(temporary, size, "%s.%ld.tmp", path, (long)getpid());
	fd =
	    open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
	if (fd < 0) {
		dnsf_errors_add_kind(errors, DNSF_ERROR_IO, "%s: cannot create: %s", temporary,
				     strerror(errno));
		free(temporary);
		return 0;
	}
	errno = 0;
	if (!write_body(fd, context) || fsync(fd) != 0) {
		dnsf_errors_add_kind(errors, DNSF_ERROR_IO, "%s: cannot write: %s", temporary,
				     errno ? strerror(errno) : "short write");
		close(fd);
		unlink(temporary);
		free(temporary);
		return 0;
	}
	close(fd);
	if (rename(temporary, path) != 0) {
		dnsf_errors_add_kind(errors, DNSF_ERROR_IO, "%s: cannot rename to %s: %s",
				     temporary, path, strerror(errno));
		unlink(temporary);
		free(temporary);
		return 0;
	}
	free(temporary);
	sync_directory_of(path);
	return 1;
}
