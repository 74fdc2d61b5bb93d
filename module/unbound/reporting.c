/*
 * reporting.c - the module's side of the event log, counters and metrics
 * (the reporter, include/dnsfilter/report.h): Unbound's reply callbacks
 * count every client query Unbound answers (from the mesh, the cache,
 * local data, SERVFAILs), opted-out clients apart, and turn each answer
 * the module blocked or monitored into an event for that client.
 *
 * All of this runs in worker threads; the counters are per thread and the
 * events go to per-thread rings, so nothing here takes a lock.
 */
#include "config.h"

#include "dynlibmod/dynlibmod.h"
#include "util/data/msgreply.h"
#include "util/log.h"
#include "util/module.h"
#include "util/netevent.h"

#include <string.h>
#include <sys/time.h>

#include "dnsfilter/report.h"
#include "glue.h"

/* The reporter's error hook: into Unbound's log. */
static void log_reporter_error(void *arg, const char *message)
{
	(void)arg;
	log_err("dnsfilter: %s", message);
}

int dnsfilter_counting_start(struct dnsfilter *filter)
{
	const struct dnsf_settings *settings = &filter->settings;
	struct dnsf_report_settings report = {
		.log_path = settings->log_path,
		.client_ip = settings->log_client_ip,
		.stats_path = settings->stats_path,
		.stats_interval = settings->stats_interval,
		.metrics_path = settings->metrics_path,
		.log_error = log_reporter_error,
	};
	struct dnsf_errors errors = { 0 };

	if (!settings->log_path && !settings->stats_path && !settings->metrics_path)
		return 1; /* nothing to write: nothing to count */
	filter->reporter = dnsf_reporter_new(&report, &errors);
	if (!filter->reporter) {
		dnsfilter_log_errors(settings->source, &errors);
		dnsf_errors_clear(&errors);
		return 0;
	}
	dnsf_errors_clear(&errors);
	struct dnsf_index_info index;
	dnsf_index_info(atomic_load(&filter->index), &index);
	dnsf_reporter_set_feed(filter->reporter, index.serial);
	dnsf_reporter_set_mode(filter->reporter, filter->mode_in_force);
	dnsf_reporter_set_stale(filter->reporter, DNSF_STALE_FEED,
				filter->stale_since[DNSF_STALE_FEED]);
	dnsf_reporter_set_stale(filter->reporter, DNSF_STALE_OPTOUT,
				filter->stale_since[DNSF_STALE_OPTOUT]);
	if (!dnsf_reporter_start(filter->reporter)) {
		log_err("dnsfilter: cannot start the reporter thread");
		dnsf_reporter_free(filter->reporter);
		filter->reporter = NULL;
		return 0;
	}
	return 1;
}

void dnsfilter_counting_stop(struct dnsfilter *filter)
{
	if (!filter->reporter)
		return;
	if (dnsf_reporter_stop(filter->reporter)) {
		dnsf_reporter_free(filter->reporter);
	} else {
		/* its writer is stuck in a write (a dead network mount): leave
		 * it the reporter and the code rather than hang the stop */
		log_err("dnsfilter: the reporter's writer has not stopped in %d s (a write "
			"that does not return?); leaving it behind",
			DNSF_REPORT_STOP_MS / 1000);
		host_pin_module();
	}
	filter->reporter = NULL;
}

/* One event for one client of a blocked or monitored answer. */
static void report_event(struct dnsf_counters *counters, const struct query_info *qinfo,
			 const struct comm_reply *client, const struct dnsfilter_query *query)
{
	struct dnsf_event event;
	struct timeval now;

	memset(&event, 0, sizeof(event));
	gettimeofday(&now, NULL);
	event.time_ms = (int64_t)now.tv_sec * 1000 + now.tv_usec / 1000;
	dnsf_event_set_client(&event, (const struct sockaddr *)&client->client_addr);
	dnsf_event_set_qname_wire(&event, qinfo->qname, qinfo->qname_len);
	event.qtype = qinfo->qtype;
	memcpy(event.id, query->entry_id, sizeof(event.id));
	event.monitor = query->acted == DNSF_VERDICT_MONITOR;
	event.via_cname = query->via_cname;
	dnsf_report_match(counters, &event);
}

/* Every answer to a client passes here (all four reply callback kinds). */
static int on_answer(struct query_info *qinfo, struct module_qstate *qstate, struct reply_info *rep,
		     int rcode, struct edns_data *edns, struct edns_option **opt_list_out,
		     struct comm_reply *repinfo, struct regional *region,
		     struct timeval *start_time, int id, void *cb_arg)
{
	const struct dnsfilter *filter = cb_arg;
	struct dnsf_counters *counters;
	struct feed_view view;
	int opted_out;

	(void)rep, (void)rcode, (void)edns, (void)opt_list_out, (void)region, (void)start_time;
	if (!repinfo || !filter->reporter)
		return 1; /* not a client (internal lookups) */
	if (qinfo && dnsfilter_is_wake_query(qinfo->qname, qinfo->qname_len))
		return 1;
	counters = dnsf_reporter_thread(filter->reporter);
	/* every cache hit passes here: without opt-out settings there is no
	 * set to read, so no grace section either */
	opted_out = 0;
	if (filter->settings.optout_network_count || filter->settings.optout_file ||
	    filter->settings.service_address_count) {
		view_open(filter, &view);
		opted_out = view_client_opted_out(&view, repinfo);
		view_close(&view);
	}
	if (opted_out) {
		dnsf_count_optout(counters);
		return 1;
	}
	dnsf_count_query(counters);
	if (qstate && qinfo && qstate->minfo[id]) {
		const struct dnsfilter_query *query = qstate->minfo[id];
		if (query->acted == DNSF_VERDICT_BLOCK || query->acted == DNSF_VERDICT_MONITOR)
			report_event(counters, qinfo, repinfo, query);
	}
	return 1;
}

static const struct host_callback answer_callbacks[] = {
	{ inplace_cb_reply, (void *)on_answer },
	{ inplace_cb_reply_cache, (void *)on_answer },
	{ inplace_cb_reply_local, (void *)on_answer },
	{ inplace_cb_reply_servfail, (void *)on_answer },
};
#define ANSWER_CALLBACKS (sizeof(answer_callbacks) / sizeof(answer_callbacks[0]))

int dnsfilter_counting_register(struct dnsfilter *filter, struct module_env *env, int id)
{
	if (!filter->reporter)
		return 1;
	return host_register_callbacks(env, id, filter, answer_callbacks, ANSWER_CALLBACKS,
				       "reply");
}

void dnsfilter_counting_unregister(struct module_env *env, int id)
{
	host_unregister_callbacks(env, id, answer_callbacks, ANSWER_CALLBACKS);
}
