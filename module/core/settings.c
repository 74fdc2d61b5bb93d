/*
 * settings.c - dnsfilter.json.
 *
 * Keys may be written nested ({"sinkhole": {"a": ...}}) or dotted
 * ({"sinkhole.a": ...}); both are flattened to dotted names and looked up in
 * one table. As in nginx's command table, a row of the table is all there is
 * to know about a key: its type, where its value goes in struct
 * dnsf_settings (offsetof), the range or the words it accepts and its
 * default. One setter a type checks a JSON value and stores it. Unknown
 * keys, wrong types and bad values are errors naming the key and quoting
 * the value, and every error is reported.
 */
#include "dnsfilter/settings.h"
#include "dnsfilter/json.h"
#include "dnsfilter/file.h"
#include "dnsfilter/limits.h"
#include "dnsfilter/timeparse.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/** What a setting's value is, and so which setter stores it. */
enum setting_type {
	/** a file name, relative to the settings file's directory: char * */
	SETTING_PATH,
	/** true or false: int */
	SETTING_BOOL,
	/** a whole number in [min, max]: uint32_t */
	SETTING_UINT32,
	/** a whole number in [min, max]: uint64_t */
	SETTING_UINT64,
	/** one of the words: an enum */
	SETTING_WORD,
	/** an IPv4 address: struct in_addr */
	SETTING_IPV4,
	/** an IPv6 address: struct in6_addr */
	SETTING_IPV6,
	/** a list of strings: char ** and, at count_offset, its size_t count */
	SETTING_LIST,
	/** an RFC 3339 timestamp: int64_t Unix seconds, DNSF_ENFORCE_FROM_NONE
	 * when not given */
	SETTING_TIMESTAMP,
	/** a list of IPv4/IPv6 addresses: struct dnsf_address * and, at
	 * count_offset, its size_t count */
	SETTING_ADDRESSES,
};

/** A word a SETTING_WORD accepts, and the enum value it stands for. */
struct setting_word {
	const char *word;
	int value;
};

/** One row of the table. */
struct setting {
	/** dotted key */
	const char *key;
	/** what the value is */
	enum setting_type type;
	/** where it goes: offsetof in struct dnsf_settings */
	size_t offset;
	/** SETTING_UINT32, SETTING_UINT64: the range accepted */
	double min, max;
	/** SETTING_BOOL, SETTING_UINT*, SETTING_WORD: the value when not given */
	uint64_t initial;
	/** SETTING_WORD: the words accepted, ending with { NULL } */
	const struct setting_word *words;
	/** SETTING_LIST: offsetof the count */
	size_t count_offset;
	/** required: what the key names, for the message when it is missing */
	const char *required;
};

/* offsetof a member of struct dnsf_settings; a compile error unless the
 * member has type T, so a row cannot store a value of the wrong size */
#define FIELD(member, T)                                                                           \
	(offsetof(struct dnsf_settings, member) +                                                  \
	 0 * sizeof(_Generic(((struct dnsf_settings *)0)->member, T : 1)))

#define AS_PATH(member) .type = SETTING_PATH, .offset = FIELD(member, char *)
#define AS_BOOL(member) .type = SETTING_BOOL, .offset = FIELD(member, int)
#define AS_UINT32(member) .type = SETTING_UINT32, .offset = FIELD(member, uint32_t)
#define AS_UINT64(member) .type = SETTING_UINT64, .offset = FIELD(member, uint64_t)
#define AS_WORD(member, T) .type = SETTING_WORD, .offset = FIELD(member, T)
#define AS_IPV4(member) .type = SETTING_IPV4, .offset = FIELD(member, struct in_addr)
#define AS_IPV6(member) .type = SETTING_IPV6, .offset = FIELD(member, struct in6_addr)
#define AS_LIST(member, count)                                                                     \
	.type = SETTING_LIST, .offset = FIELD(member, char **), .count_offset = FIELD(count, size_t)
#define AS_TIMESTAMP(member) .type = SETTING_TIMESTAMP, .offset = FIELD(member, int64_t)
#define AS_ADDRESSES(member, count)                                                                \
	.type = SETTING_ADDRESSES, .offset = FIELD(member, struct dnsf_address *),                 \
	.count_offset = FIELD(count, size_t)

