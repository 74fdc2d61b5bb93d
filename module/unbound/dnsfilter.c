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
#include "util/regional.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
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

/** Per query: only a mark that the module has seen the query. */
struct dnsfilter_query {
	/** what was decided when the query arrived */
	enum dnsf_verdict verdict;
};

EXPORT int init(struct module_env *env, int id);
EXPORT void deinit(struct module_env *env, int id);
EXPORT void operate(struct module_qstate *qstate, enum module_ev event, int id,
		    struct outbound_entry *outbound);
EXPORT void inform_super(struct module_qstate *qstate, int id,
			 struct module_qstate *super);
EXPORT void clear(struct module_qstate *qstate, int id);
EXPORT size_t get_mem(struct module_env *env, int id);

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
	de->dyn_env = state;
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
	dnsf_index_free(state->index);
	dnsf_settings_free(&state->settings);
	free(state);
	de->dyn_env = NULL;
}

/* One rrset of one record, built in the query's region. */
static struct ub_packed_rrset_key *make_rrset(struct regional *region,
					      const struct query_info *qinfo,
					      uint16_t type, uint32_t ttl,
					      const void *rdata, size_t rdata_length)
{
	struct ub_packed_rrset_key *key = regional_alloc_zero(region, sizeof(*key));
	struct packed_rrset_data *data = regional_alloc_zero(region,
		sizeof(*data) + sizeof(size_t) + sizeof(uint8_t *) +
		sizeof(time_t) + 2 + rdata_length);

	if (!key || !data)
		return NULL;
	key->rk.dname = regional_alloc_init(region, qinfo->qname, qinfo->qname_len);
	if (!key->rk.dname)
		return NULL;
	key->rk.dname_len = qinfo->qname_len;
	key->rk.type = htons(type);
	key->rk.rrset_class = htons(qinfo->qclass);
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

/*
 * The sinkhole answer for qstate's question: A and AAAA get the sinkhole
 * addresses (ANY gets both), other types NODATA or NXDOMAIN. Marked
 * insecure so the mesh neither fails it for validation nor sets AD.
 */
static struct dns_msg *synthesize_answer(struct module_qstate *qstate,
					 const struct dnsfilter_env *state)
{
	const struct query_info *qinfo = &qstate->qinfo;
	const struct dnsf_settings *settings = &state->settings;
	uint16_t rcode = LDNS_RCODE_NOERROR;
	struct ub_packed_rrset_key *rrsets[2];
	size_t count = 0;
	struct dns_msg *msg;

	if (qinfo->qtype == LDNS_RR_TYPE_A || qinfo->qtype == LDNS_RR_TYPE_ANY)
		rrsets[count++] = make_rrset(qstate->region, qinfo, LDNS_RR_TYPE_A,
					     settings->ttl, &settings->sinkhole_a, 4);
	if (qinfo->qtype == LDNS_RR_TYPE_AAAA || qinfo->qtype == LDNS_RR_TYPE_ANY)
		rrsets[count++] = make_rrset(qstate->region, qinfo, LDNS_RR_TYPE_AAAA,
					     settings->ttl, &settings->sinkhole_aaaa, 16);
	if (count == 0 && settings->other_types == DNSF_OTHER_NXDOMAIN)
		rcode = LDNS_RCODE_NXDOMAIN;
	msg = dns_msg_create(qinfo->qname, qinfo->qname_len, qinfo->qtype,
			     qinfo->qclass, qstate->region, count ? count : 1);
	if (!msg)
		return NULL;
	for (size_t i = 0; i < count; i++) {
		if (!rrsets[i])
			return NULL;
		msg->rep->rrsets[i] = rrsets[i];
	}
	msg->rep->rrset_count = count;
	msg->rep->an_numrrsets = count;
	msg->rep->flags = BIT_QR | BIT_RA | rcode;
	msg->rep->authoritative = 0;
	msg->rep->ttl = settings->ttl;
	msg->rep->prefetch_ttl = PREFETCH_TTL_CALC(settings->ttl);
	msg->rep->serve_expired_ttl = settings->ttl;
	msg->rep->security = sec_status_insecure;
	return msg;
}

/* Does the decision apply to this query's type at all? */
static int filters_qtype(const struct dnsf_settings *settings, uint16_t qtype)
{
	if (qtype == LDNS_RR_TYPE_A || qtype == LDNS_RR_TYPE_AAAA ||
	    qtype == LDNS_RR_TYPE_ANY)
		return 1;
	return settings->other_types != DNSF_OTHER_PASS;
}

static void log_match(const char *what, const struct module_qstate *qstate,
		      const struct dnsf_key *key, const struct dnsf_entry *entry)
{
	char name[DNSF_KEY_MAX * 4 + 2], type[16];

	if (verbosity < VERB_DETAIL)
		return;
	dnsf_key_to_text(key, name, sizeof(name));
	sldns_wire2str_type_buf(qstate->qinfo.qtype, type, sizeof(type));
	verbose(VERB_DETAIL, "dnsfilter: %s %s %s %s", what, name, type, entry->id);
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
	    qstate->qinfo.qclass != LDNS_RR_CLASS_IN ||
	    !dnsf_key_from_wire(qstate->qinfo.qname, qstate->qinfo.qname_len, &key))
		return;
	dnsf_index_decide(state->index, &key, (int64_t)*qstate->env->now, &decision);
	query->verdict = decision.verdict;
	if (decision.verdict == DNSF_VERDICT_MONITOR ||
	    (decision.verdict == DNSF_VERDICT_BLOCK &&
	     state->settings.mode == DNSF_MODE_MONITOR)) {
		query->verdict = DNSF_VERDICT_MONITOR;
		log_match("monitor", qstate, &key, decision.entry);
		return;
	}
	if (decision.verdict != DNSF_VERDICT_BLOCK ||
	    !filters_qtype(&state->settings, qstate->qinfo.qtype))
		return;
	qstate->return_msg = synthesize_answer(qstate, state);
	if (!qstate->return_msg) {
		log_err("dnsfilter: out of memory synthesizing an answer");
		qstate->ext_state[id] = module_error;
		return;
	}
	if (state->ede)
		edns_opt_list_append_ede(&qstate->edns_opts_front_out, qstate->region,
					 LDNS_EDE_BLOCKED, decision.entry->id);
	qstate->return_rcode = LDNS_RCODE_NOERROR;
	qstate->ext_state[id] = module_finished;
	log_match("block", qstate, &key, decision.entry);
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
		qstate->ext_state[id] = module_finished;
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
