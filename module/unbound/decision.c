/*
 * decision.c - what the module does with a query and, when the real
 * answer comes back, with the answer. It only decides (struct outcome);
 * module.c carries it out with answer.c and cache.c.
 *
 * A new query: a listed name (blocked, after the global mode) gets the
 * sinkhole; a monitored one, one of a type the module passes, or one asked
 * by an opted-out client passes on, and its real answer is not stored, so
 * the next query for the name reaches the module again.
 *
 * An answer: the name is decided again with the feed in force now: it may
 * have been listed while the query was in flight (a swap, an entry's
 * start), and clients that joined the resolution since were never decided
 * on. Unbound joins identical queries of several clients into one
 * resolution: when one of a listed name also has a filtered client, every
 * client gets the sinkhole (fail safe). Then an alias chain that leads to
 * a listed name (match-cname) is acted on.
 *
 * What is recorded for the events (decision_record) is per resolution;
 * reporting.c turns it into an event for each filtered client of it and
 * none for an opted-out one. So a match is recorded whenever any client
 * is filtered, whichever client came first.
 */
#include "config.h"

#include "services/cache/dns.h"
#include "services/mesh.h"
#include "sldns/rrdef.h"
#include "sldns/wire2str.h"
#include "util/data/msgreply.h"
#include "util/log.h"
#include "util/module.h"
#include "util/netevent.h"

#include <stdio.h>
#include <string.h>

#include "glue.h"

/* Does the module act on this query type at all? */
static int filters_qtype(const struct dnsf_settings *settings, uint16_t qtype)
{
	if (qtype == LDNS_RR_TYPE_A || qtype == LDNS_RR_TYPE_AAAA || qtype == LDNS_RR_TYPE_ANY)
		return 1;
	return settings->other_types != DNSF_OTHER_PASS;
}

/* Block or monitor, after the global mode in force now (monitor before
 * enforce-from): the action the module takes. Judged at query time, as an
 * entry's window is, so the switch needs no reload. */
static enum dnsf_verdict effective_verdict(const struct dnsfilter *filter,
					   enum dnsf_verdict verdict, int64_t now)
{
	if (verdict == DNSF_VERDICT_BLOCK &&
	    dnsf_settings_mode_at(&filter->settings, now) == DNSF_MODE_MONITOR)
		return DNSF_VERDICT_MONITOR;
	return verdict;
}

static int acts(enum dnsf_verdict verdict)
{
	return verdict == DNSF_VERDICT_BLOCK || verdict == DNSF_VERDICT_MONITOR;
}

/* The first client of the query, or NULL (prefetch, internal queries). */
static const struct comm_reply *first_client(const struct module_qstate *qstate)
{
	const struct mesh_reply *reply = qstate->mesh_info ? qstate->mesh_info->reply_list : NULL;
	return reply ? &reply->query_reply : NULL;
}

/* Is any client waiting for this query filtered (not opted out)? A query
 * with no client (a prefetch) counts as filtered: it fills the cache that
 * filtered clients read. */
static int has_filtered_client(const struct module_qstate *qstate, const struct feed_view *view)
{
	const struct mesh_reply *reply = qstate->mesh_info ? qstate->mesh_info->reply_list : NULL;

	if (!reply)
		return 1;
	for (; reply; reply = reply->next)
		if (!view_client_opted_out(view, &reply->query_reply))
			return 1;
	return 0;
}

void decide_query(const struct module_qstate *qstate, const struct feed_view *view,
		  struct dnsfilter_query *query, struct outcome *outcome)
{
	const struct comm_reply *client = first_client(qstate);
	int64_t now = (int64_t)*qstate->env->now;

