/*
 * settings.c - dnsfilter.json.
 *
 * Keys may be written nested ({"sinkhole": {"a": ...}}) or dotted
 * ({"sinkhole.a": ...}); both are flattened to dotted names and looked up in
 * one table. Unknown keys, wrong types and bad values are errors naming the
 * key, and every error is reported.
 */
#include "dnsfilter/settings.h"
#include "dnsfilter/file.h"
#include "dnsfilter/limits.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct setting;
typedef void (*setting_parser)(const struct setting *setting, const cJSON *value,
			       struct dnsf_settings *settings, struct dnsf_errors *errors);

struct setting {
	/** dotted key */
	const char *key;
	/** parser of its value */
	setting_parser parse;
};

static int whole_number(const struct setting *setting, const cJSON *value, double min, double max,
			uint64_t *out, struct dnsf_errors *errors);

/* A path setting, relative to the settings file's directory. */
static void parse_path(const struct setting *setting, const cJSON *value,
		       const struct dnsf_settings *settings, char **out, struct dnsf_errors *errors)
{
	const char *path = cJSON_GetStringValue(value);
	if (!path || !path[0]) {
		dnsf_errors_add(errors, "%s: must be a non-empty path", setting->key);
		return;
	}
	free(*out);
	*out = NULL;
	if (path[0] == '/' || !strchr(settings->source, '/')) {
		*out = strdup(path);
	} else {
		const char *slash = strrchr(settings->source, '/');
		int directory = (int)(slash - settings->source);
		if (asprintf(out, "%.*s/%s", directory, settings->source, path) < 0)
			*out = NULL;
	}
	if (!*out)
		dnsf_errors_add(errors, "%s: out of memory", setting->key);
}

static void parse_feed(const struct setting *setting, const cJSON *value,
		       struct dnsf_settings *settings, struct dnsf_errors *errors)
{
	parse_path(setting, value, settings, &settings->feed, errors);
}

static void parse_optout_file(const struct setting *setting, const cJSON *value,
			      struct dnsf_settings *settings, struct dnsf_errors *errors)
{
	parse_path(setting, value, settings, &settings->optout_file, errors);
}

static void parse_log_path(const struct setting *setting, const cJSON *value,
			   struct dnsf_settings *settings, struct dnsf_errors *errors)
{
	parse_path(setting, value, settings, &settings->log_path, errors);
}

static void parse_stats_path(const struct setting *setting, const cJSON *value,
			     struct dnsf_settings *settings, struct dnsf_errors *errors)
{
	parse_path(setting, value, settings, &settings->stats_path, errors);
}

static void parse_metrics_path(const struct setting *setting, const cJSON *value,
			       struct dnsf_settings *settings, struct dnsf_errors *errors)
{
	parse_path(setting, value, settings, &settings->metrics_path, errors);
}

/* A list of strings; each is checked later by the opt-out builder. */
static void parse_optout_networks(const struct setting *setting, const cJSON *value,
				  struct dnsf_settings *settings, struct dnsf_errors *errors)
{
	const cJSON *item;
	size_t count = 0;

	if (!cJSON_IsArray(value)) {
		dnsf_errors_add(errors, "%s: must be a list of networks (CIDR strings)",
				setting->key);
		return;
	}
	settings->optout_networks = calloc((size_t)cJSON_GetArraySize(value) + 1, sizeof(char *));
	if (!settings->optout_networks) {
		dnsf_errors_add(errors, "%s: out of memory", setting->key);
		return;
	}
	cJSON_ArrayForEach(item, value)
	{
		const char *text = cJSON_GetStringValue(item);
		if (!text) {
			dnsf_errors_add(errors, "%s[%zu]: must be a string", setting->key, count);
			text = "";
		}
		settings->optout_networks[count] = strdup(text);
		if (!settings->optout_networks[count])
			dnsf_errors_add(errors, "%s: out of memory", setting->key);
		count++;
	}
	settings->optout_network_count = count;
}

static void parse_watch_interval(const struct setting *setting, const cJSON *value,
				 struct dnsf_settings *settings, struct dnsf_errors *errors)
{
	uint64_t seconds;
	if (whole_number(setting, value, 0, 86400, &seconds, errors))
		settings->watch_interval = (uint32_t)seconds;
}

static void parse_stats_interval(const struct setting *setting, const cJSON *value,
				 struct dnsf_settings *settings, struct dnsf_errors *errors)
{
	uint64_t seconds;
	if (whole_number(setting, value, 1, 86400, &seconds, errors))
		settings->stats_interval = (uint32_t)seconds;
}

static void parse_sinkhole_a(const struct setting *setting, const cJSON *value,
			     struct dnsf_settings *settings, struct dnsf_errors *errors)
{
	const char *text = cJSON_GetStringValue(value);
	if (!text || inet_pton(AF_INET, text, &settings->sinkhole_a) != 1)
		dnsf_errors_add(errors, "%s: must be an IPv4 address string, not %s", setting->key,
				text ? text : "that");
}

