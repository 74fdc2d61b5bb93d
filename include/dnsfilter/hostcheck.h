/*
 * dnsfilter/hostcheck.h - is the running Unbound the one we were built for?
 *
 * The module reads Unbound's internal structs, whose layout changes between
 * versions, so it refuses to run inside an Unbound of another version. The
 * running binary carries its PACKAGE_STRING ("unbound 1.17.1") as a
 * NUL-terminated string; this looks for it in the executable's file.
 */
#ifndef DNSFILTER_HOSTCHECK_H
#define DNSFILTER_HOSTCHECK_H

#include <stddef.h>

/**
 * Look for a byte string in a file.
 * @param path: the file (e.g. "/proc/self/exe").
 * @param needle: bytes to find.
 * @param length: their number (include the NUL to match a whole C string).
 * @return 1 found, 0 not found, -1 the file could not be read.
 */
int dnsf_file_contains(const char *path, const void *needle, size_t length);

#endif
