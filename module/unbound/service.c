/*
 * service.c - optout.service-addresses: a query that arrives at one of
 * these local addresses of Unbound (an "unfiltered" resolver address) is
 * treated as an opted-out client's (view.c). Here: the local address a
 * client's query arrived at, and the check at load that Unbound listens on
 * every service address in a way that lets that address be known.
 *
 * Where Unbound 1.17.1 keeps the local address of a query (util/netevent.h
 * struct comm_reply, services/listen_dnsport.h struct unbound_socket):
 *  - UDP with interface-automatic: the packet's destination, from
 *    IP_PKTINFO / IPV6_PKTINFO: comm_point_udp_ancil_callback sets srctype
 *    4 or 6 and copies the control message into pktinfo; mesh_state_add_reply
 *    copies the whole comm_reply into each mesh_reply of a resolution.
 *  - UDP or TCP on an interface: line: the comm_point's socket (the TCP
 *    handlers get their listening socket's, comm_point_create_tcp), whose
 *    addr is the address it was bound to.
 *  - TCP on a wildcard socket (interface-automatic listens on 0.0.0.0 and
 *    ::0 for TCP without packet info): Unbound does not keep the accepted
 *    connection's local address, so it is asked with getsockname.
 *  - PROXYv2 (proxy-protocol-port): consume_pp2_header keeps the proxied
 *    source in client_addr and drops the proxied destination ("Ignore the
 *    destination address; it should be us."), so the local address is the
 *    one the proxy sent to, known as above.
 * Wildcard UDP without packet info (interface: 0.0.0.0, no
 * interface-automatic) tells nothing: the check at load refuses a service
 * address that Unbound would only reach that way.
 */
#include "config.h"

#include "services/listen_dnsport.h"
#include "util/config_file.h"
#include "util/log.h"
#include "util/module.h"
#include "util/net_help.h"
#include "util/netevent.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dnsfilter/error.h"
#include "compat.h"
#include "glue.h"

/* ---- the local address of a query ---- */

