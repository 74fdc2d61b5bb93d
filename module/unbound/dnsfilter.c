/*
 * dnsfilter.c - the Unbound side of unbound-dnsfilter: the six dynlib entry
 * points, settings and feed loading at init, the per-query decision and the
 * synthesized sinkhole answers.
 *
 * This is the only file that includes Unbound's internal headers; everything
 * it decides comes from the core library (include/dnsfilter/).
 *
 * Answers: the module runs first ("dynlib validator iterator"). A blocked
 * query is finished here with module_finished at curmod 0, so mesh_query_done
 * answers every client attached to the state directly: neither the validator
 * nor the iterator sees the answer, and nobody stores it in a cache.
 *
 * The cache is kept honest by cache.c; the feed and the opt-out networks
 * are loaded and swapped by watcher.c; decide.c reads them.
 *
 * Opt-out: an opted-out client's query passes on and its real answer is not
 * cached when the name is listed. Unbound joins identical queries of
 * several clients into one resolution; when such a shared resolution of a
 * listed name also has a filtered client, every client gets the sinkhole
 * (fail safe).
 */
#include "config.h"

#include "dynlibmod/dynlibmod.h"
#include "services/cache/dns.h"
#include "sldns/rrdef.h"
#include "sldns/sbuffer.h"
#include "sldns/wire2str.h"
#include "util/config_file.h"
#include "util/data/msgparse.h"
#include "util/data/msgreply.h"
#include "util/data/packed_rrset.h"
#include "util/log.h"
#include "util/module.h"
#include "util/net_help.h"
#include "util/netevent.h"
#include "services/mesh.h"
#include "util/regional.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dnsfilter/hostcheck.h"
#include "glue.h"

#define EXPORT __attribute__((visibility("default")))

/** The Unbound this module was compiled against, as in its PACKAGE_STRING. */
#define BUILT_FOR PACKAGE_STRING

/** How a match was found, for logs. */
enum match_via {
	VIA_QNAME,
	VIA_CNAME,
};

EXPORT int init(struct module_env *env, int id);
EXPORT void deinit(struct module_env *env, int id);
EXPORT void operate(struct module_qstate *qstate, enum module_ev event, int id,
		    struct outbound_entry *outbound);
EXPORT void inform_super(struct module_qstate *qstate, int id, struct module_qstate *super);
EXPORT void clear(struct module_qstate *qstate, int id);
EXPORT size_t get_mem(struct module_env *env, int id);

static struct dnsfilter_env *module_state(struct module_env *env, int id)
{
	struct dynlibmod_env *de = env->modinfo[id];
	return de ? de->dyn_env : NULL;
}

/* Refuse to run inside an Unbound other than the one we were built for. */
static int check_host_version(void)
{
	static const char built_for[] = BUILT_FOR;
	int found = dnsf_file_contains("/proc/self/exe", built_for, sizeof(built_for));

	if (found == 1)
		return 1;
	if (found == 0) {
		log_err("dnsfilter: this module was built for %s and cannot run "
			"inside another Unbound version; rebuild it against the "
			"source tree of the running Unbound",
			BUILT_FOR);
		return 0;
	}
	/* /proc is not there (a chroot without it): say so and go on. */
	log_warn("dnsfilter: cannot read /proc/self/exe to check that the "
		 "running Unbound is %s; make sure it is",
		 BUILT_FOR);
	return 1;
}

/* The settings file: $DNSFILTER_CONF, else dnsfilter.json in the working
 * directory, which is Unbound's directory: (inside the chroot). */
static char *settings_path(void)
{
	const char *from_env = getenv("DNSFILTER_CONF");
	char cwd[PATH_MAX];
	char *path = NULL;

	if (from_env && from_env[0])
		return strdup(from_env);
	if (!getcwd(cwd, sizeof(cwd)))
		return strdup("dnsfilter.json");
	if (asprintf(&path, "%s/dnsfilter.json", strcmp(cwd, "/") ? cwd : "") < 0)
		return NULL;
	return path;
}