/* a word's value is stored through an int */
_Static_assert(sizeof(enum dnsf_other_types) == sizeof(int), "enum stored as int");
_Static_assert(sizeof(enum dnsf_mode) == sizeof(int), "enum stored as int");
_Static_assert(sizeof(enum dnsf_client_ip) == sizeof(int), "enum stored as int");

static const struct setting_word other_types_words[] = {
	{ "nodata", DNSF_OTHER_NODATA },
	{ "nxdomain", DNSF_OTHER_NXDOMAIN },
	{ "pass", DNSF_OTHER_PASS },
	{ NULL, 0 },
};

static const struct setting_word mode_words[] = {
	{ "enforce", DNSF_MODE_ENFORCE },
	{ "monitor", DNSF_MODE_MONITOR },
	{ NULL, 0 },
};

static const struct setting_word client_ip_words[] = {
	{ "full", DNSF_CLIENT_IP_FULL },
	{ "truncate", DNSF_CLIENT_IP_TRUNCATE },
	{ "none", DNSF_CLIENT_IP_NONE },
	{ NULL, 0 },
};

/* Every key (README's settings table documents them). The sinkhole
 * addresses default to 0.0.0.0 and ::, the zeroed addresses. */
static const struct setting settings_table[] = {
	{ "feed", AS_PATH(feed), .required = "the path of the feed file" },
	{ "sinkhole.a", AS_IPV4(sinkhole_a) },
	{ "sinkhole.aaaa", AS_IPV6(sinkhole_aaaa) },
	{ "ttl", AS_UINT32(ttl), .min = 0, .max = 604800, .initial = 60 },
	{ "other-types", AS_WORD(other_types, enum dnsf_other_types), .words = other_types_words,
	  .initial = DNSF_OTHER_NODATA },
	{ "mode", AS_WORD(mode, enum dnsf_mode), .words = mode_words,
	  .initial = DNSF_MODE_ENFORCE },
	{ "enforce-from", AS_TIMESTAMP(enforce_from) },
	{ "ede", AS_BOOL(ede), .initial = 1 },
	{ "match-cname", AS_BOOL(match_cname), .initial = 1 },
	{ "optout.networks", AS_LIST(optout_networks, optout_network_count) },
	{ "optout.file", AS_PATH(optout_file) },
	{ "optout.service-addresses", AS_ADDRESSES(service_addresses, service_address_count) },
	{ "state-dir", AS_PATH(state_dir) },
	{ "watch-interval", AS_UINT32(watch_interval), .min = 0, .max = 86400, .initial = 5 },
	{ "log.path", AS_PATH(log_path) },
	{ "log.client-ip", AS_WORD(log_client_ip, enum dnsf_client_ip), .words = client_ip_words,
	  .initial = DNSF_CLIENT_IP_FULL },
	{ "stats.path", AS_PATH(stats_path) },
	{ "stats.interval", AS_UINT32(stats_interval), .min = 1, .max = 86400, .initial = 60 },
	{ "metrics.path", AS_PATH(metrics_path) },
	{ "limits.feed-bytes", AS_UINT64(feed_max_bytes), .min = 1024, .max = 4294967296.0,
	  .initial = DNSF_FEED_MAX_BYTES_DEFAULT },
	{ "limits.feed-entries", AS_UINT64(feed_max_entries), .min = 1, .max = 100000000,
	  .initial = DNSF_FEED_MAX_ENTRIES_DEFAULT },
	{ "limits.feed-names", AS_UINT64(feed_max_names), .min = 1, .max = 100000000,
	  .initial = DNSF_FEED_MAX_NAMES_DEFAULT },
};

#define SETTINGS_COUNT (sizeof(settings_table) / sizeof(settings_table[0]))

/*
 * "<key>: must be <what>, not <value>": a string value quoted (escaped and
 * cut by the message formatter, error.h), a number, true, false or null as
 * written, "an array" or "an object".
 */
static void bad_value(const char *key, const char *what, const cJSON *value,
		      struct dnsf_errors *errors)
{
	char *printed;

