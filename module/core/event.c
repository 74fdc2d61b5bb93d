/*
 * event.c - filling in a block event on a resolver thread (report.h): the
 * client from its socket address, the qname from the question's wire name
 * in the text name.c writes for names.
 */
#include "dnsfilter/report.h"
#include "dnsfilter/name.h"

#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

void dnsf_event_set_client(struct dnsf_event *event, const struct sockaddr *address)
{
	memset(event->address, 0, sizeof(event->address));
	event->family = 0;
	if (address && address->sa_family == AF_INET) {
		const struct sockaddr_in *v4 = (const struct sockaddr_in *)address;
		memcpy(event->address, &v4->sin_addr, 4);
		event->family = AF_INET;
	} else if (address && address->sa_family == AF_INET6) {
		const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)address;
		memcpy(event->address, &v6->sin6_addr, 16);
		event->family = AF_INET6;
	}
}

int dnsf_event_set_qname_wire(struct dnsf_event *event, const uint8_t *wire, size_t wire_length)
{
	char text[DNSF_WIRE_TEXT_SIZE];
	const size_t fits = sizeof(event->qname) - 1;
	int whole = dnsf_wire_to_text(wire, wire_length, text);
	size_t length = strlen(text);

	if (length > 1 && text[length - 1] == '.') /* the root stays "." */
		length--;
	if (length <= fits) {
		memcpy(event->qname, text, length);
		event->qname[length] = 0;
		return whole;
	}
	/* cut where "..." still fits, not inside a \DDD (the only use of '\\') */
	size_t cut = fits - 3;
	for (size_t back = 1; back <= 3; back++)
		if (text[cut - back] == '\\') {
			cut -= back;
			break;
		}
	memcpy(event->qname, text, cut);
	memcpy(event->qname + cut, "...", 4);
	return 0;
}
