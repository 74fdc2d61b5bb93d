/*
 * cache.c - everything the module takes out of Unbound's caches: the
 * answers (and rrsets) of names the feed blocks or monitors, directly or
 * through their alias chain. Removal, not expiry, so serve-expired cannot
 * bring them back.
 *
 * The purge walks both caches: at init (no worker running; after
 * reload_keep_cache they hold the old feed's answers) at once, and in a
 * worker thread after the feed or an entry's window changed (the watcher
 * asks for it and wakes a worker, wake.c) a slice at a time: at most
 * DNSFILTER_PURGE_SLICE_MS of walking and 256 removals, then the worker
 * answers queries again and wakes itself for the next slice. A newer
 * request starts the walk over against the feed then in force. Single questions are removed after
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
 * blocks or monitors, found in one slice of the walk. */
struct purge {
	struct feed_view view;
	int match_cname;
	int64_t now;
	/* only names it covers can be newly listed (NULL: any) */
	const struct dnsf_delta *delta;
	size_t candidates;
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
		view_chain_decision(view, NULL, rep, now, &decision);
		rrset_array_unlock(rep->ref, rep->rrset_count);
	}
	return decision.verdict == DNSF_VERDICT_BLOCK || decision.verdict == DNSF_VERDICT_MONITOR;
}

static int in_delta(const struct dnsf_delta *delta, const uint8_t *name, size_t length)
{
	struct dnsf_key key;

	return dnsf_key_from_wire(name, length, &key) && dnsf_delta_covers(delta, &key);
}

/* May the feed newly act on a cached message: is its name, or with
 * match-cname a name of its alias chain, in the delta? Far cheaper than
 * deciding: the delta is small. The entry is locked by the caller. */
static int message_in_delta(const struct purge *purge, const struct msgreply_entry *entry)
{
	struct reply_info *rep = entry->entry.data;
	int found;

	if (in_delta(purge->delta, entry->key.qname, entry->key.qname_len))
		return 1;
	if (!purge->match_cname || !rep || !rrset_array_lock(rep->ref, rep->rrset_count, 0))
		return 0;
	found = 0;
	for (size_t i = 0; !found && i < rep->an_numrrsets && i < rep->rrset_count; i++) {
		const struct ub_packed_rrset_key *rrset = rep->rrsets[i];
		const uint8_t *target;
		size_t length;
		found = in_delta(purge->delta, rrset->rk.dname, rrset->rk.dname_len) ||
			((target = dnsfilter_alias_target(rrset, &length)) &&
			 in_delta(purge->delta, target, length));
	}
	rrset_array_unlock(rep->ref, rep->rrset_count);
	return found;
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
	if (entry->key.qclass != LDNS_RR_CLASS_IN)
		return;
	if (purge->delta && !message_in_delta(purge, entry))
		return;
	purge->candidates++;
	if (!message_acts(&purge->view, purge->match_cname, purge->now, entry))
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
	    (purge->delta && !in_delta(purge->delta, rrset->rk.dname, rrset->rk.dname_len)) ||
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

static double ms_between(const struct timespec *from, const struct timespec *to)
{
	return (double)(to->tv_sec - from->tv_sec) * 1e3 +
	       (double)(to->tv_nsec - from->tv_nsec) / 1e6;
}

/* Examine the entries of one bin: the table lock is held only to reach the
 * bin, as in a lookup. Returns 0 past the table's last bin. A table only
 * grows, splitting bin i into i and i + old size, so a walk that goes on
 * later from a bin number misses no entry. */
static int purge_bin(struct purge *purge, struct lruhash *table, size_t bin, int rrsets)
{
	lock_quick_lock(&table->lock);
	if (bin >= table->size) {
		lock_quick_unlock(&table->lock);
		return 0;
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
	return 1;
}

/* The table of the walk's place, or NULL past the last of its phase. */
static struct lruhash *job_table(struct module_env *env, const struct purge_job *job)
{
	if (job->phase == 0 && env->msg_cache && job->slab < env->msg_cache->size)
		return env->msg_cache->array[job->slab];
	if (job->phase == 1 && env->rrset_cache && job->slab < env->rrset_cache->table.size)
		return env->rrset_cache->table.array[job->slab];
	return NULL;
}

/* Remove what a slice found. Removal, not expiry: serve-expired cannot
 * bring them back. */
static void purge_remove(struct module_env *env, struct purge *purge)
{
	while (purge->rrsets) {
		struct cached_question *rrset = purge->rrsets;
		purge->rrsets = rrset->next;
		rrset_cache_remove(env->rrset_cache, rrset->name, rrset->length, rrset->qtype,
				   LDNS_RR_CLASS_IN, rrset->qclass);
		free(rrset);
	}
	while (purge->list) {
		struct cached_question *question = purge->list;
		purge->list = question->next;
		dnsfilter_remove_cached(env, question->name, question->length, question->qtype,
					question->qclass);
		free(question);
	}
}

/*
 * Walk on from the job's place for at most budget_ms (a negative budget:
 * to the end), against the feed in force now, and remove what the feed
 * acts on. The clock is read every few bins. Returns 1 when the walk is
 * done.
 */
static int purge_slice(struct module_env *env, const struct dnsfilter *filter,
		       struct purge_job *job, double budget_ms)
{
	struct purge purge = { .match_cname = filter->settings.match_cname,
			       .now = (int64_t)time(NULL),
			       .delta = job->delta };
	struct timespec start, now, cpu_start, cpu_now;
	unsigned bins = 0;
	double spent;

	clock_gettime(CLOCK_MONOTONIC, &start);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu_start);
	view_open(filter, &purge.view);
	while (job->phase < 2) {
		struct lruhash *table = job_table(env, job);
		if (!table) {
			job->phase++;
			job->slab = job->bin = 0;
			continue;
		}
		if (!purge_bin(&purge, table, job->bin, job->phase == 1)) {
			job->slab++;
			job->bin = 0;
			continue;
		}
		job->bin++;
		if (budget_ms < 0)
			continue;
		/* the removals after the walk count too: at most a few hundred */
		if (purge.found + purge.rrsets_found >= 256)
			break;
		if (++bins % 4 == 0) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			if (ms_between(&start, &now) >= budget_ms)
				break;
		}
	}
	view_close(&purge.view);
	purge_remove(env, &purge);
	clock_gettime(CLOCK_MONOTONIC, &now);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu_now);
	spent = ms_between(&start, &now);
	/* wall time includes the time the thread was not scheduled: the CPU
	 * time is what the slice itself cost */
	if (ms_between(&cpu_start, &cpu_now) > job->longest_cpu_ms)
		job->longest_cpu_ms = ms_between(&cpu_start, &cpu_now);
	job->candidates += purge.candidates;
	job->examined += purge.examined;
	job->removed += purge.found;
	job->rrsets_examined += purge.rrsets_examined;
	job->rrsets_removed += purge.rrsets_found;
	job->slices++;
	job->busy_ms += spent;
	if (spent > job->longest_ms)
		job->longest_ms = spent;
	return job->phase >= 2;
}