static int unbound_ede_enabled(struct module_env *env)
{
	char *value = NULL;
	int on = 0;

	if (config_get_option_collate(env->cfg, "ede", &value) == 0 && value)
		on = strcmp(value, "yes") == 0;
	free(value);
	return on;
}

static void free_state(struct dnsfilter_env *state)
{
	if (!state)
		return;
	dnsfilter_watcher_stop(state);
	dnsfilter_counting_stop(state);
	dnsf_index_free(atomic_load(&state->index));
	dnsf_cidr_set_free(atomic_load(&state->optout));
	dnsf_grace_free(state->grace);
	dnsf_settings_free(&state->settings);
	free(state);
}

static void log_loaded(const char *path, struct dnsfilter_env *state)
{
	const struct dnsf_cidr_set *optout = atomic_load(&state->optout);
	struct dnsf_index_info index;

	dnsf_index_info(atomic_load(&state->index), &index);

	log_info("dnsfilter: %s (built for %s): feed %s: %zu entries, %zu names, "
		 "%zu wildcards, %zu allowed, serial %llu, %zu bytes; %zu opted-out "
		 "prefixes; watching every %u s",
		 path, BUILT_FOR, state->settings.feed, index.entry_count,
		 index.exact_count + index.wildcard_count, index.wildcard_count, index.allow_count,
		 (unsigned long long)index.serial, index.memory_bytes,
		 optout ? dnsf_cidr_set_prefix_count(optout) : 0, state->settings.watch_interval);
}

int init(struct module_env *env, int id)
{
	struct dynlibmod_env *de = env->modinfo[id];
	struct dnsf_errors errors = { 0 };
	struct dnsfilter_env *state = NULL;
	struct dnsf_cidr_set *optout = NULL;
	struct dnsf_index *index;
	char *path;

	if (!check_host_version())
		return 0;
	state = calloc(1, sizeof(*state));
	path = settings_path();
	if (!state || !path || !(state->grace = dnsf_grace_new())) {
		log_err("dnsfilter: out of memory");
		goto fail;
	}
	if (!dnsf_settings_load(path, &state->settings, &errors)) {
		dnsfilter_log_errors(path, &errors);
		log_err("dnsfilter: %s: settings rejected; not starting", path);
		goto fail;
	}
	/* The files' versions are read before the files, so that a change
	 * while they load is picked up by the watcher. */
	file_version_read(state->settings.feed, &state->feed_version);
	if (state->settings.optout_file)
		file_version_read(state->settings.optout_file, &state->optout_version);
	index = dnsfilter_load_feed(&state->settings);
	if (!index)
		goto fail;
	atomic_store(&state->index, index);
	if (!dnsfilter_load_optout(&state->settings, &optout))
		goto fail;
	atomic_store(&state->optout, optout);
	state->ede = state->settings.ede && unbound_ede_enabled(env);
	dnsfilter_find_self_address(state, env);
	if (!dnsfilter_counting_start(state) || !dnsfilter_watcher_start(state))
		goto fail;
	if (!dnsfilter_upstream_register(state, env, id))
		goto fail;
	if (!dnsfilter_counting_register(state, env, id)) {
		dnsfilter_upstream_unregister(env, id);
		goto fail;
	}
	de->dyn_env = state;
	dnsfilter_trim_memory();
	log_loaded(path, state);
	/* After reload_keep_cache the cache holds answers of the old feed. */
	dnsfilter_purge_cache(env, state);
	free(path);
	dnsf_errors_clear(&errors);
	return 1;
fail:
	free(path);
	dnsf_errors_clear(&errors);
	free_state(state);
	return 0;
}

void deinit(struct module_env *env, int id)
{
	struct dynlibmod_env *de = env->modinfo[id];
	struct dnsfilter_env *state = de ? de->dyn_env : NULL;

	if (!state)
		return;
	/* Unbound unloads the module right after this: no callback may stay,
	 * and free_state joins the watcher and the reporter's writer. */
	dnsfilter_upstream_unregister(env, id);
	dnsfilter_counting_unregister(env, id);
	free_state(state);
	de->dyn_env = NULL;
	dnsfilter_trim_memory();
}

