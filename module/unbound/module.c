/*
 * module.c - the six dynlib entry points of unbound-dnsfilter and the way
 * of one query through them.
 *
 * init loads the settings, the feed and the opt-out networks, starts the
 * watcher and the reporter and registers Unbound's callbacks; deinit undoes
 * it all before Unbound unloads the module (at every reload).
 *
 * operate, for a new query: decide (decision.c), then answer with the
 * sinkhole (answer.c) or pass it on to the validator and the iterator.
 * When their answer comes back (moddone): close what the upstream
 * callbacks opened (upstream.c), decide again on the answer, then take
 * cached copies out (cache.c) and answer with the sinkhole, or let the
 * real answer go. Each stop records what it did for the events
 * (reporting.c). Reading the feed goes through a view (view.c).
 */
#include "config.h"

#include "dynlibmod/dynlibmod.h"
#include "services/cache/dns.h"
#include "sldns/rrdef.h"
#include "util/data/msgreply.h"
#include "util/log.h"
#include "util/module.h"
#include "util/regional.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dnsfilter/lastgood.h"
#include "dnsfilter/timeparse.h"
#include "glue.h"

#define EXPORT __attribute__((visibility("default")))

EXPORT int init(struct module_env *env, int id);
EXPORT void deinit(struct module_env *env, int id);
EXPORT void operate(struct module_qstate *qstate, enum module_ev event, int id,
		    struct outbound_entry *outbound);
EXPORT void inform_super(struct module_qstate *qstate, int id, struct module_qstate *super);
EXPORT void clear(struct module_qstate *qstate, int id);
EXPORT size_t get_mem(struct module_env *env, int id);

static struct dnsfilter *module_filter(struct module_env *env, int id)
{
	struct dynlibmod_env *de = env->modinfo[id];
	return de ? de->dyn_env : NULL;
}

static void free_filter(struct dnsfilter *filter)
{
	if (!filter)
		return;
	if (!dnsfilter_watcher_stop(filter)) {
		/* the watcher left behind uses all of it: a bounded leak, once
		 * per stuck stop, instead of a resolver that cannot stop */
		if (filter->reporter)
			dnsf_reporter_stop(filter->reporter);
		return;
	}
	dnsfilter_counting_stop(filter);
	dnsf_delta_free(filter->purge_delta);
	dnsf_delta_free(filter->job.delta);
	dnsf_index_free(atomic_load(&filter->index));
	dnsf_cidr_set_free(atomic_load(&filter->optout));
	dnsf_grace_free(filter->grace);
	dnsf_settings_free(&filter->settings);
	free(filter->feed_copy);
	free(filter->feed_image);
	free(filter->optout_copy);
	free(filter);
}

static void log_loaded(const char *path, struct dnsfilter *filter)
{
	const struct dnsf_cidr_set *optout = atomic_load(&filter->optout);
	struct dnsf_index_info index;
	char settings_path[DNSFILTER_LOGGED_SIZE], feed_path[DNSFILTER_LOGGED_SIZE],
	    mode[64] = "enforce";
	/* not mode_in_force: the watcher runs already and owns it */
	enum dnsf_mode now = dnsf_settings_mode_at(&filter->settings, (int64_t)time(NULL));

	dnsf_index_info(atomic_load(&filter->index), &index);
	if (now == DNSF_MODE_MONITOR && filter->settings.enforce_from != DNSF_ENFORCE_FROM_NONE) {
		char when[32];
		dnsf_format_time(filter->settings.enforce_from, when);
		snprintf(mode, sizeof(mode), "monitor until %s", when);
	} else if (now == DNSF_MODE_MONITOR) {
		strcpy(mode, "monitor");
	}

	log_info("dnsfilter: %s (built for %s): feed %s: %zu entries, %zu names, "
		 "%zu wildcards, %zu allowed, serial %llu, %zu bytes; %zu opted-out "
		 "prefixes, %zu service addresses; watching every %u s; mode %s",
		 dnsfilter_logged(path, settings_path), dnsfilter_built_for,
		 dnsfilter_logged(filter->settings.feed, feed_path), index.entry_count,
		 index.exact_count + index.wildcard_count, index.wildcard_count, index.allow_count,
		 (unsigned long long)index.serial, index.memory_bytes,
		 optout ? dnsf_cidr_set_prefix_count(optout) : 0,
		 filter->settings.service_address_count, filter->settings.watch_interval, mode);
}