static int is_wildcard(const struct sockaddr *address)
{
	if (address->sa_family == AF_INET)
		return ((const struct sockaddr_in *)(const void *)address)->sin_addr.s_addr ==
		       htonl(INADDR_ANY);
	if (address->sa_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(
		    &((const struct sockaddr_in6 *)(const void *)address)->sin6_addr);
	return 1;
}

static int is_service_socket_address(const struct dnsf_settings *settings,
				     const struct sockaddr *address)
{
	if (address->sa_family == AF_INET)
		return dnsf_settings_is_service_address(
		    settings, AF_INET,
		    &((const struct sockaddr_in *)(const void *)address)->sin_addr);
	if (address->sa_family == AF_INET6)
		return dnsf_settings_is_service_address(
		    settings, AF_INET6,
		    &((const struct sockaddr_in6 *)(const void *)address)->sin6_addr);
	return 0;
}

int dnsfilter_arrived_at_service_address(const struct dnsf_settings *settings,
					 const struct comm_reply *reply)
{
	const struct comm_point *point;
	struct sockaddr_storage local;
	socklen_t length = sizeof(local);

	if (!settings->service_address_count || !reply)
		return 0;
#ifdef IPV6_PKTINFO
	/* interface-automatic: the destination of the packet */
	if (reply->srctype == 6)
		return dnsf_settings_is_service_address(settings, AF_INET6,
							&reply->pktinfo.v6info.ipi6_addr);
#endif
#if defined(IP_PKTINFO)
	if (reply->srctype == 4)
		return dnsf_settings_is_service_address(settings, AF_INET,
							&reply->pktinfo.v4info.ipi_addr);
#elif defined(IP_RECVDSTADDR)
	if (reply->srctype == 4)
		return dnsf_settings_is_service_address(settings, AF_INET, &reply->pktinfo.v4addr);
#endif
	point = reply->c;
	if (!point)
		return 0;
	/* an interface: line: the address its socket is bound to */
	const struct sockaddr *bound = compat_socket_address(point->socket);
	if (bound && !is_wildcard(bound))
		return is_service_socket_address(settings, bound);
	/* a connection accepted on a wildcard socket: its own local address */
	if (point->type != comm_udp && point->fd >= 0 &&
	    getsockname(point->fd, (struct sockaddr *)&local, &length) == 0)
		return is_service_socket_address(settings, (struct sockaddr *)&local);
	return 0;
}

/* ---- the check at load ---- */

/** What Unbound listens on, from its configuration. */
struct listening {
	/** interface-automatic with UDP: every local address, with packet info */
	int automatic;
	/** do-ip4, do-ip6 */
	int ip4, ip6;
	/** the interface: lines with names resolved to addresses (Unbound's
	 * own resolve_interface_names), or its defaults 127.0.0.1 and ::1 */
	char **interfaces;
	int interface_count;
};

/* A yes/no option of Unbound's configuration. */
static int option_yes(struct module_env *env, const char *name)
{
	char *value = NULL;
	int yes = 0;

	/* config_get_option_collate returns 0 on success */
	if (config_get_option_collate(env->cfg, name, &value) == 0 && value)
		yes = strcmp(value, "yes") == 0;
	free(value);
	return yes;
}

/* The interface: lines as Unbound opens them. @return 0 when out of memory
 * or a name cannot be resolved (Unbound then refuses to start itself). */
static int read_listening(struct module_env *env, struct listening *listening)
{
	char *lines = NULL, *save = NULL, **names = NULL;
	int count = 0, ok = 0;

	memset(listening, 0, sizeof(*listening));
	listening->automatic = option_yes(env, "interface-automatic") && option_yes(env, "do-udp");
	listening->ip4 = option_yes(env, "do-ip4");
	listening->ip6 = option_yes(env, "do-ip6");
	if (config_get_option_collate(env->cfg, "interface", &lines) != 0 || !lines)
		goto done;
	names = calloc(strlen(lines) / 2 + 2, sizeof(*names));
	if (!names)
		goto done;
	for (char *line = strtok_r(lines, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		names[count++] = line;
	if (count == 0) {
		/* no interface: line: Unbound listens on localhost */
		static char *defaults[] = { "127.0.0.1", "::1" };
		names[0] = defaults[0];
		names[1] = defaults[1];
		count = 2;
	}
	ok = resolve_interface_names(names, count, NULL, &listening->interfaces,
				     &listening->interface_count);
done:
	free(names);
	free(lines);
	return ok;
}

/* Does an interface: line name the address (any port)? *wildcard is set
 * when a wildcard line of the family is there. */
static int listens_on(const struct listening *listening, const struct dnsf_address *address,
		      int *wildcard)
{
	*wildcard = 0;
	for (int i = 0; i < listening->interface_count; i++) {
		struct sockaddr_storage bound;
		socklen_t length;
		if (!extstrtoaddr(listening->interfaces[i], &bound, &length, 53) ||
		    bound.ss_family != address->family)
			continue;
		if (is_wildcard((struct sockaddr *)&bound))
			*wildcard = 1;
		else if (address->family == AF_INET
			     ? memcmp(&((struct sockaddr_in *)&bound)->sin_addr, address->bytes,
				      4) == 0
			     : memcmp(&((struct sockaddr_in6 *)&bound)->sin6_addr, address->bytes,
				      16) == 0)
			return 1;
	}
	return 0;
}

/* Is the address one of this host's now? (interface-automatic serves it
 * as soon as it is: a floating address may come later.) */
static int is_host_address(const struct dnsf_address *address)
{
	struct ifaddrs *all, *one;
	int found = 0;

	if (getifaddrs(&all) != 0)
		return 1; /* cannot tell: no warning */
	for (one = all; one && !found; one = one->ifa_next) {
		if (!one->ifa_addr || one->ifa_addr->sa_family != address->family)
			continue;
		if (address->family == AF_INET)
			found = memcmp(&((struct sockaddr_in *)(void *)one->ifa_addr)->sin_addr,
				       address->bytes, 4) == 0;
		else
			found = memcmp(&((struct sockaddr_in6 *)(void *)one->ifa_addr)->sin6_addr,
				       address->bytes, 16) == 0;
	}
	freeifaddrs(all);
	return found;
}

/* The interface: lines, for a message: "127.0.0.1, 127.0.0.2@5353",
 * escaped (error.h) like every text in the module's log lines. */
static void list_interfaces(const struct listening *listening, char *text, size_t size)
{
	char list[512];
	size_t used = 0;

	list[0] = 0;
	for (int i = 0; i < listening->interface_count && used < sizeof(list); i++)
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
					 listening->interfaces[i]);
	dnsf_escape(text, size, list, strlen(list));
}

/* One service address: 1 when Unbound receives it so that it is known. */
static int check_one(const char *source, const struct listening *listening,
		     const struct dnsf_address *address)
{
	char text[INET6_ADDRSTRLEN], interfaces[512];
	int wildcard;

	inet_ntop(address->family, address->bytes, text, sizeof(text));
	if (!(address->family == AF_INET ? listening->ip4 : listening->ip6)) {
		log_err("dnsfilter: %s: optout.service-addresses: %s: Unbound does not listen "
			"on IPv%d (%s: no)",
			source, text, address->family == AF_INET ? 4 : 6,
			address->family == AF_INET ? "do-ip4" : "do-ip6");
		return 0;
	}
	if (listening->automatic) {
		if (!is_host_address(address))
			log_warn("dnsfilter: %s: optout.service-addresses: %s is not an address "
				 "of this host now; interface-automatic serves it once it is",
				 source, text);
		return 1;
	}
	if (listens_on(listening, address, &wildcard))
		return 1;
	list_interfaces(listening, interfaces, sizeof(interfaces));
	if (wildcard)
		log_err("dnsfilter: %s: optout.service-addresses: %s: Unbound reaches it only "
			"through a wildcard interface (interface: %s), where the address a query "
			"arrived at is not known; add \"interface: %s\" or set "
			"\"interface-automatic: yes\"",
			source, text, interfaces, text);
	else
		log_err("dnsfilter: %s: optout.service-addresses: %s: Unbound does not listen "
			"on it (interface: %s); add \"interface: %s\" or set "
			"\"interface-automatic: yes\"",
			source, text, interfaces, text);
	return 0;
}

int dnsfilter_check_service_addresses(const struct dnsf_settings *settings, struct module_env *env)
{
	struct listening listening;
	char source[1024];
	int ok = 1;

	if (!settings->service_address_count)
		return 1;
	dnsf_escape(source, sizeof(source), settings->source, strlen(settings->source));
	if (!read_listening(env, &listening)) {
		log_err("dnsfilter: %s: optout.service-addresses: cannot read Unbound's "
			"interface: lines",
			source);
		return 0;
	}
	for (size_t i = 0; i < settings->service_address_count; i++)
		ok &= check_one(source, &listening, &settings->service_addresses[i]);
	config_del_strarray(listening.interfaces, listening.interface_count);
	return ok;
}
