/*
 * view.c - reading the published feed and opt-out set: a view is one grace
 * section (include/dnsfilter/grace.h) in which the pointers stay valid;
 * decisions for wire names and for the names of an answer's alias chain.
 */
#include "config.h"

#include "sldns/rrdef.h"
#include "util/data/msgparse.h"
#include "util/net_help.h"
#include "util/data/msgreply.h"
#include "util/data/packed_rrset.h"
#include "util/module.h"
#include "util/netevent.h"

#include <string.h>

#include "glue.h"

void view_open(const struct dnsfilter *filter, struct feed_view *view)
{
	view->filter = filter;
	dnsf_grace_enter(filter->grace, &view->section);
	/* sequentially consistent loads, after the section is entered */
	view->index = atomic_load((_Atomic(struct dnsf_index *) *)&filter->index);
	view->optout = atomic_load((_Atomic(struct dnsf_cidr_set *) *)&filter->optout);
}

void view_close(struct feed_view *view)
{
	dnsf_grace_leave(&view->section);
	view->index = NULL;
	view->optout = NULL;
}

int view_client_opted_out(const struct feed_view *view, const struct comm_reply *client)
{
	const struct sockaddr_storage *address = &client->client_addr;

	if (dnsfilter_arrived_at_service_address(&view->filter->settings, client))
		return 1;
	if (!view->optout)
		return 0;
	if (address->ss_family == AF_INET)
		return dnsf_cidr_set_contains(
		    view->optout, AF_INET,
		    &((const struct sockaddr_in *)(const void *)address)->sin_addr);
	if (address->ss_family == AF_INET6)
		return dnsf_cidr_set_contains(
		    view->optout, AF_INET6,
		    &((const struct sockaddr_in6 *)(const void *)address)->sin6_addr);
	return 0;
}

void view_decide(const struct feed_view *view, const uint8_t *name, size_t length, int64_t now,
		 struct dnsf_decision *decision, struct dnsf_key *key)
{
	memset(decision, 0, sizeof(*decision));
	if (dnsf_key_from_wire(name, length, key))
		dnsf_index_decide(view->index, key, now, decision);
}

const uint8_t *dnsfilter_alias_target(const void *rrset_pointer, size_t *length)
{
	const struct ub_packed_rrset_key *rrset = rrset_pointer;
	const struct packed_rrset_data *data = rrset->entry.data;
	uint16_t type = ntohs(rrset->rk.type);

	if ((type != LDNS_RR_TYPE_CNAME && type != LDNS_RR_TYPE_DNAME) || !data ||
	    data->count < 1 || data->rr_len[0] < 3)
		return NULL;
	*length = data->rr_len[0] - 2;
	return data->rr_data[0] + 2;
}

static int acts(enum dnsf_verdict verdict)
{
	return verdict == DNSF_VERDICT_BLOCK || verdict == DNSF_VERDICT_MONITOR;
}

void view_decide_memo(const struct feed_view *view, struct dnsf_memo *memo, const uint8_t *name,
		      size_t length, int64_t now, struct dnsf_decision *decision,
		      struct dnsf_key *key)
{
	struct dnsf_key own;

	if (memo && dnsf_memo_get(memo, view->index, name, length, now, decision))
		return;
	view_decide(view, name, length, now, decision, key ? key : &own);
	if (memo)
		dnsf_memo_put(memo, view->index, name, length, now, decision);
}

int view_acts_on_memo(const struct feed_view *view, struct dnsf_memo *memo, const uint8_t *name,
		      size_t length, int64_t now)
{
	struct dnsf_decision decision;

	view_decide_memo(view, memo, name, length, now, &decision, NULL);
	return acts(decision.verdict);
}

int view_acts_on(const struct feed_view *view, const uint8_t *name, size_t length, int64_t now)
{
	return view_acts_on_memo(view, NULL, name, length, now);
}

enum dnsf_verdict view_chain_decision(const struct feed_view *view, struct dnsf_memo *memo,
				      const struct reply_info *rep, int64_t now,
				      struct dnsf_decision *decision)
{
	for (size_t i = 0; i < rep->an_numrrsets && i < rep->rrset_count; i++) {
		const struct ub_packed_rrset_key *rrset = rep->rrsets[i];
		const uint8_t *target;
		size_t length;

		view_decide_memo(view, memo, rrset->rk.dname, rrset->rk.dname_len, now, decision,
				 NULL);
		if (acts(decision->verdict))
			return decision->verdict;
		target = dnsfilter_alias_target(rrset, &length);
		if (!target)
			continue;
		view_decide_memo(view, memo, target, length, now, decision, NULL);
		if (acts(decision->verdict))
			return decision->verdict;
	}
	memset(decision, 0, sizeof(*decision));
	return DNSF_VERDICT_NONE;
}
