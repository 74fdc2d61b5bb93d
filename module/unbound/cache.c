/*
 * cache.c - everything the module takes out of Unbound's caches: the
 * answers (and rrsets) of names the feed blocks or monitors, directly or
 * through their alias chain. Removal, not expiry, so serve-expired cannot
 * bring them back.
 *
 * The purge walks both caches: at init (no worker running; after
 * reload_keep_cache they hold the old feed's answers) and in a worker
 * thread after the feed or an entry's window changed (the watcher asks
 * for it and wakes a worker, wake.c). Single questions are removed after
 * an answer the module acted on (module.c) and when a resolution ends that
 * was in flight across a change of the feed (upstream.c).
 */
#include "config.h"

#include "services/cache/dns.h"
#include "services/cache/rrset.h"
#include "sldns/rrdef.h"
#include "util/data/msgreply.h"
#include "util/log.h"
#include "util/module.h"
#include "util/net_help.h"
#include "util/netevent.h"
#include "util/storage/lruhash.h"
#include "util/storage/slabhash.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "glue.h"

/* A message cache key copied out of the cache, for removal after the walk. */
struct cached_question {
	struct cached_question *next;
	uint16_t qtype, qclass;
	size_t length;
	uint8_t name[];
};

/* The questions of cached messages (and the rrsets) that the feed now
 * blocks or monitors. */
struct purge {
	struct feed_view view;
	int match_cname;
	int64_t now;
	struct cached_question *list;
	size_t examined, found;
	struct cached_question *rrsets;
	size_t rrsets_examined, rrsets_found;
};

/* Does the feed act on a cached message: its name or, with match-cname,
 * a name of its alias chain? The entry is locked by the caller. */
static int message_acts(const struct feed_view *view, int match_cname, int64_t now,
			const struct msgreply_entry *entry)
{
	struct reply_info *rep = entry->entry.data;
	struct dnsf_decision decision;
	struct dnsf_key key;

	view_decide(view, entry->key.qname, entry->key.qname_len, now, &decision, &key);
	if (decision.verdict == DNSF_VERDICT_NONE && match_cname && rep &&
	    rrset_array_lock(rep->ref, rep->rrset_count, 0)) {
		view_chain_decision(view, rep, now, &decision);
		rrset_array_unlock(rep->ref, rep->rrset_count);
	}
	return decision.verdict == DNSF_VERDICT_BLOCK || decision.verdict == DNSF_VERDICT_MONITOR;
}

static struct cached_question *copy_question(const uint8_t *name, size_t length, uint16_t qtype,
					     uint16_t qclass)
{
	struct cached_question *question = malloc(sizeof(*question) + length);

	if (!question)
		return NULL;
	question->qtype = qtype;
	question->qclass = qclass;
	question->length = length;
	memcpy(question->name, name, length);
	return question;
}

static void purge_examine(struct purge *purge, struct msgreply_entry *entry)
{
	purge->examined++;
	if (entry->key.qclass != LDNS_RR_CLASS_IN ||
	    !message_acts(&purge->view, purge->match_cname, purge->now, entry))
		return;
	struct cached_question *question = copy_question(entry->key.qname, entry->key.qname_len,
							 entry->key.qtype, entry->key.qclass);
	if (!question)
		return;
	question->next = purge->list;
	purge->list = question;
	purge->found++;
}

/* An rrset of a listed name: only clients that may ask without recursion
 * (allow_snoop) could read it, and messages that refer to it; it goes. */
static void purge_examine_rrset(struct purge *purge, struct ub_packed_rrset_key *rrset)
{
	purge->rrsets_examined++;
	if (ntohs(rrset->rk.rrset_class) != LDNS_RR_CLASS_IN ||
	    !view_acts_on(&purge->view, rrset->rk.dname, rrset->rk.dname_len, purge->now))
		return;
	struct cached_question *question =
	    copy_question(rrset->rk.dname, rrset->rk.dname_len, ntohs(rrset->rk.type),
			  ntohs(rrset->rk.rrset_class));
	if (!question)
		return;
	/* the flags are part of the rrset's key; keep them in qclass' place */
	question->qclass = (uint16_t)rrset->rk.flags;
	question->next = purge->rrsets;
	purge->rrsets = question;
	purge->rrsets_found++;
}

/* Examine every entry of one table, a bin at a time: the table lock is
 * held only to reach a bin, as in a lookup. */
static void purge_table(struct purge *purge, struct lruhash *table, int rrsets)
{
	for (size_t bin = 0;; bin++) {
		lock_quick_lock(&table->lock);
		if (bin >= table->size) {
			lock_quick_unlock(&table->lock);
			return;
		}
		struct lruhash_bin *b = &table->array[bin];
		lock_quick_lock(&b->lock);
		lock_quick_unlock(&table->lock);
		for (struct lruhash_entry *e = b->overflow_list; e; e = e->overflow_next) {
			lock_rw_rdlock(&e->lock);
			if (rrsets)
				purge_examine_rrset(purge, e->key);
			else
				purge_examine(purge, e->key);
			lock_rw_unlock(&e->lock);
		}
		lock_quick_unlock(&b->lock);
	}
}