static void job_start(struct purge_job *job, uint64_t epoch)
{
	dnsf_delta_free(job->delta);
	memset(job, 0, sizeof(*job));
	job->active = 1;
	job->epoch = epoch;
	clock_gettime(CLOCK_MONOTONIC, &job->started);
}

static void job_log(const struct purge_job *job)
{
	struct timespec end;
	char scope[96] = "every cached name checked";

	if (job->delta)
		snprintf(scope, sizeof(scope),
			 "%zu cached answers under the %zu changed names checked", job->candidates,
			 dnsf_delta_count(job->delta));
	clock_gettime(CLOCK_MONOTONIC, &end);
	log_info("dnsfilter: cache purge: %zu cached answers examined, %zu removed, %.1f ms "
		 "(rrsets: %zu examined, %zu removed; %zu slices over %.1f ms, the longest "
		 "%.2f ms, %.2f ms of it on CPU; %s)",
		 job->examined, job->removed, job->busy_ms, job->rrsets_examined,
		 job->rrsets_removed, job->slices, ms_between(&job->started, &end), job->longest_ms,
		 job->longest_cpu_ms, scope);
}

void dnsfilter_purge_cache(struct module_env *env, const struct dnsfilter *filter)
{
	struct purge_job job = { 0 };

	/* at init no worker answers yet: the whole walk at once */
	job_start(&job, 0);
	purge_slice(env, filter, &job, -1);
	job_log(&job);
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
	int idle = 0, done;

	if (requested == atomic_load_explicit(&filter->purge_done, memory_order_relaxed))
		return;
	if (!atomic_compare_exchange_strong(&filter->purging, &idle, 1))
		return; /* another worker is at it */
	/* a newer request (a new feed, an entry's start) walks from the start
	 * again, against the feed in force */
	requested = atomic_load(&filter->purge_requested);
	if (!filter->job.active || filter->job.epoch != requested) {
		job_start(&filter->job, requested);
		/* the request's names, when it named them */
		pthread_mutex_lock(&filter->lock);
		if (filter->purge_delta_request == requested) {
			filter->job.delta = filter->purge_delta;
			filter->purge_delta = NULL;
		}
		pthread_mutex_unlock(&filter->lock);
	}
	done = purge_slice(env, filter, &filter->job, DNSFILTER_PURGE_SLICE_MS);
	if (done) {
		job_log(&filter->job);
		dnsf_delta_free(filter->job.delta);
		filter->job.delta = NULL;
		filter->job.active = 0;
		atomic_store(&filter->purge_done, filter->job.epoch);
	}
	atomic_store(&filter->purging, 0);
	if (!done)
		dnsfilter_wake_worker(filter); /* the next slice, after other queries */
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