int init(struct module_env *env, int id)
{
	struct dynlibmod_env *de = env->modinfo[id];
	struct dnsf_errors errors = { 0 };
	struct dnsfilter *filter = NULL;
	struct dnsf_cidr_set *optout = NULL;
	struct dnsf_index *index;
	char *path, logged_path[DNSFILTER_LOGGED_SIZE];

	if (!host_check_version())
		return 0;
	filter = calloc(1, sizeof(*filter));
	path = host_settings_path();
	if (!filter || !path || !(filter->grace = dnsf_grace_new())) {
		log_err("dnsfilter: out of memory");
		goto fail;
	}
	if (!dnsf_settings_load(path, &filter->settings, &errors)) {
		dnsfilter_log_errors(path, &errors);
		log_err("dnsfilter: %s: settings rejected; not starting",
			dnsfilter_logged(path, logged_path));
		goto fail;
	}
	if (!dnsfilter_check_service_addresses(&filter->settings, env)) {
		log_err("dnsfilter: %s: settings rejected; not starting",
			dnsfilter_logged(path, logged_path));
		goto fail;
	}
	/* before enforce-from: monitor; the watcher switches at that moment */
	filter->mode_in_force = dnsf_settings_mode_at(&filter->settings, (int64_t)time(NULL));
	filter->feed_copy = dnsf_last_good_path(filter->settings.state_dir, filter->settings.feed);
	filter->feed_image =
	    dnsf_state_path(filter->settings.state_dir, filter->settings.feed, DNSF_IMAGE_SUFFIX);
	if (!filter->feed_copy || !filter->feed_image ||
	    (filter->settings.optout_file &&
	     !(filter->optout_copy = dnsf_last_good_path(filter->settings.state_dir,
							 filter->settings.optout_file)))) {
		log_err("dnsfilter: out of memory");
		goto fail;
	}
	/* The files' versions are read before the files, so that a change
	 * while they load is picked up by the watcher. A file that cannot be
	 * used is replaced by its last-good copy: a bad feed must not take
	 * DNS down at a reload. */
	file_version_read(filter->settings.feed, &filter->feed_version);
	if (filter->settings.optout_file)
		file_version_read(filter->settings.optout_file, &filter->optout_version);
	index = dnsfilter_load_feed(filter, 1);
	if (!index) {
		log_err("dnsfilter: %s: no usable feed and no last-good copy; not starting",
			dnsfilter_logged(filter->settings.feed, logged_path));
		goto fail;
	}
	atomic_store(&filter->index, index);
	if (!dnsfilter_load_optout(filter, 1, &optout)) {
		log_err("dnsfilter: no usable opt-out set and no last-good copy; not starting");
		goto fail;
	}
	atomic_store(&filter->optout, optout);
	filter->ede = filter->settings.ede && host_ede_enabled(env);
	dnsfilter_find_self_address(filter, env);
	if (!dnsfilter_counting_start(filter) || !dnsfilter_watcher_start(filter))
		goto fail;
	if (!dnsfilter_upstream_register(filter, env, id))
		goto fail;
	if (!dnsfilter_counting_register(filter, env, id)) {
		dnsfilter_upstream_unregister(env, id);
		goto fail;
	}
	de->dyn_env = filter;
	dnsfilter_trim_memory();
	log_loaded(path, filter);
	/* After reload_keep_cache the cache holds answers of the old feed. */
	dnsfilter_purge_cache(env, filter);
	free(path);
	dnsf_errors_clear(&errors);
	return 1;
fail:
	free(path);
	dnsf_errors_clear(&errors);
	free_filter(filter);
	return 0;
}

void deinit(struct module_env *env, int id)
{
	struct dynlibmod_env *de = env->modinfo[id];
	struct dnsfilter *filter = de ? de->dyn_env : NULL;

	if (!filter)
		return;
	/* Unbound unloads the module right after this: no callback may stay,
	 * and free_filter joins the watcher and the reporter's writer. */
	dnsfilter_upstream_unregister(env, id);
	dnsfilter_counting_unregister(env, id);
	free_filter(filter);
	de->dyn_env = NULL;
	dnsfilter_trim_memory();
}