	if (cJSON_IsString(value)) {
		dnsf_errors_add(errors, "%s: must be %s, not \"%s\"", key, what,
				value->valuestring);
		return;
	}
	if (cJSON_IsArray(value) || cJSON_IsObject(value)) {
		dnsf_errors_add(errors, "%s: must be %s, not %s", key, what,
				cJSON_IsArray(value) ? "an array" : "an object");
		return;
	}
	printed = cJSON_PrintUnformatted(value);
	dnsf_errors_add(errors, "%s: must be %s, not %s", key, what, printed ? printed : "that");
	cJSON_free(printed);
}

static void *field(struct dnsf_settings *settings, size_t offset)
{
	return (char *)settings + offset;
}

/* ---- one setter a type: check the value, store it, or say why not ---- */

typedef void (*setter)(const struct setting *setting, const cJSON *value,
		       struct dnsf_settings *settings, struct dnsf_errors *errors);

static void set_path(const struct setting *setting, const cJSON *value,
		     struct dnsf_settings *settings, struct dnsf_errors *errors)
{
	const char *path = cJSON_GetStringValue(value);
	char **out = field(settings, setting->offset);

	if (!path || !path[0]) {
		bad_value(setting->key, "a non-empty path", value, errors);
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
		dnsf_errors_add_kind(errors, DNSF_ERROR_MEMORY, "%s: out of memory", setting->key);
}

static void set_bool(const struct setting *setting, const cJSON *value,
		     struct dnsf_settings *settings, struct dnsf_errors *errors)
{
	if (!cJSON_IsBool(value)) {
		bad_value(setting->key, "true or false", value, errors);
		return;
	}
	*(int *)field(settings, setting->offset) = cJSON_IsTrue(value);
}

/* A whole number in the setting's range, or 0 with the error said. */
static int whole_number(const struct setting *setting, const cJSON *value, uint64_t *out,
			struct dnsf_errors *errors)
{
	double number = cJSON_GetNumberValue(value);
	char what[80];

	if (!cJSON_IsNumber(value) || !(number >= setting->min && number <= setting->max) ||
	    number != (double)(int64_t)number) {
		snprintf(what, sizeof(what), "a whole number from %.0f to %.0f", setting->min,
			 setting->max);
		bad_value(setting->key, what, value, errors);
		return 0;
	}
	*out = (uint64_t)number;
	return 1;
}

static void set_uint32(const struct setting *setting, const cJSON *value,
		       struct dnsf_settings *settings, struct dnsf_errors *errors)
{
	uint64_t number;

	if (whole_number(setting, value, &number, errors))
		*(uint32_t *)field(settings, setting->offset) = (uint32_t)number;
}

static void set_uint64(const struct setting *setting, const cJSON *value,
		       struct dnsf_settings *settings, struct dnsf_errors *errors)
{
	uint64_t number;

	if (whole_number(setting, value, &number, errors))
		*(uint64_t *)field(settings, setting->offset) = number;
}

static void set_word(const struct setting *setting, const cJSON *value,
		     struct dnsf_settings *settings, struct dnsf_errors *errors)
{
	const char *text = cJSON_GetStringValue(value);
	char what[200] = "";
	size_t used = 0, count = 0;

	for (const struct setting_word *word = setting->words; word->word; word++) {
		if (text && strcmp(text, word->word) == 0) {
			*(int *)field(settings, setting->offset) = word->value;
			return;
		}
		count++;
	}
	/* "a", "b" or "c" */
	for (size_t i = 0; i < count && used < sizeof(what); i++)
		used += (size_t)snprintf(what + used, sizeof(what) - used, "%s\"%s\"",
					 i == 0           ? ""
					 : i + 1 == count ? " or "
							  : ", ",
					 setting->words[i].word);
	bad_value(setting->key, what, value, errors);
}

static void set_ipv4(const struct setting *setting, const cJSON *value,
		     struct dnsf_settings *settings, struct dnsf_errors *errors)
{
	const char *text = cJSON_GetStringValue(value);

	if (!text || inet_pton(AF_INET, text, field(settings, setting->offset)) != 1)
		bad_value(setting->key, "an IPv4 address string", value, errors);
}

static void set_ipv6(const struct setting *setting, const cJSON *value,
		     struct dnsf_settings *settings, struct dnsf_errors *errors)
{
	const char *text = cJSON_GetStringValue(value);

