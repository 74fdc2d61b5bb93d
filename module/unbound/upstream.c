/*
 * upstream.c - keeping the real data of listed names out of Unbound's
 * caches, whichever query state fetches it.
 *
 * Unbound answers from its message cache before any module runs, and the
 * iterator stores answers under names the module never decided on: the
 * listed name itself on the way to a name below it (qname minimisation),
 * alias targets of answers the module lets pass, and the addresses of name
 * servers, which it resolves in sub-queries that start at the iterator and
 * never pass this module. A store is only harmless if it never happens.
 *
 * Two of Unbound's callbacks see every upstream exchange of every query
 * state, sub-queries included (verified in 1.17.1's source:
 * outnet_serviced_query and processQueryResponse):
 *   - inplace_cb_query, for each question sent upstream, with the state
 *     that sends it;
 *   - inplace_cb_query_response, for each response, before the iterator
 *     looks at it (and so before any store).
 * When the question, an rrset owner of the response or an alias target in
 * it is a name the feed blocks or monitors, the state gets no_cache_store:
 * the iterator and the validator then store nothing of it (the validator's
 * store of non-recursive referrals ignores the flag; the listed rrsets such
 * a response carried are removed from the rrset cache when the state ends).
 *
 * A feed may change while a state is in flight: the check above read the
 * old feed and the store comes after the purge that followed the change.
 * So each state remembers the feed epoch of its first check and the
 * questions it sent while it could store; when it ends (the module's
 * moddone, or clear for sub-queries) with the epoch moved, it rechecks
 * those cache entries against the feed in force. Why that is enough: the
 * purge walks the cache after the epoch moved, under the cache's bin
 * locks; a store it missed took the bin lock after the walk did, so the
 * state's end, later in the same thread, sees the new epoch.
 *
 * Nothing here runs on the cache-hit path.
 */
#include "config.h"

#include "dynlibmod/dynlibmod.h"
#include "services/cache/dns.h"
#include "services/cache/rrset.h"
#include "sldns/rrdef.h"
#include "util/data/msgreply.h"
#include "util/data/packed_rrset.h"
#include "util/log.h"
#include "util/module.h"
#include "util/regional.h"

#include <string.h>
#include <time.h>

#include "glue.h"

uint64_t dnsfilter_feed_epoch(const struct dnsfilter *filter)
{
	return atomic_load_explicit((_Atomic uint64_t *)&filter->purge_requested,
				    memory_order_acquire);
}

/* The state's record, made here for states the module never saw. */
static struct dnsfilter_query *query_of(struct module_qstate *qstate, int id)
{
	struct dnsfilter_query *query = qstate->minfo[id];

	if (!query) {
		query = regional_alloc_zero(qstate->region, sizeof(*query));
		qstate->minfo[id] = query;
	}
	return query;
}

static void note_epoch(struct dnsfilter_query *query, uint64_t epoch)
{
	if (!query->epoch_set) {
		query->epoch = epoch;
		query->epoch_set = 1;
	}
}

/* Add a name to a list in the state's region; 0 when full or out of memory. */
static int remember(struct regional *region, struct remembered_name **list, size_t *count,
		    const uint8_t *name, size_t length, uint16_t type, uint16_t rrclass)
{
	struct remembered_name *item;

	for (item = *list; item; item = item->next)
		if (item->type == type && item->rrclass == rrclass && item->length == length &&
		    memcmp(item->name, name, length) == 0)
			return 1;
	if (*count >= DNSFILTER_MAX_REMEMBERED)
		return 0;
	item = regional_alloc(region, sizeof(*item));
	if (!item || !(item->name = regional_alloc_init(region, name, length)))
		return 0;
	item->type = type;
	item->rrclass = rrclass;
	item->length = length;
	item->next = *list;
	*list = item;
	(*count)++;
	return 1;
}

/* A question is about to go upstream. */
static int on_upstream_query(struct query_info *qinfo, uint16_t flags, struct module_qstate *qstate,
			     struct sockaddr_storage *addr, socklen_t addrlen, uint8_t *zone,
			     size_t zonelen, struct regional *region, int id, void *cb_arg)
{
	const struct dnsfilter *filter = cb_arg;
	struct dnsfilter_query *query = query_of(qstate, id);
	struct feed_view view;
	uint64_t epoch = dnsfilter_feed_epoch(filter);
	int acts;

	(void)flags, (void)addr, (void)addrlen, (void)zone, (void)zonelen, (void)region;
	if (!query) {
		qstate->no_cache_store = 1; /* out of memory: store nothing */
		return 1;
	}
	note_epoch(query, epoch);
	view_open(filter, &view);
	acts = view_acts_on_memo(&view, &query->memo, qinfo->qname, qinfo->qname_len,
				 (int64_t)*qstate->env->now);
	view_close(&view);
	if (acts)
		qstate->no_cache_store = 1;
	else if (!qstate->no_cache_store &&
		 !remember(qstate->region, &query->asked, &query->asked_count, qinfo->qname,
			   qinfo->qname_len, qinfo->qtype, qinfo->qclass))
		qstate->no_cache_store = 1; /* cannot recheck it later: do not store */
	return 1;
}

