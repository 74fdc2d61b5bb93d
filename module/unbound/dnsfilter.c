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
 * The cache: Unbound answers from its message cache before any module runs.
 * So that no cached real answer of a listed name reaches a client (a name
 * listed by a new feed, an entry whose start has come, a CNAME chain that
 * now leads to a listed name), a reply_cache callback checks every cache
 * hit against the feed and, on a match, declines the cached answer: Unbound
 * then resolves the query through the modules and this module answers it.
 * At load, cached answers for names the feed blocks are also removed, which
 * frees their memory and keeps serve-expired from ever seeing them.
 */
#include "config.h"

#include "dynlibmod/dynlibmod.h"
#include "services/cache/dns.h"
#include "services/cache/rrset.h"
#include "util/storage/slabhash.h"
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
#include "util/regional.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dnsfilter/feed.h"
#include "dnsfilter/hostcheck.h"
#include "dnsfilter/settings.h"

#define EXPORT __attribute__((visibility("default")))

/** The Unbound this module was compiled against, as in its PACKAGE_STRING. */
#define BUILT_FOR PACKAGE_STRING

/** The module's state, shared by all resolver threads; read-only after init. */
struct dnsfilter_env {
	/** settings in force */
	struct dnsf_settings settings;
	/** the feed's index */
	struct dnsf_index *index;
	/** 1 when EDE is attached (the module's and Unbound's ede both on) */
	int ede;
};

/** Per query, in the query's region: what was decided on arrival. */
struct dnsfilter_query {
	/** the verdict for the query name */
	enum dnsf_verdict verdict;
};

/** How a match was found, for logs. */
enum match_via {
	VIA_QNAME,
	VIA_CNAME,
};

EXPORT int init(struct module_env *env, int id);
EXPORT void deinit(struct module_env *env, int id);
EXPORT void operate(struct module_qstate *qstate, enum module_ev event, int id,
		    struct outbound_entry *outbound);
EXPORT void inform_super(struct module_qstate *qstate, int id,
			 struct module_qstate *super);
EXPORT void clear(struct module_qstate *qstate, int id);
EXPORT size_t get_mem(struct module_env *env, int id);

static int on_cache_answer(struct query_info *qinfo, struct module_qstate *qstate,
			   struct reply_info *rep, int rcode, struct edns_data *edns,
			   struct edns_option **opt_list_out, struct comm_reply *repinfo,
			   struct regional *region, struct timeval *start_time, int id,
			   void *cb_arg);
static void purge_cache(struct module_env *env, const struct dnsfilter_env *state);

static struct dnsfilter_env *module_state(struct module_env *env, int id)
{
	struct dynlibmod_env *de = env->modinfo[id];
	return de ? de->dyn_env : NULL;
}

/* Log every message of an error list, one line each, with a prefix. */
static void log_errors(const char *what, const struct dnsf_errors *errors)
{
	for (size_t i = 0; i < errors->count_kept; i++)
		log_err("dnsfilter: %s: %s", what, errors->messages[i]);
	if (errors->count > errors->count_kept)
		log_err("dnsfilter: %s: and %zu more errors", what,
			errors->count - errors->count_kept);
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
			"source tree of the running Unbound", BUILT_FOR);
		return 0;
	}
	/* /proc is not there (a chroot without it): say so and go on. */
	log_warn("dnsfilter: cannot read /proc/self/exe to check that the "
		 "running Unbound is %s; make sure it is", BUILT_FOR);
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

	if (config_get_option_collate(env->cfg, "ede", &value) == 1 && value)
		on = strcmp(value, "yes") == 0;
	free(value);
	return on;
}

static struct dnsf_index *load_feed(const struct dnsf_settings *settings)
{
	struct dnsf_feed_limits limits = {
		.max_bytes = settings->feed_max_bytes,
		.max_entries = settings->feed_max_entries,
		.max_names = settings->feed_max_names,
	};
	struct dnsf_errors errors = { 0 };
	struct dnsf_index *index = dnsf_index_from_file(settings->feed, &limits, &errors);

