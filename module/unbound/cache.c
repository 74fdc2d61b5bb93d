/*
 * cache.c - removing cached answers that the feed in force blocks or
 * monitors: their name, or a name of their alias chain, is listed.
 *
 * Called at init (no worker running; after reload_keep_cache the cache
 * holds the old feed's answers) and from a worker thread after the feed
 * or an entry's window changed (purge.c). Removal, not expiry, so
 * serve-expired cannot bring them back.
 */
#include "config.h"

#include "services/cache/dns.h"
#include "services/cache/rrset.h"
#include "sldns/rrdef.h"
#include "util/data/msgreply.h"
#include "util/log.h"
#include "util/module.h"
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

/* The questions of cached messages that the feed now blocks or monitors. */
struct purge {
	struct feed_view view;
	int match_cname;
	int64_t now;
	struct cached_question *list;
	size_t examined, found;
};

static void purge_examine(struct purge *purge, struct msgreply_entry *entry)
{
	struct reply_info *rep = entry->entry.data;
	struct dnsf_decision decision;
	struct dnsf_key key;

	purge->examined++;
	if (entry->key.qclass != LDNS_RR_CLASS_IN)
		return;
	view_decide(&purge->view, entry->key.qname, entry->key.qname_len, purge->now, &decision,
		    &key);
	if (decision.verdict == DNSF_VERDICT_NONE && purge->match_cname && rep &&
	    rrset_array_lock(rep->ref, rep->rrset_count, 0)) {
		view_chain_decision(&purge->view, rep, purge->now, &decision);
		rrset_array_unlock(rep->ref, rep->rrset_count);
	}
	if (decision.verdict != DNSF_VERDICT_BLOCK && decision.verdict != DNSF_VERDICT_MONITOR)
		return;
	struct cached_question *question = malloc(sizeof(*question) + entry->key.qname_len);
	if (!question)
		return;
	question->qtype = entry->key.qtype;
	question->qclass = entry->key.qclass;
	question->length = entry->key.qname_len;
	memcpy(question->name, entry->key.qname, question->length);
	question->next = purge->list;
	purge->list = question;
	purge->found++;
}

/* Examine every entry of one table, a bin at a time: the table lock is
 * held only to reach a bin, as in a lookup. */
static void purge_table(struct purge *purge, struct lruhash *table)
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
			purge_examine(purge, e->key);
			lock_rw_unlock(&e->lock);
		}
		lock_quick_unlock(&b->lock);
	}
}

void dnsfilter_purge_cache(struct module_env *env, const struct dnsfilter_env *state)
{
	struct purge purge = { .match_cname = state->settings.match_cname,
			       .now = (int64_t)time(NULL) };
	struct slabhash *cache = env->msg_cache;
	struct timespec start, end;

	if (!cache)
		return;
	clock_gettime(CLOCK_MONOTONIC, &start);
	view_open(state, &purge.view);
	for (size_t slab = 0; slab < cache->size; slab++)
		purge_table(&purge, cache->array[slab]);
	view_close(&purge.view);
	/* Removal, not expiry: serve-expired cannot bring them back. */
	while (purge.list) {
		struct cached_question *question = purge.list;
		purge.list = question->next;
		dnsfilter_remove_cached(env, question->name, question->length, question->qtype,
					question->qclass);
		free(question);
	}
	clock_gettime(CLOCK_MONOTONIC, &end);
	log_info("dnsfilter: cache purge: %zu cached answers examined, %zu removed, %.1f ms",
		 purge.examined, purge.found,
		 (double)(end.tv_sec - start.tv_sec) * 1e3 +
		     (double)(end.tv_nsec - start.tv_nsec) / 1e6);
}