static void parse_sinkhole_aaaa(const struct setting *setting, const cJSON *value,
				struct dnsf_settings *settings, struct dnsf_errors *errors)
{
	const char *text = cJSON_GetStringValue(value);
	if (!text || inet_pton(AF_INET6, text, &settings->sinkhole_aaaa) != 1)
		dnsf_errors_add(errors, "%s: must be an IPv6 address string, not %s", setting->key,
				text ? text : "that");
}

/* A whole number in [min, max]. */
static int whole_number(const struct setting *setting, const cJSON *value, double min, double max,
			uint64_t *out, struct dnsf_errors *errors)
{
	double number = cJSON_GetNumberValue(value);
	if (!cJSON_IsNumber(value) || !(number >= min && number <= max) ||
	    number != (double)(int64_t)number) {
		dnsf_errors_add(errors, "%s: must be a whole number from %.0f to %.0f",
				setting->key, min, max);
		return 0;
	}
	*out = (uint64_t)number;
	return 1;
}

static void parse_ttl(const struct setting *setting, const cJSON *value,
		      struct dnsf_settings *settings, struct dnsf_errors *errors)
{
	uint64_t ttl;
	if (whole_number(setting, value, 0, 604800, &ttl, errors))
		settings->ttl = (uint32_t)ttl;
}

static void parse_other_types(const struct setting *setting, const cJSON *value,
			      struct dnsf_settings *settings, struct dnsf_errors *errors)
{
	const char *text = cJSON_GetStringValue(value);
	if (text && strcmp(text, "nodata") == 0)
		settings->other_types = DNSF_OTHER_NODATA;
	else if (text && strcmp(text, "nxdomain") == 0)
		settings->other_types = DNSF_OTHER_NXDOMAIN;
	else if (text && strcmp(text, "pass") == 0)
		settings->other_types = DNSF_OTHER_PASS;
	else
		dnsf_errors_add(errors, "%s: must be \"nodata\", \"nxdomain\" or \"pass\"",
				setting->key);
}

static void parse_mode(const struct setting *setting, const cJSON *value,
		       struct dnsf_settings *settings, struct dnsf_errors *errors)
{
	const char *text = cJSON_GetStringValue(value);
	if (text && strcmp(text, "enforce") == 0)
		settings->mode = DNSF_MODE_ENFORCE;
	else if (text && strcmp(text, "monitor") == 0)
		settings->mode = DNSF_MODE_MONITOR;
	else
		dnsf_errors_add(errors, "%s: must be \"enforce\" or \"monitor\"", setting->key);
}

static void parse_log_client_ip(const struct setting *setting, const cJSON *value,
				struct dnsf_settings *settings, struct dnsf_errors *errors)
{
	const char *text = cJSON_GetStringValue(value);
	if (text && strcmp(text, "full") == 0)
		settings->log_client_ip = DNSF_CLIENT_IP_FULL;
	else if (text && strcmp(text, "truncate") == 0)
		settings->log_client_ip = DNSF_CLIENT_IP_TRUNCATE;
	else if (text && strcmp(text, "none") == 0)
		settings->log_client_ip = DNSF_CLIENT_IP_NONE;
	else
		dnsf_errors_add(errors, "%s: must be \"full\", \"truncate\" or \"none\"",
				setting->key);
}

static int parse_bool(const struct setting *setting, const cJSON *value, int *out,
		      struct dnsf_errors *errors)
{
	if (!cJSON_IsBool(value)) {
		dnsf_errors_add(errors, "%s: must be true or false", setting->key);
		return 0;
	}
	*out = cJSON_IsTrue(value);
	return 1;
}

static void parse_ede(const struct setting *setting, const cJSON *value,
		      struct dnsf_settings *settings, struct dnsf_errors *errors)
{
	parse_bool(setting, value, &settings->ede, errors);
}

static void parse_match_cname(const struct setting *setting, const cJSON *value,
			      struct dnsf_settings *settings, struct dnsf_errors *errors)
{
	parse_bool(setting, value, &settings->match_cname, errors);
}

static void parse_max_bytes(const struct setting *setting, const cJSON *value,
			    struct dnsf_settings *settings, struct dnsf_errors *errors)
{
	whole_number(setting, value, 1024, 4294967296.0, &settings->feed_max_bytes, errors);
}

static void parse_max_entries(const struct setting *setting, const cJSON *value,
			      struct dnsf_settings *settings, struct dnsf_errors *errors)
{
	whole_number(setting, value, 1, 100000000, &settings->feed_max_entries, errors);
}

static void parse_max_names(const struct setting *setting, const cJSON *value,
			    struct dnsf_settings *settings, struct dnsf_errors *errors)
{
	whole_number(setting, value, 1, 100000000, &settings->feed_max_names, errors);
}