	if (!index) {
		log_errors(settings->feed, &errors);
		log_err("dnsfilter: %s: feed rejected (%zu error%s)", settings->feed,
			errors.count, errors.count == 1 ? "" : "s");
	}
	dnsf_errors_clear(&errors);
	return index;
}

int init(struct module_env *env, int id)
{
	struct dynlibmod_env *de = env->modinfo[id];
	struct dnsf_errors errors = { 0 };
	struct dnsfilter_env *state;
	char *path;

	if (!check_host_version())
		return 0;
	state = calloc(1, sizeof(*state));
	path = settings_path();
	if (!state || !path) {
		log_err("dnsfilter: out of memory");
		goto fail;
	}
	if (!dnsf_settings_load(path, &state->settings, &errors)) {
		log_errors(path, &errors);
		log_err("dnsfilter: %s: settings rejected; not starting", path);
		goto fail;
	}
	state->index = load_feed(&state->settings);
	if (!state->index)
		goto fail;
	state->ede = state->settings.ede && unbound_ede_enabled(env);
	if (!de->inplace_cb_register_wrapped((void *)on_cache_answer, inplace_cb_reply_cache,
					     state, env, id)) {
		log_err("dnsfilter: cannot register the cache answer callback");
		goto fail;
	}
	de->dyn_env = state;
	/* After reload_keep_cache the cache holds answers of the old feed. */
	purge_cache(env, state);
	log_info("dnsfilter: %s (built for %s): feed %s: %zu entries, %zu names, "
		 "%zu wildcards, %zu allowed, serial %llu, %zu bytes",
		 path, BUILT_FOR, state->settings.feed, state->index->entry_count,
		 state->index->exact_count + state->index->wildcard_count,
		 state->index->wildcard_count, state->index->allow_count,
		 (unsigned long long)state->index->serial,
		 state->index->memory_bytes);
	free(path);
	dnsf_errors_clear(&errors);
	return 1;
fail:
	free(path);
	dnsf_errors_clear(&errors);
	if (state) {
		dnsf_index_free(state->index);
		dnsf_settings_free(&state->settings);
		free(state);
	}
	return 0;
}

void deinit(struct module_env *env, int id)
{
	struct dynlibmod_env *de = env->modinfo[id];
	struct dnsfilter_env *state = de ? de->dyn_env : NULL;

	if (!state)
		return;
	de->inplace_cb_delete_wrapped(env, inplace_cb_reply_cache, id);
	dnsf_index_free(state->index);
	dnsf_settings_free(&state->settings);
	free(state);
	de->dyn_env = NULL;
}

