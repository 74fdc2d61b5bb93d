/*
 * dnsfilter/hostcheck.h - is the running Unbound the one we were built for?
 *
 * The module reads Unbound's internal structs, whose layout changes between
 * versions and with some configure options, so it refuses to run inside an
 * Unbound of another version or configured differently where that moves
 * fields. The running binary carries its PACKAGE_STRING ("unbound 1.17.1")
 * and its configure line (what `unbound -V` prints) as NUL-terminated
 * strings; these look for them in the executable's file.
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

/**
 * The configure line embedded in an Unbound executable: the NUL-terminated
 * string that holds "--with-dynlibmodule" (every Unbound that can load the
 * module was configured with it).
 * @param line: set to the line (malloc'd) when found, else NULL.
 * @return 1 found, 0 not found, -1 the file could not be read.
 */
int dnsf_file_configure_line(const char *path, char **line);

/** Configure options that change the layout of structs the module reads. */
enum dnsf_configure_feature {
	/** --enable-subnet (CLIENT_SUBNET: module_qstate, comm_reply) */
	DNSF_FEATURE_SUBNET = 1 << 0,
	/** --enable-cachedb (USE_CACHEDB) */
	DNSF_FEATURE_CACHEDB = 1 << 1,
	/** --enable-dnscrypt (USE_DNSCRYPT: comm_reply) */
	DNSF_FEATURE_DNSCRYPT = 1 << 2,
	/** --enable-dnstap (USE_DNSTAP: module_env, comm_point) */
	DNSF_FEATURE_DNSTAP = 1 << 3,
	/** --with-libngtcp2 (HAVE_NGTCP2: DNS over QUIC, comm_reply) */
	DNSF_FEATURE_NGTCP2 = 1 << 4,
};

/** Number of features in enum dnsf_configure_feature. */
#define DNSF_FEATURE_COUNT 5

/**
 * The layout-relevant features a configure line turns on: the last of
 * --enable-X / --enable-X=no / --disable-X (--with-X / --without-X) wins;
 * quotes around arguments (as Debian's builds write them) are ignored.
 * @return a mask of enum dnsf_configure_feature.
 */
unsigned dnsf_configure_features(const char *line);

/** The option that turns a feature on ("--enable-subnet"). */
const char *dnsf_configure_feature_option(unsigned feature);

#endif
