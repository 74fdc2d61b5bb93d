/*
 * answer.c - the sinkhole answer: A and AAAA get the sinkhole addresses
 * (ANY gets both), other types NODATA or NXDOMAIN with an SOA owned by the
 * listed name that matched, so downstream caches keep it only ttl seconds.
 *
 * The module runs first ("dynlib validator iterator"): a query finished
 * here with module_finished at curmod 0 is answered by mesh_query_done to
 * every client attached to the state; neither the validator nor the
 * iterator sees the answer, and nobody stores it in a cache. It is marked
 * insecure, so the mesh neither fails it for validation nor sets AD.
 */
#include "config.h"

#include "services/cache/dns.h"
#include "sldns/rrdef.h"
#include "sldns/sbuffer.h"
#include "util/data/msgreply.h"
#include "util/data/packed_rrset.h"
#include "util/log.h"
#include "util/module.h"
#include "util/net_help.h"
#include "util/regional.h"

#include <string.h>

#include "glue.h"

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
 * minimum (and TTL) the settings' ttl (RFC 2308). */
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

/* The answer for qstate's question, the SOA (if any) owned by soa_owner. */
static struct dns_msg *synthesize(struct module_qstate *qstate, const struct feed_view *view,
				  const uint8_t *soa_owner, size_t soa_owner_length)
{
	const struct query_info *qinfo = &qstate->qinfo;
	const struct dnsf_settings *settings = &view->filter->settings;
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

int answer_sinkhole(struct module_qstate *qstate, int id, const struct feed_view *view,
		    const struct outcome *outcome)
{
	size_t owner_length = qstate->qinfo.qname_len;
	const uint8_t *owner = qstate->qinfo.qname;

	if (!outcome->via_cname) {
		const struct dnsf_key *key = &outcome->key;
		struct dnsf_key made;
		if (key->length == 0 && dnsf_key_from_wire(owner, owner_length, &made))
			key = &made; /* the decision was remembered */
		owner = wire_suffix(owner, &owner_length,
				    key_labels(key, outcome->decision.match_length));
	}
	qstate->return_msg = synthesize(qstate, view, owner, owner_length);
	if (!qstate->return_msg) {
		log_err("dnsfilter: out of memory synthesizing an answer");
		qstate->return_rcode = LDNS_RCODE_SERVFAIL;
		qstate->ext_state[id] = module_error;
		return 0;
	}
	if (view->filter->ede)
		edns_opt_list_append_ede(&qstate->edns_opts_front_out, qstate->region,
					 LDNS_EDE_BLOCKED, outcome->decision.entry.id);
	qstate->return_rcode = LDNS_RCODE_NOERROR;
	qstate->ext_state[id] = module_finished;
	return 1;
}