/* One rrset of one record, built in the query's region. */
static struct ub_packed_rrset_key *make_rrset(struct regional *region, const uint8_t *owner,
					      size_t owner_length, uint16_t type, uint16_t rrclass,
					      uint32_t ttl, const void *rdata, size_t rdata_length)
{
	struct ub_packed_rrset_key *key = regional_alloc_zero(region, sizeof(*key));
	struct packed_rrset_data *data =
	    regional_alloc_zero(region, sizeof(*data) + sizeof(size_t) + sizeof(uint8_t *) +
					    sizeof(time_t) + 2 + rdata_length);

	if (!key || !data)
		return NULL;
	key->rk.dname = regional_alloc_init(region, owner, owner_length);
	if (!key->rk.dname)
		return NULL;
	key->rk.dname_len = owner_length;
	key->rk.type = htons(type);
	key->rk.rrset_class = htons(rrclass);
	data->ttl = ttl;
	data->count = 1;
	data->trust = rrset_trust_prim_noglue;
	data->security = sec_status_insecure;
	data->rr_len = (size_t *)(void *)(data + 1);
	data->rr_len[0] = 2 + rdata_length;
	packed_rrset_ptr_fixup(data);
	data->rr_ttl[0] = ttl;
	sldns_write_uint16(data->rr_data[0], (uint16_t)rdata_length);
	memcpy(data->rr_data[0] + 2, rdata, rdata_length);
	key->entry.key = key;
	key->entry.data = data;
	key->entry.hash = rrset_key_hash(&key->rk);
	return key;
}

/* The SOA of a negative sinkhole answer: owner the listed name, its
 * minimum (and TTL) the settings' ttl, so downstream caches keep the
 * NODATA/NXDOMAIN only that long (RFC 2308). */
static struct ub_packed_rrset_key *make_soa(struct regional *region, const uint8_t *owner,
					    size_t owner_length, uint16_t rrclass, uint32_t ttl,
					    uint32_t serial)
{
	static const uint8_t mname[] = "\011localhost"; /* localhost. */
	static const uint8_t rname[] = "\006nobody\007invalid"; /* nobody.invalid. */
	uint8_t rdata[sizeof(mname) + sizeof(rname) + 20];
	size_t n = 0;
	const uint32_t timers[5] = { serial, 3600, 600, 86400, ttl };

	memcpy(rdata + n, mname, sizeof(mname));
	n += sizeof(mname);
	memcpy(rdata + n, rname, sizeof(rname));
	n += sizeof(rname);
	for (size_t i = 0; i < 5; i++, n += 4)
		sldns_write_uint32(rdata + n, timers[i]);
	return make_rrset(region, owner, owner_length, LDNS_RR_TYPE_SOA, rrclass, ttl, rdata, n);
}

/* The last labels of a wire name: the listed parent that matched. */
static const uint8_t *wire_suffix(const uint8_t *name, size_t *length, size_t labels_kept)
{
	size_t labels = 0;
	for (const uint8_t *p = name; *p; p += 1 + *p)
		labels++;
	while (labels > labels_kept) {
		*length -= 1 + (size_t)name[0];
		name += 1 + name[0];
		labels--;
	}
	return name;
}

/* Number of labels in the first length bytes of a key. */
static size_t key_labels(const struct dnsf_key *key, size_t length)
{
	size_t labels = 0;
	for (size_t i = 0; i < length; i++)
		labels += key->bytes[i] == DNSF_KEY_LABEL_END;
	return labels;
}

/*
 * The sinkhole answer for qstate's question: A and AAAA get the sinkhole
 * addresses (ANY gets both), other types NODATA or NXDOMAIN with an SOA
 * owned by soa_owner. Marked insecure so the mesh neither fails it for
 * validation nor sets AD.
 */
