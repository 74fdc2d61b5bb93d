/*
 * wake.c - waking a resolver thread for a purge of the caches (cache.c).
 *
 * Unbound answers from its message cache before any module runs, and its
 * reply_cache callback cannot decline a cached answer (1.17.1 ignores the
 * callback's result), so when the names the feed blocks change (a new feed,
 * an entry's start), their cached real answers must be removed.
 *
 * The watcher thread must not touch the caches itself: during a reload
 * Unbound may free and recreate them before the module's deinit stops the
 * watcher, and nothing tells the module before that. Worker threads are
 * safe: while one runs, the caches exist. So the watcher asks for a purge
 * and wakes a worker with a query to this Unbound for a name below
 * purge.dnsfilter.arpa; the first worker to run the module does the purge
 * (any query does; the wake-up query only makes sure one comes at once)
 * and the wake-up query gets NXDOMAIN. If it cannot be sent (Unbound
 * listens nowhere this host can reach), the next query that reaches the
 * module does the purge.
 */
#include "config.h"

#include "sldns/rrdef.h"
#include "sldns/sbuffer.h"
#include "util/config_file.h"
#include "util/data/dname.h"
#include "util/log.h"
#include "util/module.h"
#include "util/net_help.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "glue.h"

static const uint8_t wake_zone[] = DNSFILTER_WAKE_ZONE; /* with its root byte */

int dnsfilter_is_wake_query(const uint8_t *qname, size_t length)
{
	size_t zone_length = sizeof(wake_zone);
	const uint8_t *p = qname;

	/* walk the labels; the zone must be the tail, below it one label or more */
	if (length <= zone_length)
		return 0;
	while (*p && (size_t)(p - qname) < length) {
		size_t rest = length - (size_t)(p - qname);
		if (p != qname && rest == zone_length)
			return query_dname_compare((uint8_t *)p, (uint8_t *)wake_zone) == 0;
		p += 1 + *p;
	}
	return 0;
}

uint64_t dnsfilter_request_purge(struct dnsfilter *filter, struct dnsf_delta *delta)
{
	uint64_t request;

	pthread_mutex_lock(&filter->lock);
	if (delta && atomic_load(&filter->purge_done) != atomic_load(&filter->purge_requested)) {
		/* the walk under way (or about to start) knows only its own
		 * names: one walk over every name covers both */
		dnsf_delta_free(delta);
		delta = NULL;
	}
	dnsf_delta_free(filter->purge_delta);
	filter->purge_delta = delta;
	request = atomic_fetch_add(&filter->purge_requested, 1) + 1;
	filter->purge_delta_request = request;
	pthread_mutex_unlock(&filter->lock);
	dnsfilter_wake_worker(filter);
	return request;
}

void dnsfilter_wake_worker(struct dnsfilter *filter)
{
	uint8_t query[64];
	size_t n = 0;
	uint64_t generation = atomic_load(&filter->purge_requested);
	char label[24];
	int fd;

	if (filter->self_address_length == 0)
		return;
	/* header: random id, RD, one question */
	uint16_t id = (uint16_t)random();
	query[n++] = (uint8_t)(id >> 8);
	query[n++] = (uint8_t)id;
	query[n++] = 0x01;
	query[n++] = 0x00;
	memcpy(query + n, "\0\1\0\0\0\0\0\0", 8);
	n += 8;
	/* a fresh name each time, so no cache answers it */
	int length = snprintf(label, sizeof(label), "g%llu-%ld", (unsigned long long)generation,
			      random() % 100000);
	query[n++] = (uint8_t)length;
	memcpy(query + n, label, (size_t)length);
	n += (size_t)length;
	memcpy(query + n, wake_zone, sizeof(wake_zone));
	n += sizeof(wake_zone);
	memcpy(query + n, "\0\1\0\1", 4); /* A IN */
	n += 4;
	fd = socket(filter->self_address.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, query, n, 0, (struct sockaddr *)&filter->self_address,
		   filter->self_address_length) < 0)
		verbose(VERB_OPS, "dnsfilter: cannot send the wake-up query for a purge; "
				  "the next query will do it");
	close(fd); /* the answer is of no interest */
}

/* The first address of the "interface:" list, a wildcard made loopback. */
static int parse_interface(const char *text, int port, struct sockaddr_storage *address,
			   socklen_t *length)
{
	char host[128];
	const char *at = strchr(text, '@');
	size_t host_length = at ? (size_t)(at - text) : strlen(text);

	if (host_length == 0 || host_length >= sizeof(host))
		return 0;
	memcpy(host, text, host_length);
	host[host_length] = 0;
	if (at)
		port = atoi(at + 1);
	if (strcmp(host, "0.0.0.0") == 0)
		strcpy(host, "127.0.0.1");
	else if (strcmp(host, "::") == 0 || strcmp(host, "::0") == 0)
		strcpy(host, "::1");
	return ipstrtoaddr(host, port, address, length);
}

void dnsfilter_find_self_address(struct dnsfilter *filter, struct module_env *env)
{
	char *interfaces = NULL, *port_text = NULL;
	int port = 53;

	filter->self_address_length = 0;
	if (config_get_option_collate(env->cfg, "port", &port_text) == 0 && port_text)
		port = atoi(port_text);
	free(port_text);
	if (config_get_option_collate(env->cfg, "interface", &interfaces) == 0 && interfaces &&
	    interfaces[0]) {
		char *save = NULL;
		for (char *item = strtok_r(interfaces, " \n\t", &save); item;
		     item = strtok_r(NULL, " \n\t", &save))
			if (parse_interface(item, port, &filter->self_address,
					    &filter->self_address_length))
				break;
	} else {
		/* no interface: Unbound listens on localhost */
		parse_interface("127.0.0.1", port, &filter->self_address,
				&filter->self_address_length);
	}
	free(interfaces);
}