/* Carry out what decision.c decided. */
static void carry_out(struct module_qstate *qstate, int id, const struct feed_view *view,
		      struct dnsfilter_query *query, const struct outcome *outcome)
{
	if (outcome->no_store)
		qstate->no_cache_store = 1;
	if (outcome->remove_cached && qstate->return_msg && qstate->return_msg->rep)
		cache_remove_answer(qstate, qstate->return_msg->rep);
	if (outcome->sinkhole && !answer_sinkhole(qstate, id, view, outcome))
		return;
	if (outcome->note != DNSF_VERDICT_NONE)
		decision_record(query, outcome, &qstate->qinfo);
}

/* Queries the module leaves alone: the resolver's own lookups, other classes. */
static int is_internal(const struct module_qstate *qstate)
{
	return qstate->is_priming || qstate->is_valrec || qstate->qinfo.qclass != LDNS_RR_CLASS_IN;
}

/* A state's first event: "new", or "pass" for the validator's sub-queries
 * that start at this module. */
static void on_new_query(struct module_qstate *qstate, int id, struct dnsfilter *filter,
			 struct dnsfilter_query *query)
{
	struct feed_view view;
	struct outcome outcome;

	if (!query)
		query = regional_alloc_zero(qstate->region, sizeof(*query));
	if (!query) {
		log_err("dnsfilter: out of memory");
		qstate->ext_state[id] = module_error;
		return;
	}
	qstate->minfo[id] = query;
	query->started = 1;
	qstate->ext_state[id] = module_wait_module;
	if (is_internal(qstate))
		return;
	if (dnsfilter_is_wake_query(qstate->qinfo.qname, qstate->qinfo.qname_len)) {
		/* it did its work by reaching a worker (see wake.c) */
		qstate->return_rcode = LDNS_RCODE_NXDOMAIN;
		qstate->ext_state[id] = module_finished;
		return;
	}
	view_open(filter, &view);
	decide_query(qstate, &view, query, &outcome);
	carry_out(qstate, id, &view, query, &outcome);
	view_close(&view);
}

/* The validator and the iterator are done: the real answer is back. */
static void on_answer(struct module_qstate *qstate, int id, struct dnsfilter *filter,
		      struct dnsfilter_query *query)
{
	struct feed_view view;
	struct outcome outcome;

	qstate->ext_state[id] = module_finished;
	if (!query)
		return;
	dnsfilter_upstream_close(qstate, id);
	if (is_internal(qstate))
		return;
	view_open(filter, &view);
	decide_answer(qstate, &view, query, &outcome);
	carry_out(qstate, id, &view, query, &outcome);
	view_close(&view);
}

void operate(struct module_qstate *qstate, enum module_ev event, int id,
	     struct outbound_entry *outbound)
{
	struct dnsfilter *filter = module_filter(qstate->env, id);
	struct dnsfilter_query *query = qstate->minfo[id];

	(void)outbound;
	dnsfilter_purge_if_requested(qstate->env, filter);
	if (event == module_event_new ||
	    (event == module_event_pass && (!query || !query->started)))
		on_new_query(qstate, id, filter, query);
	else if (event == module_event_moddone)
		on_answer(qstate, id, filter, query);
	else {
		log_err("dnsfilter: unexpected event %s", strmodulevent(event));
		qstate->ext_state[id] = module_error;
	}
}

void inform_super(struct module_qstate *qstate, int id, struct module_qstate *super)
{
	/* The module starts no subqueries. */
	(void)qstate;
	(void)id;
	(void)super;
}

void clear(struct module_qstate *qstate, int id)
{
	/* The end of every query state, the iterator's own sub-queries too. */
	dnsfilter_upstream_close(qstate, id);
	/* Per-query data lives in the query's region. */
	qstate->minfo[id] = NULL;
}

size_t get_mem(struct module_env *env, int id)
{
	const struct dnsfilter *filter = module_filter(env, id);
	struct feed_view view;
	size_t bytes;

	if (!filter)
		return 0;
	struct dnsf_index_info index;

	view_open(filter, &view);
	dnsf_index_info(view.index, &index);
	bytes = sizeof(*filter) + index.memory_bytes +
		(view.optout ? dnsf_cidr_set_memory(view.optout) : 0);
	view_close(&view);
	return bytes;
}
