/*
 * compat.h - the one place where the glue differs between the Unbound
 * versions it builds against (README, "Unbound versions").
 *
 * Struct layouts need nothing here: the glue is compiled against the
 * configured source tree of the Unbound that will load it, so every field
 * it names is where that tree's headers say. What differs is what a field
 * or a function *is*; each difference is one small function below, chosen
 * at compile time by the tree's version (DNSFILTER_UNBOUND_VERSION, made
 * from its config.h's PACKAGE_VERSION by CMakeLists.txt as major * 10000 +
 * minor * 100 + patch), with the version that made the change and the
 * Unbound file to read.
 */
#ifndef DNSFILTER_COMPAT_H
#define DNSFILTER_COMPAT_H

#include "services/listen_dnsport.h"

#ifndef DNSFILTER_UNBOUND_VERSION
#error "DNSFILTER_UNBOUND_VERSION is not set (CMakeLists.txt sets it from the tree's config.h)"
#endif

/** Is the tree at least Unbound major.minor.patch? */
#define UNBOUND_AT_LEAST(major, minor, patch)                                                      \
	(DNSFILTER_UNBOUND_VERSION >= (major)*10000 + (minor)*100 + (patch))

/*
 * The address a listening socket is bound to (struct unbound_socket in
 * services/listen_dnsport.h): a struct addrinfo * until 1.19, a struct
 * sockaddr * (with addrlen) since 1.20.0.
 */
static inline const struct sockaddr *compat_socket_address(const struct unbound_socket *socket)
{
	if (!socket || !socket->addr)
		return NULL;
#if UNBOUND_AT_LEAST(1, 20, 0)
	return socket->addr;
#else
	return socket->addr->ai_addr;
#endif
}

#endif
