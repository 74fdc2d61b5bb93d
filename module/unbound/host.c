/*
 * host.c - what the module learns about the Unbound that loaded it: that
 * it is the version the module was built for, whether its EDE option is
 * on, and where the settings file is (its working directory is Unbound's
 * directory:, inside the chroot).
 */
#include "config.h"

#include "dynlibmod/dynlibmod.h"
#include "util/config_file.h"
#include "util/log.h"
#include "util/module.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dnsfilter/error.h"
#include "dnsfilter/hostcheck.h"
#include "glue.h"

const char *const dnsfilter_built_for = BUILT_FOR;

/* The layout-relevant options of the tree the module was built against,
 * from its config.h. */
static unsigned tree_features(void)
{
	unsigned mask = 0;
#ifdef CLIENT_SUBNET
	mask |= DNSF_FEATURE_SUBNET;
#endif
#ifdef USE_CACHEDB
	mask |= DNSF_FEATURE_CACHEDB;
#endif
#ifdef USE_DNSCRYPT
	mask |= DNSF_FEATURE_DNSCRYPT;
#endif
#ifdef USE_DNSTAP
	mask |= DNSF_FEATURE_DNSTAP;
#endif
#ifdef HAVE_NGTCP2
	mask |= DNSF_FEATURE_NGTCP2;
#endif
	return mask;
}

/* Same version, but configured so that structs the module reads differ?
 * Compares the running binary's configure line with the tree's config.h. */
static int check_configure(void)
{
	unsigned running, built = tree_features(), differ;
	char *line;
	int found = dnsf_file_configure_line("/proc/self/exe", &line);

	if (found != 1) {
		log_warn("dnsfilter: cannot find the running Unbound's configure line; make "
			 "sure it was configured like the tree the module was built against "
			 "(%s)",
			 CONFCMDLINE);
		return 1;
	}
	running = dnsf_configure_features(line);
	free(line);
	differ = running ^ built;
	for (unsigned bit = 1; differ && bit < (1u << DNSF_FEATURE_COUNT); bit <<= 1)
		if (differ & bit)
			log_err("dnsfilter: the running Unbound was configured %s %s, the tree "
				"this module was built against %s it: the structs the module "
				"reads differ; rebuild it against a tree configured with the "
				"running Unbound's `unbound -V` line",
				running & bit ? "with" : "without",
				dnsf_configure_feature_option(bit),
				built & bit ? "with" : "without");
	return differ == 0;
}

int host_check_version(void)
{
	static const char built_for[] = BUILT_FOR;
	int found = dnsf_file_contains("/proc/self/exe", built_for, sizeof(built_for));

	if (found == 1)
		return check_configure();
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

char *host_settings_path(void)
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

int host_register_callbacks(struct module_env *env, int id, void *arg,
			    const struct host_callback *callbacks, size_t count, const char *what)
{
	struct dynlibmod_env *de = env->modinfo[id];

	for (size_t i = 0; i < count; i++)
		if (!de->inplace_cb_register_wrapped(callbacks[i].function, callbacks[i].kind, arg,
						     env, id)) {
			log_err("dnsfilter: cannot register Unbound's %s callbacks", what);
			host_unregister_callbacks(env, id, callbacks, count);
			return 0;
		}
	return 1;
}

void host_unregister_callbacks(struct module_env *env, int id,
			       const struct host_callback *callbacks, size_t count)
{
	struct dynlibmod_env *de = env->modinfo[id];

	for (size_t i = 0; i < count; i++)
		de->inplace_cb_delete_wrapped(env, callbacks[i].kind, id);
}

int host_ede_enabled(struct module_env *env)
{
	char *value = NULL;
	int on = 0;

	/* config_get_option_collate returns 0 on success */
	if (config_get_option_collate(env->cfg, "ede", &value) == 0 && value)
		on = strcmp(value, "yes") == 0;
	free(value);
	return on;
}

/*
 * Keep the module's code mapped after Unbound unloads it: a thread left
 * behind in a system call (watcher, reporter) returns into it one day.
 * Unbound's next dlopen of the same file then gets this copy back (its
 * globals included, which hold nothing of an old filter).
 */
void host_pin_module(void)
{
	Dl_info info;

	if (!dladdr((void *)host_pin_module, &info) || !info.dli_fname ||
	    !dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE))
		log_err("dnsfilter: cannot keep the module loaded for the thread left "
			"behind: %s",
			dlerror());
}

const char *dnsfilter_logged(const char *text, char *out)
{
	dnsf_escape(out, DNSFILTER_LOGGED_SIZE, text, strlen(text));
	return out;
}