	if (!text || inet_pton(AF_INET6, text, field(settings, setting->offset)) != 1)
		bad_value(setting->key, "an IPv6 address string", value, errors);
}

static void free_list(char **list, size_t count)
{
	for (size_t i = 0; list && i < count; i++)
		free(list[i]);
	free(list);
}

/* A list of strings; for optout.networks each is checked later, by the
 * opt-out builder. */
static void set_list(const struct setting *setting, const cJSON *value,
		     struct dnsf_settings *settings, struct dnsf_errors *errors)
{
	char ***list = field(settings, setting->offset);
	size_t *count = field(settings, setting->count_offset);
	const cJSON *item;

	if (!cJSON_IsArray(value)) {
		bad_value(setting->key, "a list of networks (CIDR strings)", value, errors);
		return;
	}
	free_list(*list, *count); /* given twice: the last one counts */
	*count = 0;
	*list = calloc((size_t)cJSON_GetArraySize(value) + 1, sizeof(char *));
	if (!*list) {
		dnsf_errors_add_kind(errors, DNSF_ERROR_MEMORY, "%s: out of memory", setting->key);
		return;
	}
	cJSON_ArrayForEach(item, value)
	{
		const char *text = cJSON_GetStringValue(item);
		if (!text) {
			char key[300];
			snprintf(key, sizeof(key), "%s[%zu]", setting->key, *count);
			bad_value(key, "a string", item, errors);
			text = "";
		}
		(*list)[*count] = strdup(text);
		if (!(*list)[*count])
			dnsf_errors_add_kind(errors, DNSF_ERROR_MEMORY, "%s: out of memory",
					     setting->key);
		(*count)++;
	}
}

/* A whole RFC 3339 timestamp with its UTC offset: a bare date would be
 * midnight in some zone the operator did not write down. */
static void set_timestamp(const struct setting *setting, const cJSON *value,
			  struct dnsf_settings *settings, struct dnsf_errors *errors)
{
	const char *text = cJSON_GetStringValue(value);
	int64_t *out = field(settings, setting->offset);

	if (!text || strlen(text) <= 10 || (text[10] != 'T' && text[10] != 't') ||
	    !dnsf_parse_time(text, 0, out)) {
		bad_value(setting->key,
			  "an RFC 3339 timestamp with its UTC offset "
			  "(\"2024-07-01T00:00:00+09:00\")",
			  value, errors);
		*out = DNSF_ENFORCE_FROM_NONE;
	}
}

/* One address of a list: IPv4 or IPv6 text, no prefix length, no zone, not
 * a wildcard (no query arrives at 0.0.0.0 or ::). */
static int parse_address(const char *text, struct dnsf_address *address)
{
	static const uint8_t v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	static const uint8_t zero[16] = { 0 };

	memset(address, 0, sizeof(*address));
	if (inet_pton(AF_INET, text, address->bytes) == 1) {
		address->family = AF_INET;
	} else if (inet_pton(AF_INET6, text, address->bytes) == 1) {
		address->family = AF_INET6;
		if (memcmp(address->bytes, v4_mapped, sizeof(v4_mapped)) == 0) {
			memmove(address->bytes, address->bytes + 12, 4);
			memset(address->bytes + 4, 0, 12);
			address->family = AF_INET;
		}
	} else {
		return 0;
	}
	return memcmp(address->bytes, zero, address->family == AF_INET ? 4 : 16) != 0;
}

static void set_addresses(const struct setting *setting, const cJSON *value,
			  struct dnsf_settings *settings, struct dnsf_errors *errors)
{
	struct dnsf_address **list = field(settings, setting->offset);
	size_t *count = field(settings, setting->count_offset);
	const cJSON *item;
	size_t index = 0;