static struct dns_msg *synthesize_answer(struct module_qstate *qstate, const struct feed_view *view,
					 const uint8_t *soa_owner, size_t soa_owner_length)
{
	const struct query_info *qinfo = &qstate->qinfo;
	const struct dnsf_settings *settings = &view->state->settings;
	uint16_t rcode = LDNS_RCODE_NOERROR;
	struct ub_packed_rrset_key *rrsets[2];
	size_t answers = 0, total;
	struct dns_msg *msg;
	struct dnsf_index_info index;

	dnsf_index_info(view->index, &index);
	if (qinfo->qtype == LDNS_RR_TYPE_A || qinfo->qtype == LDNS_RR_TYPE_ANY)
		rrsets[answers++] =
		    make_rrset(qstate->region, qinfo->qname, qinfo->qname_len, LDNS_RR_TYPE_A,
			       qinfo->qclass, settings->ttl, &settings->sinkhole_a, 4);
	if (qinfo->qtype == LDNS_RR_TYPE_AAAA || qinfo->qtype == LDNS_RR_TYPE_ANY)
		rrsets[answers++] =
		    make_rrset(qstate->region, qinfo->qname, qinfo->qname_len, LDNS_RR_TYPE_AAAA,
			       qinfo->qclass, settings->ttl, &settings->sinkhole_aaaa, 16);
	total = answers;
	if (answers == 0) {
		if (settings->other_types == DNSF_OTHER_NXDOMAIN)
			rcode = LDNS_RCODE_NXDOMAIN;
		rrsets[total++] = make_soa(qstate->region, soa_owner, soa_owner_length,
					   qinfo->qclass, settings->ttl, (uint32_t)index.serial);
	}
	msg = dns_msg_create(qinfo->qname, qinfo->qname_len, qinfo->qtype, qinfo->qclass,
			     qstate->region, total);
	if (!msg)
		return NULL;
	for (size_t i = 0; i < total; i++) {
		if (!rrsets[i])
			return NULL;
		msg->rep->rrsets[i] = rrsets[i];
	}
	msg->rep->rrset_count = total;
	msg->rep->an_numrrsets = answers;
	msg->rep->ns_numrrsets = total - answers;
	msg->rep->flags = BIT_QR | BIT_RA | rcode;
	msg->rep->authoritative = 0;
	msg->rep->ttl = settings->ttl;
	msg->rep->prefetch_ttl = PREFETCH_TTL_CALC(settings->ttl);
	msg->rep->serve_expired_ttl = settings->ttl;
	msg->rep->security = sec_status_insecure;
	return msg;
}

/* Does the module act on this query type at all? */
static int filters_qtype(const struct dnsf_settings *settings, uint16_t qtype)
{
	if (qtype == LDNS_RR_TYPE_A || qtype == LDNS_RR_TYPE_AAAA || qtype == LDNS_RR_TYPE_ANY)
		return 1;
	return settings->other_types != DNSF_OTHER_PASS;
}

/* Block or monitor, after the global mode: the action the module takes. */
static enum dnsf_verdict effective_verdict(const struct dnsfilter_env *state,
					   enum dnsf_verdict verdict)
{
	if (verdict == DNSF_VERDICT_BLOCK && state->settings.mode == DNSF_MODE_MONITOR)
		return DNSF_VERDICT_MONITOR;
	return verdict;
}

/* Note what the module did to the query (for the event of each client
 * answered, see counting.c) and log it at verbosity 2. */
static void note_match(struct dnsfilter_query *query, enum dnsf_verdict verdict, enum match_via via,
		       const struct query_info *qinfo, const struct dnsf_entry *entry)
{
	char name[DNSF_KEY_MAX * 4 + 2], type[16];
	struct dnsf_key key;

	query->acted = verdict;
	query->via_cname = via == VIA_CNAME;
	snprintf(query->entry_id, sizeof(query->entry_id), "%s", entry->id);

	if (verbosity < VERB_DETAIL)
		return;
	if (!dnsf_key_from_wire(qinfo->qname, qinfo->qname_len, &key) ||
	    !dnsf_key_to_text(&key, name, sizeof(name)))
		return;
	sldns_wire2str_type_buf(qinfo->qtype, type, sizeof(type));
	verbose(VERB_DETAIL, "dnsfilter: %s %s %s %s%s",
		verdict == DNSF_VERDICT_BLOCK ? "block" : "monitor", name, type, entry->id,
		via == VIA_CNAME ? " via cname" : "");
}

/* The iterator stored the real answer under the question and under every
 * alias target; take them all out again. */
