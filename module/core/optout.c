/*
 * optout.c - the opt-out set of the settings (see optout.h).
 */
#include "dnsfilter/optout.h"

#include <stdlib.h>

#include "dnsfilter/file.h"

/* The networks of the settings, and the file's when text is given. */
int dnsf_optout_build_text(const struct dnsf_settings *settings, const char *text, size_t length,
			   const char *name, struct dnsf_cidr_set **set, struct dnsf_errors *errors)
{
	struct dnsf_cidr_builder *builder;
	int ok = 1;

	*set = NULL;
	builder = dnsf_cidr_builder_new(DNSF_CIDR_DEFAULT_MAX_PREFIXES);
	if (!builder) {
		dnsf_errors_add_kind(errors, DNSF_ERROR_MEMORY,
				     "out of memory building the opt-out set");
		return 0;
	}
	ok &= dnsf_cidr_builder_add_list(builder, (const char *const *)settings->optout_networks,
					 settings->optout_network_count, "optout.networks", errors);
	if (text)
		ok &= dnsf_cidr_builder_add_file_text(builder, text, length, name, errors);
	if (!ok) {
		dnsf_cidr_builder_free(builder);
		return 0;
	}
	*set = dnsf_cidr_set_build(builder, errors);
	return *set != NULL;
}

int dnsf_optout_build(const struct dnsf_settings *settings, struct dnsf_cidr_set **set,
		      struct dnsf_errors *errors)
{
	char *text = NULL;
	size_t length = 0;
	int ok;

	*set = NULL;
	if (settings->optout_network_count == 0 && !settings->optout_file)
		return 1;
	if (settings->optout_file &&
	    !dnsf_file_read(settings->optout_file, DNSF_CIDR_FILE_MAX_BYTES, settings->optout_file,
			    &text, &length, errors))
		return 0;
	ok = dnsf_optout_build_text(settings, text, length, settings->optout_file, set, errors);
	free(text);
	return ok;
}