	memset(outcome, 0, sizeof(*outcome));
	view_decide(view, qstate->qinfo.qname, qstate->qinfo.qname_len, now, &outcome->decision,
		    &outcome->key);
	query->verdict = effective_verdict(view->filter, outcome->decision.verdict, now);
	query->opted_out = client && view_client_opted_out(view, client);
	if (query->verdict == DNSF_VERDICT_BLOCK && !query->opted_out &&
	    filters_qtype(&view->filter->settings, qstate->qinfo.qtype)) {
		/* answered now: nothing more is decided for this state */
		outcome->sinkhole = 1;
		outcome->note = DNSF_VERDICT_BLOCK;
		return;
	}
	/* it goes on: the callbacks and the answer ask about the name again */
	dnsf_memo_put(&query->memo, view->index, qstate->qinfo.qname, qstate->qinfo.qname_len, now,
		      &outcome->decision);
	if (!acts(query->verdict))
		return;
	outcome->no_store = 1;
	if (!query->opted_out && query->verdict == DNSF_VERDICT_MONITOR)
		outcome->note = DNSF_VERDICT_MONITOR;
}

void decide_answer(const struct module_qstate *qstate, const struct feed_view *view,
		   struct dnsfilter_query *query, struct outcome *outcome)
{
	const struct dnsf_settings *settings = &view->filter->settings;
	const struct dns_msg *msg = qstate->return_msg;
	int64_t now = (int64_t)*qstate->env->now;
	enum dnsf_verdict verdict;

	memset(outcome, 0, sizeof(*outcome));
	view_decide_memo(view, &query->memo, qstate->qinfo.qname, qstate->qinfo.qname_len, now,
			 &outcome->decision, &outcome->key);
	verdict = effective_verdict(view->filter, outcome->decision.verdict, now);
	if (acts(verdict)) {
		/* Listed while in flight: what the resolution stored goes. */
		outcome->remove_cached = !acts(query->verdict);
		if (!has_filtered_client(qstate, view))
			return;
		if (verdict == DNSF_VERDICT_BLOCK && filters_qtype(settings, qstate->qinfo.qtype)) {
			outcome->sinkhole = 1;
			outcome->note = DNSF_VERDICT_BLOCK;
		} else if (query->acted == DNSF_VERDICT_NONE) {
			/* also when an opted-out client began it: the filtered
			 * clients that joined get their monitor events */
			outcome->note = DNSF_VERDICT_MONITOR;
		}
		return;
	}
	if (verdict != DNSF_VERDICT_NONE || !settings->match_cname || !msg || !msg->rep)
		return;
	verdict = effective_verdict(
	    view->filter,
	    view_chain_decision(view, &query->memo, msg->rep, now, &outcome->decision), now);
	if (verdict == DNSF_VERDICT_NONE)
		return;
	/* Cached copies would reach later clients without the module. */
	outcome->remove_cached = 1;
	if (!has_filtered_client(qstate, view) || !filters_qtype(settings, qstate->qinfo.qtype))
		return;
	outcome->via_cname = 1;
	outcome->note = verdict;
	outcome->sinkhole = verdict == DNSF_VERDICT_BLOCK;
}

void decision_record(struct dnsfilter_query *query, const struct outcome *outcome,
		     const struct query_info *qinfo)
{
	const struct dnsf_entry *entry = &outcome->decision.entry;
	char name[DNSF_KEY_MAX * 4 + 2], type[16], id[DNSF_FEED_ID_MAX * 6 + 1];
	struct dnsf_key key;

	query->acted = outcome->note;
	query->via_cname = outcome->via_cname;
	/* on every blocked answer: a copy, not snprintf (500 instructions) */
	size_t id_length = strnlen(entry->id, sizeof(query->entry_id) - 1);
	memcpy(query->entry_id, entry->id, id_length);
	query->entry_id[id_length] = 0;

	if (verbosity < VERB_DETAIL)
		return;
	if (!dnsf_key_from_wire(qinfo->qname, qinfo->qname_len, &key) ||
	    !dnsf_key_to_text(&key, name, sizeof(name)))
		return;
	sldns_wire2str_type_buf(qinfo->qtype, type, sizeof(type));
	/* the id is the feed's text: escaped, it cannot forge a log line */
	dnsf_escape(id, sizeof(id), entry->id, strlen(entry->id));
	verbose(VERB_DETAIL, "dnsfilter: %s %s %s %s%s",
		outcome->note == DNSF_VERDICT_BLOCK ? "block" : "monitor", name, type, id,
		outcome->via_cname ? " via cname" : "");
}