	if (!cJSON_IsArray(value)) {
		bad_value(setting->key, "a list of IPv4 or IPv6 addresses", value, errors);
		return;
	}
	free(*list); /* given twice: the last one counts */
	*count = 0;
	*list = calloc((size_t)cJSON_GetArraySize(value) + 1, sizeof(**list));
	if (!*list) {
		dnsf_errors_add_kind(errors, DNSF_ERROR_MEMORY, "%s: out of memory", setting->key);
		return;
	}
	cJSON_ArrayForEach(item, value)
	{
		const char *text = cJSON_GetStringValue(item);
		struct dnsf_address *address = &(*list)[*count];
		char key[300];

		snprintf(key, sizeof(key), "%s[%zu]", setting->key, index++);
		if (!text || !parse_address(text, address)) {
			bad_value(key, "an IPv4 or IPv6 address (not a network, not a wildcard)",
				  item, errors);
			continue;
		}
		if (dnsf_settings_is_service_address(settings, address->family, address->bytes)) {
			dnsf_errors_add(errors, "%s: \"%s\": given twice", key, text);
			continue;
		}
		(*count)++;
	}
}

static const setter setters[] = {
	[SETTING_PATH] = set_path,           [SETTING_BOOL] = set_bool,
	[SETTING_UINT32] = set_uint32,       [SETTING_UINT64] = set_uint64,
	[SETTING_WORD] = set_word,           [SETTING_IPV4] = set_ipv4,
	[SETTING_IPV6] = set_ipv6,           [SETTING_LIST] = set_list,
	[SETTING_TIMESTAMP] = set_timestamp, [SETTING_ADDRESSES] = set_addresses,
};

/* The defaults: the rows' initial values; everything else is zero. */
static void set_defaults(struct dnsf_settings *settings)
{
	memset(settings, 0, sizeof(*settings));
	for (size_t i = 0; i < SETTINGS_COUNT; i++) {
		const struct setting *setting = &settings_table[i];
		void *out = field(settings, setting->offset);
		switch (setting->type) {
		case SETTING_BOOL:
		case SETTING_WORD:
			*(int *)out = (int)setting->initial;
			break;
		case SETTING_UINT32:
			*(uint32_t *)out = (uint32_t)setting->initial;
			break;
		case SETTING_UINT64:
			*(uint64_t *)out = setting->initial;
			break;
		case SETTING_TIMESTAMP:
			*(int64_t *)out = DNSF_ENFORCE_FROM_NONE;
			break;
		default:
			break;
		}
	}
}

static const struct setting *find_setting(const char *key)
{
	for (size_t i = 0; i < SETTINGS_COUNT; i++)
		if (strcmp(settings_table[i].key, key) == 0)
			return &settings_table[i];
	return NULL;
}

/* Does some setting start with "prefix."? Then an object there is nesting. */
static int is_group(const char *prefix)
{
	size_t length = strlen(prefix);
	for (size_t i = 0; i < SETTINGS_COUNT; i++)
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
			setters[setting->type](setting, item, settings, errors);
		} else if (cJSON_IsObject(item) && is_group(key)) {
			parse_object(item, key, settings, errors, seen);
		} else {
			dnsf_errors_add(errors, "%s: unknown key", key);
		}
	}
}

/* Settings that are each valid but contradict one another. */
static void check_combinations(const struct dnsf_settings *settings, struct dnsf_errors *errors)
{
	/* Which one did the operator mean? Monitor for good, or monitor until
	 * a date? Guessing either way filters (or stops filtering) customers
	 * the operator did not expect to, so neither is guessed. */
	if (settings->mode == DNSF_MODE_MONITOR && settings->enforce_from != DNSF_ENFORCE_FROM_NONE)
		dnsf_errors_add(errors,
				"enforce-from: cannot be combined with \"mode\": "
				"\"monitor\" (monitor never enforces); remove \"mode\" to "
				"monitor until enforce-from, or enforce-from to monitor for "
				"good");
}

/* The last-good copies live beside the feed unless state-dir says where. */
static void default_state_dir(struct dnsf_settings *settings, struct dnsf_errors *errors)
{
	const char *slash;

	if (settings->state_dir || !settings->feed)
		return;
	slash = strrchr(settings->feed, '/');
	if (!slash)
		settings->state_dir = strdup(".");
	else if (slash == settings->feed)
		settings->state_dir = strdup("/");
	else
		settings->state_dir = strndup(settings->feed, (size_t)(slash - settings->feed));
	if (!settings->state_dir)
		dnsf_errors_add_kind(errors, DNSF_ERROR_MEMORY, "out of memory");
}