void dnsfilter_purge_cache(struct module_env *env, const struct dnsfilter *filter)
{
	struct purge purge = { .match_cname = filter->settings.match_cname,
			       .now = (int64_t)time(NULL) };
	struct slabhash *cache = env->msg_cache;
	struct timespec start, end;

	if (!cache)
		return;
	clock_gettime(CLOCK_MONOTONIC, &start);
	view_open(filter, &purge.view);
	for (size_t slab = 0; slab < cache->size; slab++)
		purge_table(&purge, cache->array[slab], 0);
	if (env->rrset_cache)
		for (size_t slab = 0; slab < env->rrset_cache->table.size; slab++)
			purge_table(&purge, env->rrset_cache->table.array[slab], 1);
	view_close(&purge.view);
	while (purge.rrsets) {
		struct cached_question *rrset = purge.rrsets;
		purge.rrsets = rrset->next;
		rrset_cache_remove(env->rrset_cache, rrset->name, rrset->length, rrset->qtype,
				   LDNS_RR_CLASS_IN, rrset->qclass);
		free(rrset);
	}
	/* Removal, not expiry: serve-expired cannot bring them back. */
	while (purge.list) {
		struct cached_question *question = purge.list;
		purge.list = question->next;
		dnsfilter_remove_cached(env, question->name, question->length, question->qtype,
					question->qclass);
		free(question);
	}
	clock_gettime(CLOCK_MONOTONIC, &end);
	log_info("dnsfilter: cache purge: %zu cached answers examined, %zu removed, %.1f ms "
		 "(rrsets: %zu examined, %zu removed)",
		 purge.examined, purge.found,
		 (double)(end.tv_sec - start.tv_sec) * 1e3 +
		     (double)(end.tv_nsec - start.tv_nsec) / 1e6,
		 purge.rrsets_examined, purge.rrsets_found);
}

/* Look one message up (any TTL) and tell whether the feed acts on it. */
static int cached_message_acts(struct module_env *env, const struct feed_view *view, int64_t now,
			       struct query_info *question, uint16_t flags)
{
	struct lruhash_entry *e =
	    slabhash_lookup(env->msg_cache, query_info_hash(question, flags), question, 0);
	int acts;

	if (!e)
		return 0;
	acts = message_acts(view, view->filter->settings.match_cname, now, e->key);
	lock_rw_unlock(&e->lock);
	return acts;
}

int dnsfilter_purge_question(struct module_env *env, const struct feed_view *view, int64_t now,
			     const uint8_t *name, size_t length, uint16_t qtype, uint16_t qclass)
{
	struct query_info question = {
		.qname = (uint8_t *)name, .qname_len = length, .qtype = qtype, .qclass = qclass
	};
	int acts;

	if (qclass != LDNS_RR_CLASS_IN)
		return 0;
	acts = view_acts_on(view, name, length, now);
	if (acts)
		rrset_cache_remove(env->rrset_cache, (uint8_t *)name, length, qtype, qclass, 0);
	acts =
	    acts || cached_message_acts(env, view, now, &question, 0) ||
	    (qtype == LDNS_RR_TYPE_AAAA && cached_message_acts(env, view, now, &question, BIT_CD));
	if (acts)
		dnsfilter_remove_cached(env, name, length, qtype, qclass);
	return acts;
}

void dnsfilter_purge_if_requested(struct module_env *env, struct dnsfilter *filter)
{
	uint64_t requested = atomic_load_explicit(&filter->purge_requested, memory_order_acquire);
	int idle = 0;

	if (requested == atomic_load_explicit(&filter->purge_done, memory_order_relaxed))
		return;
	if (!atomic_compare_exchange_strong(&filter->purging, &idle, 1))
		return; /* another worker is at it */
	requested = atomic_load(&filter->purge_requested);
	dnsfilter_purge_cache(env, filter);
	atomic_store(&filter->purge_done, requested);
	atomic_store(&filter->purging, 0);
}

void dnsfilter_remove_cached(struct module_env *env, const uint8_t *name, size_t length,
			     uint16_t qtype, uint16_t qclass)
{
	msg_cache_remove(env, (uint8_t *)name, length, qtype, qclass, 0);
	if (qtype == LDNS_RR_TYPE_AAAA)
		msg_cache_remove(env, (uint8_t *)name, length, qtype, qclass, BIT_CD);
}

void cache_remove_answer(struct module_qstate *qstate, const struct reply_info *rep)
{
	const struct query_info *qinfo = &qstate->qinfo;

	/* the iterator stored it under the question and every alias target */
	dnsfilter_remove_cached(qstate->env, qinfo->qname, qinfo->qname_len, qinfo->qtype,
				qinfo->qclass);
	for (size_t i = 0; i < rep->an_numrrsets && i < rep->rrset_count; i++) {
		size_t length;
		const uint8_t *target = dnsfilter_alias_target(rep->rrsets[i], &length);
		if (target)
			dnsfilter_remove_cached(qstate->env, target, length, qinfo->qtype,
						qinfo->qclass);
	}
}