static void remove_chain_from_cache(struct module_qstate *qstate, const struct reply_info *rep)
{
	const struct query_info *qinfo = &qstate->qinfo;

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

/* Finish the query with the sinkhole answer. */
static void answer_sinkhole(struct module_qstate *qstate, int id, const struct feed_view *view,
			    const struct dnsf_entry *entry, const uint8_t *soa_owner,
			    size_t soa_owner_length)
{
	qstate->return_msg = synthesize_answer(qstate, view, soa_owner, soa_owner_length);
	if (!qstate->return_msg) {
		log_err("dnsfilter: out of memory synthesizing an answer");
		qstate->return_rcode = LDNS_RCODE_SERVFAIL;
		qstate->ext_state[id] = module_error;
		return;
	}
	if (view->state->ede)
		edns_opt_list_append_ede(&qstate->edns_opts_front_out, qstate->region,
					 LDNS_EDE_BLOCKED, entry->id);
	qstate->return_rcode = LDNS_RCODE_NOERROR;
	qstate->ext_state[id] = module_finished;
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

static void answer_sinkhole_for(struct module_qstate *qstate, int id, const struct feed_view *view,
				const struct dnsf_decision *decision, const struct dnsf_key *key);

/* A query seen for the first time: decide, answer or pass on. */
static void handle_new_query(struct module_qstate *qstate, int id, const struct feed_view *view,
			     struct dnsfilter_query *query)
{
	const struct comm_reply *client = first_client(qstate);
	struct dnsf_decision decision;
	struct dnsf_key key;

	view_decide(view, qstate->qinfo.qname, qstate->qinfo.qname_len, (int64_t)*qstate->env->now,
		    &decision, &key);
	query->verdict = effective_verdict(view->state, decision.verdict);
	query->opted_out = client && view_client_opted_out(view, client);
	if (query->verdict != DNSF_VERDICT_BLOCK && query->verdict != DNSF_VERDICT_MONITOR)
		return;
	if (query->opted_out || query->verdict == DNSF_VERDICT_MONITOR ||
	    !filters_qtype(&view->state->settings, qstate->qinfo.qtype)) {
		/* The real answer goes out but is not cached, so the next
		 * query for the name reaches the module again. */
		qstate->no_cache_store = 1;
		if (!query->opted_out && query->verdict == DNSF_VERDICT_MONITOR)
			note_match(query, DNSF_VERDICT_MONITOR, VIA_QNAME, &qstate->qinfo,
				   decision.entry);
		return;
	}
	answer_sinkhole_for(qstate, id, view, &decision, &key);
	if (qstate->ext_state[id] == module_finished)
		note_match(query, DNSF_VERDICT_BLOCK, VIA_QNAME, &qstate->qinfo, decision.entry);
}

/* Finish with the sinkhole for a decision on the query name, its SOA
 * owned by the listed name that matched. */
static void answer_sinkhole_for(struct module_qstate *qstate, int id, const struct feed_view *view,
				const struct dnsf_decision *decision, const struct dnsf_key *key)
{
	size_t owner_length = qstate->qinfo.qname_len;
	const uint8_t *owner = wire_suffix(qstate->qinfo.qname, &owner_length,
					   key_labels(key, decision->match_length));
	answer_sinkhole(qstate, id, view, decision->entry, owner, owner_length);
}

/*
 * The real answer is back. The name is decided again with the feed in
 * force now: it may have been listed while the query was in flight (a
 * swap, an entry's start), and clients that joined the resolution since
 * were never decided on. Then: a listed name passed for an opted-out
 * client (or a type the module passes, or in monitor) that filtered
 * clients share gets the sinkhole, and an alias chain that leads to a
 * listed name is acted on.
 */
static void handle_answer(struct module_qstate *qstate, int id, const struct feed_view *view,
			  struct dnsfilter_query *query)
{
	const struct dnsf_settings *settings = &view->state->settings;
	struct dns_msg *msg = qstate->return_msg;
	struct dnsf_decision decision;
	struct dnsf_key key;
	int64_t now = (int64_t)*qstate->env->now;
	enum dnsf_verdict verdict;

	view_decide(view, qstate->qinfo.qname, qstate->qinfo.qname_len, now, &decision, &key);
	verdict = effective_verdict(view->state, decision.verdict);
	if (verdict == DNSF_VERDICT_BLOCK || verdict == DNSF_VERDICT_MONITOR) {
		/* Listed while in flight: what the resolution stored goes. */
		if (query->verdict != DNSF_VERDICT_BLOCK &&
		    query->verdict != DNSF_VERDICT_MONITOR && msg && msg->rep)
			remove_chain_from_cache(qstate, msg->rep);
		if (!has_filtered_client(qstate, view))
			return;
		if (verdict == DNSF_VERDICT_BLOCK && filters_qtype(settings, qstate->qinfo.qtype)) {
			answer_sinkhole_for(qstate, id, view, &decision, &key);
			if (qstate->ext_state[id] == module_finished)
				note_match(query, DNSF_VERDICT_BLOCK, VIA_QNAME, &qstate->qinfo,
					   decision.entry);
		} else if (query->acted == DNSF_VERDICT_NONE && !query->opted_out) {
			note_match(query, DNSF_VERDICT_MONITOR, VIA_QNAME, &qstate->qinfo,
				   decision.entry);
		}
		return;
	}
	if (verdict != DNSF_VERDICT_NONE || !settings->match_cname || !msg || !msg->rep)
		return;
	verdict =
	    effective_verdict(view->state, view_chain_decision(view, msg->rep, now, &decision));
	if (verdict == DNSF_VERDICT_NONE)
		return;
	/* Cached copies would reach later clients without the module. */
	remove_chain_from_cache(qstate, msg->rep);
	if (!has_filtered_client(qstate, view))
		return;
	if (!filters_qtype(settings, qstate->qinfo.qtype))
		return;
	note_match(query, verdict, VIA_CNAME, &qstate->qinfo, decision.entry);
	if (verdict == DNSF_VERDICT_MONITOR)
		return;
	answer_sinkhole(qstate, id, view, decision.entry, qstate->qinfo.qname,
			qstate->qinfo.qname_len);
}

/* Queries the module leaves alone: the resolver's own lookups, other classes. */
static int is_internal(const struct module_qstate *qstate)
{
	return qstate->is_priming || qstate->is_valrec || qstate->qinfo.qclass != LDNS_RR_CLASS_IN;
}

void operate(struct module_qstate *qstate, enum module_ev event, int id,
	     struct outbound_entry *outbound)
{
	struct dnsfilter_env *state = module_state(qstate->env, id);
	struct dnsfilter_query *query = qstate->minfo[id];
	struct feed_view view;

	(void)outbound;
	dnsfilter_purge_if_requested(qstate->env, state);
	/* A state's first event is "new", or "pass" for the validator's
	 * subqueries that start at this module. */
	if (event == module_event_new ||
	    (event == module_event_pass && (!query || !query->started))) {
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
			/* it did its work by reaching a worker (see purge.c) */
			qstate->return_rcode = LDNS_RCODE_NXDOMAIN;
			qstate->ext_state[id] = module_finished;
			return;
		}
		view_open(state, &view);
		handle_new_query(qstate, id, &view, query);
		view_close(&view);
		return;
	}
	if (event == module_event_moddone) {
		qstate->ext_state[id] = module_finished;
		if (!query)
			return;
		dnsfilter_upstream_close(qstate, id);
		if (is_internal(qstate))
			return;
		view_open(state, &view);
		handle_answer(qstate, id, &view, query);
		view_close(&view);
		return;
	}
	log_err("dnsfilter: unexpected event %s", strmodulevent(event));
	qstate->ext_state[id] = module_error;
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
	const struct dnsfilter_env *state = module_state(env, id);
	struct feed_view view;
	size_t bytes;

	if (!state)
		return 0;
	struct dnsf_index_info index;

	view_open(state, &view);
	dnsf_index_info(view.index, &index);
	bytes = sizeof(*state) + index.memory_bytes +
		(view.optout ? dnsf_cidr_set_memory(view.optout) : 0);
	view_close(&view);
	return bytes;
}