int dnsf_settings_parse(const char *text, size_t length, const char *source,
			struct dnsf_settings *settings, struct dnsf_errors *errors)
{
	unsigned char seen[SETTINGS_COUNT] = { 0 };
	size_t errors_before = errors->count;
	const char *parse_end = NULL;
	cJSON *root;

	set_defaults(settings);
	settings->source = strdup(source);
	if (!settings->source) {
		dnsf_errors_add_kind(errors, DNSF_ERROR_MEMORY, "out of memory");
		return 0;
	}
	/* in an arena, which tells a failed allocation from a syntax error */
	struct dnsf_json_arena *arena = dnsf_json_arena_begin();
	if (!arena) {
		dnsf_errors_add_kind(errors, DNSF_ERROR_MEMORY, "out of memory");
		return 0;
	}
	root = cJSON_ParseWithLengthOpts(text, length, &parse_end, 0);
	if (!root && dnsf_json_arena_failed(arena)) {
		dnsf_json_arena_end(arena);
		dnsf_errors_add_kind(errors, DNSF_ERROR_MEMORY,
				     "out of memory while parsing the JSON (%zu bytes)", length);
		return 0;
	}
	if (!root) {
		dnsf_json_arena_end(arena);
		size_t offset = parse_end ? (size_t)(parse_end - text) : 0, line = 1;
		for (size_t i = 0; i < offset && i < length; i++)
			line += text[i] == '\n';
		dnsf_errors_add(errors, "JSON syntax error at line %zu", line);
		return 0;
	}
	if (!cJSON_IsObject(root)) {
		dnsf_errors_add(errors, "settings must be a JSON object");
	} else {
		parse_object(root, "", settings, errors, seen);
		for (size_t i = 0; i < SETTINGS_COUNT; i++)
			if (settings_table[i].required && !seen[i])
				dnsf_errors_add(errors, "%s: missing (%s)", settings_table[i].key,
						settings_table[i].required);
		check_combinations(settings, errors);
		default_state_dir(settings, errors);
	}
	cJSON_Delete(root);
	dnsf_json_arena_end(arena);
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

void dnsf_settings_feed_limits(const struct dnsf_settings *settings,
			       struct dnsf_feed_limits *limits)
{
	dnsf_feed_limits_default(limits);
	limits->max_bytes = settings->feed_max_bytes;
	limits->max_entries = settings->feed_max_entries;
	limits->max_names = settings->feed_max_names;
}

enum dnsf_mode dnsf_settings_mode_at(const struct dnsf_settings *settings, int64_t now)
{
	if (settings->enforce_from != DNSF_ENFORCE_FROM_NONE && now < settings->enforce_from)
		return DNSF_MODE_MONITOR;
	return settings->mode;
}

int dnsf_settings_is_service_address(const struct dnsf_settings *settings, int family,
				     const void *bytes)
{
	static const uint8_t v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	const uint8_t *address = bytes;

	if (family == AF_INET6 && memcmp(address, v4_mapped, sizeof(v4_mapped)) == 0) {
		family = AF_INET;
		address += 12;
	}
	if (family != AF_INET && family != AF_INET6)
		return 0;
	for (size_t i = 0; i < settings->service_address_count; i++) {
		const struct dnsf_address *service = &settings->service_addresses[i];
		if (service->family == family &&
		    memcmp(service->bytes, address, family == AF_INET ? 4 : 16) == 0)
			return 1;
	}
	return 0;
}

void dnsf_settings_free(struct dnsf_settings *settings)
{
	free(settings->source);
	for (size_t i = 0; i < SETTINGS_COUNT; i++) {
		const struct setting *setting = &settings_table[i];
		if (setting->type == SETTING_PATH)
			free(*(char **)field(settings, setting->offset));
		else if (setting->type == SETTING_ADDRESSES)
			free(*(struct dnsf_address **)field(settings, setting->offset));
		else if (setting->type == SETTING_LIST)
			free_list(*(char ***)field(settings, setting->offset),
				  *(size_t *)field(settings, setting->count_offset));
	}
	memset(settings, 0, sizeof(*settings));
}