/* One rrset of one record, built in the query's region. */
static struct ub_packed_rrset_key *make_rrset(struct regional *region,
					      const uint8_t *owner, size_t owner_length,
					      uint16_t type, uint16_t rrclass, uint32_t ttl,
					      const void *rdata, size_t rdata_length)
{
	struct ub_packed_rrset_key *key = regional_alloc_zero(region, sizeof(*key));
	struct packed_rrset_data *data = regional_alloc_zero(region,
		sizeof(*data) + sizeof(size_t) + sizeof(uint8_t *) +
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
static struct ub_packed_rrset_key *make_soa(struct regional *region,
					    const uint8_t *owner, size_t owner_length,
					    uint16_t rrclass, uint32_t ttl, uint32_t serial)
{
	static const uint8_t mname[] = "\011localhost";           /* localhost. */
	static const uint8_t rname[] = "\006nobody\007invalid";    /* nobody.invalid. */
	uint8_t rdata[sizeof(mname) + sizeof(rname) + 20];
	size_t n = 0;
	const uint32_t timers[5] = { serial, 3600, 600, 86400, ttl };

	memcpy(rdata + n, mname, sizeof(mname));
	n += sizeof(mname);
	memcpy(rdata + n, rname, sizeof(rname));
	n += sizeof(rname);
	for (size_t i = 0; i < 5; i++, n += 4)
		sldns_write_uint32(rdata + n, timers[i]);
	return make_rrset(region, owner, owner_length, LDNS_RR_TYPE_SOA, rrclass, ttl,
			  rdata, n);
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
static struct dns_msg *synthesize_answer(struct module_qstate *qstate,
					 const struct dnsfilter_env *state,
					 const uint8_t *soa_owner, size_t soa_owner_length)
{
	const struct query_info *qinfo = &qstate->qinfo;
	const struct dnsf_settings *settings = &state->settings;
	uint16_t rcode = LDNS_RCODE_NOERROR;
	struct ub_packed_rrset_key *rrsets[2];
	size_t answers = 0, total;
	struct dns_msg *msg;

	if (qinfo->qtype == LDNS_RR_TYPE_A || qinfo->qtype == LDNS_RR_TYPE_ANY)
		rrsets[answers++] = make_rrset(qstate->region, qinfo->qname, qinfo->qname_len,
					       LDNS_RR_TYPE_A, qinfo->qclass, settings->ttl,
					       &settings->sinkhole_a, 4);
	if (qinfo->qtype == LDNS_RR_TYPE_AAAA || qinfo->qtype == LDNS_RR_TYPE_ANY)
		rrsets[answers++] = make_rrset(qstate->region, qinfo->qname, qinfo->qname_len,
					       LDNS_RR_TYPE_AAAA, qinfo->qclass, settings->ttl,
					       &settings->sinkhole_aaaa, 16);
	total = answers;
	if (answers == 0) {
		if (settings->other_types == DNSF_OTHER_NXDOMAIN)
			rcode = LDNS_RCODE_NXDOMAIN;
		rrsets[total++] = make_soa(qstate->region, soa_owner, soa_owner_length,
					   qinfo->qclass, settings->ttl,
					   (uint32_t)state->index->serial);
	}
	msg = dns_msg_create(qinfo->qname, qinfo->qname_len, qinfo->qtype,
			     qinfo->qclass, qstate->region, total);
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
	if (qtype == LDNS_RR_TYPE_A || qtype == LDNS_RR_TYPE_AAAA ||
	    qtype == LDNS_RR_TYPE_ANY)
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

static void log_match(enum dnsf_verdict verdict, enum match_via via,
		      const struct query_info *qinfo, const struct dnsf_entry *entry)
{
	char name[DNSF_KEY_MAX * 4 + 2], type[16];
	struct dnsf_key key;

	if (verbosity < VERB_DETAIL)
		return;
	if (!dnsf_key_from_wire(qinfo->qname, qinfo->qname_len, &key) ||
	    !dnsf_key_to_text(&key, name, sizeof(name)))
		return;
	sldns_wire2str_type_buf(qinfo->qtype, type, sizeof(type));
	verbose(VERB_DETAIL, "dnsfilter: %s %s %s %s%s",
		verdict == DNSF_VERDICT_BLOCK ? "block" : "monitor", name, type,
		entry->id, via == VIA_CNAME ? " via cname" : "");
}

/* Decide for a wire name now. */
static void decide_wire(const struct dnsfilter_env *state, const uint8_t *name,
			size_t length, int64_t now, struct dnsf_decision *decision,
			struct dnsf_key *key)
{
	memset(decision, 0, sizeof(*decision));
	if (dnsf_key_from_wire(name, length, key))
		dnsf_index_decide(state->index, key, now, decision);
}

/* The target of a CNAME or DNAME rrset, or NULL. */
static const uint8_t *alias_target(const struct ub_packed_rrset_key *rrset, size_t *length)
{
	const struct packed_rrset_data *data = rrset->entry.data;
	uint16_t type = ntohs(rrset->rk.type);

	if ((type != LDNS_RR_TYPE_CNAME && type != LDNS_RR_TYPE_DNAME) ||
	    !data || data->count < 1 || data->rr_len[0] < 3)
		return NULL;
	*length = data->rr_len[0] - 2;
	return data->rr_data[0] + 2;
}

/*
 * The first name of an answer's alias chain (the owners and targets of its
 * CNAME and DNAME records, and the owners of what follows them) that the
 * feed blocks or monitors now; an allowed name is skipped, as it would be
 * asked directly. Returns the verdict (NONE when nothing matches).
 */
static enum dnsf_verdict chain_decision(const struct dnsfilter_env *state,
					const struct reply_info *rep, int64_t now,
					struct dnsf_decision *decision)
{
	struct dnsf_key key;

	for (size_t i = 0; i < rep->an_numrrsets && i < rep->rrset_count; i++) {
		const struct ub_packed_rrset_key *rrset = rep->rrsets[i];
		const uint8_t *target;
		size_t length;

		decide_wire(state, rrset->rk.dname, rrset->rk.dname_len, now, decision, &key);
		if (decision->verdict == DNSF_VERDICT_BLOCK ||
		    decision->verdict == DNSF_VERDICT_MONITOR)
			return decision->verdict;
		target = alias_target(rrset, &length);
		if (!target)
			continue;
		decide_wire(state, target, length, now, decision, &key);
		if (decision->verdict == DNSF_VERDICT_BLOCK ||
		    decision->verdict == DNSF_VERDICT_MONITOR)
			return decision->verdict;
	}
	memset(decision, 0, sizeof(*decision));
	return DNSF_VERDICT_NONE;
}

/* Remove the message cache entries of a question (both hash variants of
 * AAAA, as the flush code does). */
static void remove_cached(struct module_env *env, const uint8_t *name, size_t length,
			  uint16_t qtype, uint16_t qclass)
{
	msg_cache_remove(env, (uint8_t *)name, length, qtype, qclass, 0);
	if (qtype == LDNS_RR_TYPE_AAAA)
		msg_cache_remove(env, (uint8_t *)name, length, qtype, qclass, BIT_CD);
}

/* The iterator stored the real answer under the question and under every
 * alias target; take them all out again. */
static void remove_chain_from_cache(struct module_qstate *qstate, const struct reply_info *rep)
{
	const struct query_info *qinfo = &qstate->qinfo;

	remove_cached(qstate->env, qinfo->qname, qinfo->qname_len, qinfo->qtype, qinfo->qclass);
	for (size_t i = 0; i < rep->an_numrrsets && i < rep->rrset_count; i++) {
		size_t length;
		const uint8_t *target = alias_target(rep->rrsets[i], &length);
		if (target)
			remove_cached(qstate->env, target, length, qinfo->qtype, qinfo->qclass);
	}
}

/* Finish the query with the sinkhole answer. */
static void answer_sinkhole(struct module_qstate *qstate, int id,
			    const struct dnsfilter_env *state,
			    const struct dnsf_entry *entry,
			    const uint8_t *soa_owner, size_t soa_owner_length)
{
	qstate->return_msg = synthesize_answer(qstate, state, soa_owner, soa_owner_length);
	if (!qstate->return_msg) {
		log_err("dnsfilter: out of memory synthesizing an answer");
		qstate->ext_state[id] = module_error;
		return;
	}
	if (state->ede)
		edns_opt_list_append_ede(&qstate->edns_opts_front_out, qstate->region,
					 LDNS_EDE_BLOCKED, entry->id);
	qstate->return_rcode = LDNS_RCODE_NOERROR;
	qstate->ext_state[id] = module_finished;
}

/* A query seen for the first time: decide, answer or pass on. */
static void handle_new_query(struct module_qstate *qstate, int id,
			     const struct dnsfilter_env *state)
{
	struct dnsfilter_query *query = regional_alloc_zero(qstate->region,
							    sizeof(*query));
	struct dnsf_decision decision;
	struct dnsf_key key;

	if (!query) {
		log_err("dnsfilter: out of memory");
		qstate->ext_state[id] = module_error;
		return;
	}
	qstate->minfo[id] = query;
	qstate->ext_state[id] = module_wait_module;
	/* Internal lookups of the resolver and non-IN classes pass. */
	if (qstate->is_priming || qstate->is_valrec ||
	    qstate->qinfo.qclass != LDNS_RR_CLASS_IN)
		return;
	decide_wire(state, qstate->qinfo.qname, qstate->qinfo.qname_len,
		    (int64_t)*qstate->env->now, &decision, &key);
	query->verdict = effective_verdict(state, decision.verdict);
	if (query->verdict == DNSF_VERDICT_MONITOR ||
	    (query->verdict == DNSF_VERDICT_BLOCK &&
	     !filters_qtype(&state->settings, qstate->qinfo.qtype))) {
		/* The real answer goes out but is not cached, so the next
		 * query for the name reaches the module again. */
		qstate->no_cache_store = 1;
		if (query->verdict == DNSF_VERDICT_MONITOR)
			log_match(DNSF_VERDICT_MONITOR, VIA_QNAME, &qstate->qinfo, decision.entry);
		return;
	}
	if (query->verdict != DNSF_VERDICT_BLOCK)
		return;
	size_t owner_length = qstate->qinfo.qname_len;
	const uint8_t *owner = wire_suffix(qstate->qinfo.qname, &owner_length,
					   key_labels(&key, decision.match_length));
	answer_sinkhole(qstate, id, state, decision.entry, owner, owner_length);
	if (qstate->ext_state[id] == module_finished)
		log_match(DNSF_VERDICT_BLOCK, VIA_QNAME, &qstate->qinfo, decision.entry);
}

/* The real answer is back: act when its alias chain leads to a listed name. */
static void handle_answer(struct module_qstate *qstate, int id,
			  const struct dnsfilter_env *state)
{
	const struct dnsfilter_query *query = qstate->minfo[id];
	struct dns_msg *msg = qstate->return_msg;
	struct dnsf_decision decision;
	enum dnsf_verdict verdict;

	qstate->ext_state[id] = module_finished;
	if (!state->settings.match_cname || !query || !msg || !msg->rep ||
	    query->verdict != DNSF_VERDICT_NONE || qstate->is_priming ||
	    qstate->is_valrec || qstate->qinfo.qclass != LDNS_RR_CLASS_IN)
		return;
	verdict = effective_verdict(state, chain_decision(state, msg->rep,
							  (int64_t)*qstate->env->now, &decision));
	if (verdict == DNSF_VERDICT_NONE)
		return;
	/* Cached copies would reach later clients without the module. */
	remove_chain_from_cache(qstate, msg->rep);
	log_match(verdict, VIA_CNAME, &qstate->qinfo, decision.entry);
	if (verdict == DNSF_VERDICT_MONITOR || !filters_qtype(&state->settings, qstate->qinfo.qtype))
		return;
	answer_sinkhole(qstate, id, state, decision.entry, qstate->qinfo.qname,
			qstate->qinfo.qname_len);
}

void operate(struct module_qstate *qstate, enum module_ev event, int id,
	     struct outbound_entry *outbound)
{
	const struct dnsfilter_env *state = module_state(qstate->env, id);

	(void)outbound;
	/* A state's first event is "new", or "pass" for the validator's
	 * subqueries that start at this module. */
	if (event == module_event_new ||
	    (event == module_event_pass && qstate->minfo[id] == NULL)) {
		handle_new_query(qstate, id, state);
		return;
	}
	if (event == module_event_moddone) {
		handle_answer(qstate, id, state);
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
	/* Per-query data lives in the query's region. */
	qstate->minfo[id] = NULL;
}

size_t get_mem(struct module_env *env, int id)
{
	const struct dnsfilter_env *state = module_state(env, id);

	if (!state)
		return 0;
	return sizeof(*state) + state->index->memory_bytes;
}

/*
 * Every answer from the message cache passes here (worker thread, the
 * reply and its rrsets locked by the caller). A cached answer whose name or
 * alias chain the feed now blocks or monitors is declined: Unbound then
 * resolves the query through the modules, and this module answers it.
 */
static int on_cache_answer(struct query_info *qinfo, struct module_qstate *qstate,
			   struct reply_info *rep, int rcode, struct edns_data *edns,
			   struct edns_option **opt_list_out, struct comm_reply *repinfo,
			   struct regional *region, struct timeval *start_time, int id,
			   void *cb_arg)
{
	const struct dnsfilter_env *state = cb_arg;
	struct dnsf_decision decision;
	struct dnsf_key key;
	int64_t now = start_time ? (int64_t)start_time->tv_sec : (int64_t)time(NULL);

	(void)qstate, (void)rcode, (void)edns, (void)opt_list_out;
	(void)repinfo, (void)region, (void)id;
	if (!qinfo || qinfo->qclass != LDNS_RR_CLASS_IN)
		return 1;
	decide_wire(state, qinfo->qname, qinfo->qname_len, now, &decision, &key);
	if (decision.verdict == DNSF_VERDICT_ALLOW)
		return 1;
	if (decision.verdict == DNSF_VERDICT_NONE && state->settings.match_cname && rep)
		chain_decision(state, rep, now, &decision);
	return decision.verdict != DNSF_VERDICT_BLOCK &&
	       decision.verdict != DNSF_VERDICT_MONITOR;
}

/* A message cache key copied out of the cache, for removal after the walk. */
struct cached_question {
	struct cached_question *next;
	uint16_t qtype, qclass;
	size_t length;
	uint8_t name[];
};

/* The questions of cached messages that the feed now blocks or monitors. */
struct purge {
	const struct dnsfilter_env *state;
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
	decide_wire(purge->state, entry->key.qname, entry->key.qname_len, purge->now,
		    &decision, &key);
	if (decision.verdict == DNSF_VERDICT_ALLOW)
		return;
	if (decision.verdict == DNSF_VERDICT_NONE && purge->state->settings.match_cname &&
	    rep && rrset_array_lock(rep->ref, rep->rrset_count, 0)) {
		chain_decision(purge->state, rep, purge->now, &decision);
		rrset_array_unlock(rep->ref, rep->rrset_count);
	}
	if (decision.verdict != DNSF_VERDICT_BLOCK && decision.verdict != DNSF_VERDICT_MONITOR)
		return;
	struct cached_question *q = malloc(sizeof(*q) + entry->key.qname_len);
	if (!q)
		return;
	q->qtype = entry->key.qtype;
	q->qclass = entry->key.qclass;
	q->length = entry->key.qname_len;
	memcpy(q->name, entry->key.qname, q->length);
	q->next = purge->list;
	purge->list = q;
	purge->found++;
}

/*
 * Remove cached answers the feed now blocks or monitors. Walks the message
 * cache bin by bin, holding a table lock only to reach a bin, collects the
 * questions, then removes them with Unbound's own msg_cache_remove (removal,
 * not expiry, so serve-expired cannot bring them back).
 */
static void purge_cache(struct module_env *env, const struct dnsfilter_env *state)
{
	struct purge purge = { .state = state, .now = (int64_t)time(NULL) };
	struct slabhash *cache = env->msg_cache;
	struct timespec start, end;

	if (!cache)
		return;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (size_t slab = 0; slab < cache->size; slab++) {
		struct lruhash *table = cache->array[slab];
		for (size_t bin = 0;; bin++) {
			lock_quick_lock(&table->lock);
			if (bin >= table->size) {
				lock_quick_unlock(&table->lock);
				break;
			}
			struct lruhash_bin *b = &table->array[bin];
			lock_quick_lock(&b->lock);
			lock_quick_unlock(&table->lock);
			for (struct lruhash_entry *e = b->overflow_list; e; e = e->overflow_next) {
				lock_rw_rdlock(&e->lock);
				purge_examine(&purge, e->key);
				lock_rw_unlock(&e->lock);
			}
			lock_quick_unlock(&b->lock);
		}
	}
	while (purge.list) {
		struct cached_question *q = purge.list;
		purge.list = q->next;
		remove_cached(env, q->name, q->length, q->qtype, q->qclass);
		free(q);
	}
	clock_gettime(CLOCK_MONOTONIC, &end);
	log_info("dnsfilter: cache purge: %zu cached answers examined, %zu removed, %.1f ms",
		 purge.examined, purge.found,
		 (double)(end.tv_sec - start.tv_sec) * 1e3 +
		 (double)(end.tv_nsec - start.tv_nsec) / 1e6);
}
