/*
 * dnsfilter/optout.h - the opt-out set the settings describe: the
 * optout.networks list and the optout.file, built into one CIDR set. Used
 * by the module and by dnsfilter-check, so both judge the same way.
 */
#ifndef DNSFILTER_OPTOUT_H
#define DNSFILTER_OPTOUT_H

#include "dnsfilter/cidr.h"
#include "dnsfilter/error.h"
#include "dnsfilter/settings.h"

/**
 * Build the opt-out set of the settings.
 * @param settings: parsed settings.
 * @param set: set to the new set, or NULL when the settings name no
 *   networks at all (every client is filtered).
 * @param errors: every bad network, each naming the key or file and line.
 * @return 1 on success, 0 when refused (set is then NULL).
 */
int dnsf_optout_build(const struct dnsf_settings *settings, struct dnsf_cidr_set **set,
		      struct dnsf_errors *errors);

/**
 * Build the opt-out set of the settings with the opt-out file's bytes
 * already read (the module keeps them as the last-good copy).
 * @param text: the bytes of the file named settings->optout_file, or of
 *   its copy.
 * @param name: the file, for messages.
 */
int dnsf_optout_build_text(const struct dnsf_settings *settings, const char *text, size_t length,
			   const char *name, struct dnsf_cidr_set **set,
			   struct dnsf_errors *errors);

#endif
