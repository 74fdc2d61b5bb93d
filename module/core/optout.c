/*
 * optout.c - the opt-out set of the settings (see optout.h).
 */
#include "dnsfilter/optout.h"

int dnsf_optout_build(const struct dnsf_settings *settings, struct dnsf_cidr_set **set,
		      struct dnsf_errors *errors)
{
	struct dnsf_cidr_builder *builder;
	int ok = 1;

	*set = NULL;
	if (settings->optout_network_count == 0 && !settings->optout_file)
		return 1;
	builder = dnsf_cidr_builder_new(DNSF_CIDR_DEFAULT_MAX_PREFIXES);
	if (!builder) {
		dnsf_errors_add_kind(errors, DNSF_ERROR_MEMORY,
				     "out of memory building the opt-out set");
		return 0;
	}
	ok &= dnsf_cidr_builder_add_list(builder, (const char *const *)settings->optout_networks,
					 settings->optout_network_count, "optout.networks", errors);
	if (settings->optout_file)
		ok &= dnsf_cidr_builder_add_file(builder, settings->optout_file, errors);
	if (!ok) {
		dnsf_cidr_builder_free(builder);
		return 0;
	}
	*set = dnsf_cidr_set_build(builder, errors);
	return *set != NULL;
}