static const struct setting settings_table[] = {
	{ "feed", parse_feed },
	{ "sinkhole.a", parse_sinkhole_a },
	{ "sinkhole.aaaa", parse_sinkhole_aaaa },
	{ "ttl", parse_ttl },
	{ "other-types", parse_other_types },
	{ "mode", parse_mode },
	{ "ede", parse_ede },
	{ "match-cname", parse_match_cname },
	{ "optout.networks", parse_optout_networks },
	{ "optout.file", parse_optout_file },
	{ "watch-interval", parse_watch_interval },
	{ "log.path", parse_log_path },
	{ "log.client-ip", parse_log_client_ip },
	{ "stats.path", parse_stats_path },
	{ "stats.interval", parse_stats_interval },
	{ "metrics.path", parse_metrics_path },
	{ "limits.feed-bytes", parse_max_bytes },
	{ "limits.feed-entries", parse_max_entries },
	{ "limits.feed-names", parse_max_names },
};

static const struct setting *find_setting(const char *key)
{
	for (size_t i = 0; i < sizeof(settings_table) / sizeof(settings_table[0]); i++)
		if (strcmp(settings_table[i].key, key) == 0)
			return &settings_table[i];
	return NULL;
}

/* Does some setting start with "prefix."? Then an object there is nesting. */
static int is_group(const char *prefix)
{
	size_t length = strlen(prefix);
	for (size_t i = 0; i < sizeof(settings_table) / sizeof(settings_table[0]); i++)
		if (strncmp(settings_table[i].key, prefix, length) == 0 &&
		    settings_table[i].key[length] == '.')
			return 1;
	return 0;
}

static void parse_object(const cJSON *object, const char *prefix, struct dnsf_settings *settings,
			 struct dnsf_errors *errors, unsigned char *seen)
{
	const cJSON *item;
	cJSON_ArrayForEach(item, object)
	{
		char key[256];
		snprintf(key, sizeof(key), "%s%s%s", prefix, prefix[0] ? "." : "", item->string);
		const struct setting *setting = find_setting(key);
		if (setting) {
			size_t slot = (size_t)(setting - settings_table);
			if (seen[slot])
				dnsf_errors_add(errors, "%s: given twice", key);
			seen[slot] = 1;
			setting->parse(setting, item, settings, errors);
		} else if (cJSON_IsObject(item) && is_group(key)) {
			parse_object(item, key, settings, errors, seen);
		} else {
			dnsf_errors_add(errors, "%s: unknown key", key);
		}
	}
}

int dnsf_settings_parse(const char *text, size_t length, const char *source,
			struct dnsf_settings *settings, struct dnsf_errors *errors)
{
	unsigned char seen[sizeof(settings_table) / sizeof(settings_table[0])] = { 0 };
	size_t errors_before = errors->count;
	const char *parse_end = NULL;
	cJSON *root;

	memset(settings, 0, sizeof(*settings));
	settings->ttl = 60;
	settings->ede = 1;
	settings->match_cname = 1;
	settings->watch_interval = 5;
	settings->stats_interval = 60;
	settings->feed_max_bytes = DNSF_FEED_MAX_BYTES_DEFAULT;
	settings->feed_max_entries = DNSF_FEED_MAX_ENTRIES_DEFAULT;
	settings->feed_max_names = DNSF_FEED_MAX_NAMES_DEFAULT;
	/* sinkhole defaults 0.0.0.0 and :: are the zeroed addresses */
	settings->source = strdup(source);
	if (!settings->source) {
		dnsf_errors_add(errors, "out of memory");
		return 0;
	}
	root = cJSON_ParseWithLengthOpts(text, length, &parse_end, 0);
	if (!root) {
		size_t offset = parse_end ? (size_t)(parse_end - text) : 0, line = 1;
		for (size_t i = 0; i < offset && i < length; i++)
			line += text[i] == '\n';
		dnsf_errors_add(errors, "JSON syntax error at line %zu", line);
		return 0;
	}
	if (!cJSON_IsObject(root))
		dnsf_errors_add(errors, "settings must be a JSON object");
	else
		parse_object(root, "", settings, errors, seen);
	cJSON_Delete(root);
	if (!settings->feed && errors->count == errors_before)
		dnsf_errors_add(errors, "feed: missing (the path of the feed file)");
	return errors->count == errors_before;
}

int dnsf_settings_load(const char *path, struct dnsf_settings *settings, struct dnsf_errors *errors)
{
	char *text;
	size_t length;
	int ok;

	memset(settings, 0, sizeof(*settings));
	/* messages follow the path in the caller's log line */
	if (!dnsf_file_read(path, DNSF_SETTINGS_MAX_BYTES, NULL, &text, &length, errors))
		return 0;
	ok = dnsf_settings_parse(text, length, path, settings, errors);
	free(text);
	return ok;
}

void dnsf_settings_free(struct dnsf_settings *settings)
{
	free(settings->source);
	free(settings->feed);
	free(settings->optout_file);
	free(settings->log_path);
	free(settings->stats_path);
	free(settings->metrics_path);
	for (size_t i = 0; i < settings->optout_network_count; i++)
		free(settings->optout_networks[i]);
	free(settings->optout_networks);
	memset(settings, 0, sizeof(*settings));
}
