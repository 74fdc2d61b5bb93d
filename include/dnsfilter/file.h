/*
 * dnsfilter/file.h - reading a whole file: the feed, the settings and the
 * opt-out file are all read here.
 *
 * Only a regular file is read (a directory, a FIFO or a device is refused
 * before any byte is read, and opening a FIFO does not wait for a writer),
 * and only up to a size limit, checked before reading. Each failure is one
 * error saying what is wrong, of kind DNSF_ERROR_IO (cannot open, not a
 * regular file, read error), DNSF_ERROR_LIMIT (too large) or
 * DNSF_ERROR_MEMORY.
 */
#ifndef DNSFILTER_FILE_H
#define DNSFILTER_FILE_H

#include <stddef.h>

#include "dnsfilter/error.h"

/**
 * Read a whole regular file.
 * @param path: the file.
 * @param max_bytes: the largest size accepted.
 * @param name: how messages name the file, usually path ("PATH: cannot
 *   open: ..."); NULL when the caller prints each message after the path
 *   already ("cannot open: ...").
 * @param text: set to the bytes, malloc'd and NUL-terminated (the caller
 *   frees them), or NULL on failure.
 * @param length: set to their number (0 on failure).
 * @param errors: on failure, the one error that says why.
 * @return 1 when the file was read, 0 on failure.
 */
int dnsf_file_read(const char *path, size_t max_bytes, const char *name, char **text,
		   size_t *length, struct dnsf_errors *errors);

/**
 * Write all bytes to fd (retrying short writes and EINTR).
 * @return 1, or 0 with errno set.
 */
int dnsf_file_write_all(int fd, const void *bytes, size_t length);

/**
 * Replace a file whole or not at all: write_body writes a temporary file
 * beside it (mode 0600), which is synced and renamed over path.
 * @param write_body: writes the content to fd; returns 1, or 0 with errno
 *   set.
 * @return 1 when path holds the new content; 0 with one error of kind
 *   DNSF_ERROR_IO (path unchanged, the temporary file removed).
 */
int dnsf_file_replace(const char *path, int (*write_body)(int fd, void *context), void *context,
		      struct dnsf_errors *errors);

#endif
