/* libFuzzer target: the settings parser. */
#include <stdint.h>
#include <stdlib.h>

#include "dnsfilter/settings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dnsf_settings settings;
	struct dnsf_errors errors = { 0 };
	int ok = dnsf_settings_parse((const char *)data, size, "/etc/unbound/dnsfilter.json",
				     &settings, &errors);

	if (ok == (errors.count > 0))
		abort(); /* valid exactly when no error was reported */
	if (ok && !settings.feed)
		abort();
	dnsf_errors_clear(&errors);
	dnsf_settings_free(&settings);
	return 0;
}