/* Does the rrset carry a listed name: its owner, or its alias target? */
static int rrset_acts(const struct feed_view *view, struct dnsf_memo *memo,
		      const struct ub_packed_rrset_key *rrset, int64_t now)
{
	const uint8_t *target;
	size_t length;

	if (view_acts_on_memo(view, memo, rrset->rk.dname, rrset->rk.dname_len, now))
		return 1;
	target = dnsfilter_alias_target(rrset, &length);
	return target && view_acts_on_memo(view, memo, target, length, now);
}

/* A response came back, before the iterator looks at it. */
static int on_upstream_response(struct module_qstate *qstate, struct dns_msg *response, int id,
				void *cb_arg)
{
	const struct dnsfilter *filter = cb_arg;
	struct dnsfilter_query *query;
	struct feed_view view;
	int64_t now = (int64_t)*qstate->env->now;
	uint64_t epoch;

	if (!response || !response->rep)
		return 1;
	epoch = dnsfilter_feed_epoch(filter);
	query = query_of(qstate, id);
	if (!query) {
		qstate->no_cache_store = 1;
		return 1;
	}
	note_epoch(query, epoch);
	view_open(filter, &view);
	if (view_acts_on_memo(&view, &query->memo, response->qinfo.qname, response->qinfo.qname_len,
			      now))
		qstate->no_cache_store = 1;
	for (size_t i = 0; i < response->rep->rrset_count; i++) {
		const struct ub_packed_rrset_key *rrset = response->rep->rrsets[i];
		if (!rrset_acts(&view, &query->memo, rrset, now))
			continue;
		qstate->no_cache_store = 1;
		if (view_acts_on_memo(&view, &query->memo, rrset->rk.dname, rrset->rk.dname_len,
				      now))
			remember(qstate->region, &query->listed, &query->listed_count,
				 rrset->rk.dname, rrset->rk.dname_len, ntohs(rrset->rk.type),
				 ntohs(rrset->rk.rrset_class));
	}
	view_close(&view);
	return 1;
}

void dnsfilter_upstream_close(struct module_qstate *qstate, int id)
{
	struct dynlibmod_env *de = qstate->env->modinfo[id];
	const struct dnsfilter *filter = de ? de->dyn_env : NULL;
	struct dnsfilter_query *query = qstate->minfo[id];
	struct module_env *env = qstate->env;

	if (!filter || !query || !env->msg_cache || !env->rrset_cache)
		return;
	for (struct remembered_name *item = query->listed; item; item = item->next)
		rrset_cache_remove(env->rrset_cache, item->name, item->length, item->type,
				   item->rrclass, 0);
	query->listed = NULL;
	query->listed_count = 0;
	if (!query->epoch_set || dnsfilter_feed_epoch(filter) == query->epoch)
		return;
	/* In flight across a change of the feed: recheck what it stored. */
	struct feed_view view;
	int64_t now = env->now ? (int64_t)*env->now : (int64_t)time(NULL);
	size_t removed = 0;

	query->epoch = dnsfilter_feed_epoch(filter);
	view_open(filter, &view);
	removed += (size_t)dnsfilter_purge_question(env, &view, now, qstate->qinfo.qname,
						    qstate->qinfo.qname_len, qstate->qinfo.qtype,
						    qstate->qinfo.qclass);
	for (struct remembered_name *item = query->asked; item; item = item->next)
		removed += (size_t)dnsfilter_purge_question(
		    env, &view, now, item->name, item->length, item->type, item->rrclass);
	view_close(&view);
	if (removed)
		verbose(VERB_ALGO,
			"dnsfilter: %zu answers stored in flight across a feed "
			"change removed",
			removed);
}

static const struct host_callback upstream_callbacks[] = {
	{ inplace_cb_query, (void *)on_upstream_query },
	{ inplace_cb_query_response, (void *)on_upstream_response },
};
#define UPSTREAM_CALLBACKS (sizeof(upstream_callbacks) / sizeof(upstream_callbacks[0]))

int dnsfilter_upstream_register(struct dnsfilter *filter, struct module_env *env, int id)
{
	return host_register_callbacks(env, id, filter, upstream_callbacks, UPSTREAM_CALLBACKS,
				       "upstream");
}

void dnsfilter_upstream_unregister(struct module_env *env, int id)
{
	host_unregister_callbacks(env, id, upstream_callbacks, UPSTREAM_CALLBACKS);
}
