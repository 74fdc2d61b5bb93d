/*
 * feed.c - parse and validate a dnsfilter-feed/1 feed.
 *
 * The bytes are checked (size, UTF-8, nesting) and parsed with cJSON, in
 * an arena; then every field is checked, every error reported, and every
 * name turned into a key. The names of all entries and of the allow list
 * become records (key, kind, entry) for the index builder (index.c, through
 * feed_parse.h).
 */
#include "dnsfilter/feed.h"
#include "dnsfilter/array.h"
#include "dnsfilter/json.h"
#include "dnsfilter/limits.h"
#include "dnsfilter/name.h"
#include "dnsfilter/timeparse.h"
#include "dnsfilter/utf8.h"
#include "feed_parse.h"

#include <cjson/cJSON.h>
#include <libpsl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct parser {
	const struct dnsf_feed_limits *limits;
	struct dnsf_errors *errors;
	/** what is being parsed into */
	struct dnsf_parsed_feed *feed;
	/** the feed's time zone offset, seconds east of UTC */
	int32_t timezone_offset;
	psl_ctx_t *psl;
	int out_of_memory;
};

void dnsf_feed_limits_default(struct dnsf_feed_limits *limits)
{
	limits->max_bytes = DNSF_FEED_MAX_BYTES_DEFAULT;
	limits->max_entries = DNSF_FEED_MAX_ENTRIES_DEFAULT;
	limits->max_names = DNSF_FEED_MAX_NAMES_DEFAULT;
}

static int add_record(struct parser *p, const struct dnsf_key *key, enum dnsf_record_kind kind,
		      uint32_t entry)
{
	struct dnsf_parsed_feed *feed = p->feed;

	if (!dnsf_array_grow((void **)&feed->records, &feed->record_capacity,
			     feed->record_count + 1, sizeof(*feed->records)) ||
	    !dnsf_array_grow((void **)&feed->keys, &feed->keys_capacity,
			     feed->keys_size + key->length, 1)) {
		p->out_of_memory = 1;
		return 0;
	}
	struct dnsf_record *record = &feed->records[feed->record_count++];
	record->prefix = 0;
	for (size_t i = 0; i < 8; i++)
		record->prefix = record->prefix << 8 | (i < key->length ? key->bytes[i] : 0);
	record->key_offset = (uint32_t)feed->keys_size;
	record->key_length = (uint8_t)key->length;
	record->kind = (uint8_t)kind;
	record->entry = entry;
	memcpy(feed->keys + feed->keys_size, key->bytes, key->length);
	feed->keys_size += key->length;
	return 1;
}

/* Check one name of an entry or of the allow list; add its record. */
static void parse_name(struct parser *p, const cJSON *item, const char *where, size_t position,
		       int is_allow, uint32_t entry, int force)
{
	struct dnsf_key key;
	const char *why = NULL;
	const char *text = cJSON_GetStringValue(item);
	int wildcard = 0;

	if (!text) {
		dnsf_errors_add(p->errors, "%s[%zu]: not a string", where, position);
		return;
	}
	if (strncmp(text, "*.", 2) == 0)
		wildcard = 1;
	if (!dnsf_key_from_feed_name(text + 2 * wildcard, &key, &why)) {
		dnsf_errors_add(p->errors, "%s[%zu]: \"%.300s\": %s", where, position, text, why);
		return;
	}
	if (!is_allow && !force && p->psl) {
		/* libpsl wants lowercase and no trailing dot; the name is
		 * valid here, so it fits */
		char base[DNSF_KEY_MAX + 1];
		size_t length = 0;
		for (const char *c = text + 2 * wildcard; *c; c++)
			base[length++] = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
		if (length > 0 && base[length - 1] == '.')
			length--;
		base[length] = 0;
		if (psl_is_public_suffix2(p->psl, base, PSL_TYPE_ANY)) {
			dnsf_errors_add(p->errors,
					"%s[%zu]: \"%.300s\": %s is a public suffix; "
					"add \"force\": true to the entry to list it",
					where, position, text, base);
			return;
		}
	}
	if (is_allow)
		add_record(p, &key, wildcard ? DNSF_RECORD_ALLOW_WILDCARD : DNSF_RECORD_ALLOW_EXACT,
			   0);
	else
		add_record(p, &key, wildcard ? DNSF_RECORD_WILDCARD : DNSF_RECORD_EXACT, entry);
	if (wildcard && !is_allow)
		p->feed->wildcard_count++;
	else if (!is_allow)
		p->feed->exact_count++;
	else
		p->feed->allow_count++;
}

static char *copy_string(struct parser *p, const char *text)
{
	char *copy = strdup(text);
	if (!copy)
		p->out_of_memory = 1;
	return copy;
}

static int parse_time_field(struct parser *p, const cJSON *value, const char *prefix,
			    const char *field, int64_t *out)
{
	const char *text = cJSON_GetStringValue(value);
	if (!text) {
		dnsf_errors_add(p->errors,
				"%s: %s: must be a date (YYYY-MM-DD) "
				"or an RFC 3339 timestamp string",
				prefix, field);
		return 0;
	}
	if (!dnsf_parse_time(text, p->timezone_offset, out)) {
		dnsf_errors_add(p->errors,
				"%s: %s: \"%.100s\" is not a date "
				"(YYYY-MM-DD) or an RFC 3339 timestamp",
				prefix, field, text);
		return 0;
	}
	return 1;
}

static const char *const entry_fields[] = { "id",  "behavior", "fqdns", "start",
					    "end", "action",   "force", NULL };

static int known_field(const char *const *fields, const char *name)
{
	for (size_t i = 0; fields[i]; i++)
		if (strcmp(fields[i], name) == 0)
			return 1;
	return 0;
}

/* Check one entry and add its names. */
static void parse_entry(struct parser *p, const cJSON *object, size_t position)
{
	struct dnsf_entry *entry = &p->feed->entries[position];
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(object, "id");
	const cJSON *field;
	char prefix[200];
	int times_ok = 1;

	entry->end = DNSF_TIME_NEVER;
	if (cJSON_IsString(id) && id->valuestring[0])
		snprintf(prefix, sizeof(prefix), "entry %zu (%.100s)", position, id->valuestring);
	else
		snprintf(prefix, sizeof(prefix), "entry %zu (no id)", position);
	if (!cJSON_IsObject(object)) {
		dnsf_errors_add(p->errors, "%s: not an object", prefix);
		return;
	}
	cJSON_ArrayForEach(field, object)
	{
		if (!known_field(entry_fields, field->string))
			dnsf_errors_add(p->errors, "%s: %.100s: unknown field", prefix,
					field->string);
	}
	if (!id)
		dnsf_errors_add(p->errors, "%s: id: missing", prefix);
	else if (!cJSON_IsString(id) || !id->valuestring[0])
		dnsf_errors_add(p->errors, "%s: id: must be a non-empty string", prefix);
	else
		entry->id = copy_string(p, id->valuestring);

	field = cJSON_GetObjectItemCaseSensitive(object, "behavior");
	if (field && !cJSON_IsString(field))
		dnsf_errors_add(p->errors, "%s: behavior: must be a string", prefix);
	entry->behavior = copy_string(p, cJSON_IsString(field) ? field->valuestring : "");

	field = cJSON_GetObjectItemCaseSensitive(object, "action");
	if (field) {
		const char *action = cJSON_GetStringValue(field);
		if (action && strcmp(action, "block") == 0)
			entry->action = DNSF_ACTION_BLOCK;
		else if (action && strcmp(action, "monitor") == 0)
			entry->action = DNSF_ACTION_MONITOR;
		else
			dnsf_errors_add(p->errors,
					"%s: action: must be \"block\" "
					"or \"monitor\"",
					prefix);
	}
	field = cJSON_GetObjectItemCaseSensitive(object, "force");
	if (field && !cJSON_IsBool(field))
		dnsf_errors_add(p->errors, "%s: force: must be true or false", prefix);
	entry->force = cJSON_IsTrue(field);

	field = cJSON_GetObjectItemCaseSensitive(object, "start");
	if (!field) {
		dnsf_errors_add(p->errors, "%s: start: missing", prefix);
		times_ok = 0;
	} else if (!parse_time_field(p, field, prefix, "start", &entry->start)) {
		times_ok = 0;
	}
	field = cJSON_GetObjectItemCaseSensitive(object, "end");
	if (field && !cJSON_IsNull(field)) {
		if (!parse_time_field(p, field, prefix, "end", &entry->end))
			times_ok = 0;
		else if (times_ok && entry->end < entry->start)
			dnsf_errors_add(p->errors, "%s: end: before start", prefix);
	}

	field = cJSON_GetObjectItemCaseSensitive(object, "fqdns");
	if (!field) {
		dnsf_errors_add(p->errors, "%s: fqdns: missing", prefix);
	} else if (!cJSON_IsArray(field) || cJSON_GetArraySize(field) == 0) {
		dnsf_errors_add(p->errors,
				"%s: fqdns: must be a non-empty array "
				"of names",
				prefix);
	} else {
		char where[220];
		size_t i = 0;
		const cJSON *name;
		snprintf(where, sizeof(where), "%s: fqdns", prefix);
		cJSON_ArrayForEach(name, field)
		{
			parse_name(p, name, where, i++, 0, (uint32_t)position, entry->force);
		}
		entry->fqdn_count = (uint32_t)i;
	}
}

static int compare_entry_ids(const void *x, const void *y, void *context)
{
	const struct dnsf_entry *entries = context;
	const struct dnsf_entry *a = &entries[*(const uint32_t *)x];
	const struct dnsf_entry *b = &entries[*(const uint32_t *)y];
	int order = strcmp(a->id, b->id);
	if (order)
		return order;
	return *(const uint32_t *)x < *(const uint32_t *)y ? -1 : 1;
}

static void check_unique_ids(struct parser *p)
{
	struct dnsf_parsed_feed *feed = p->feed;
	size_t count = 0;
	uint32_t *order = malloc(feed->entry_count * sizeof(*order) + 1);

	if (!order) {
		p->out_of_memory = 1;
		return;
	}
	for (size_t i = 0; i < feed->entry_count; i++)
		if (feed->entries[i].id)
			order[count++] = (uint32_t)i;
	qsort_r(order, count, sizeof(*order), compare_entry_ids, feed->entries);
	for (size_t i = 1; i < count; i++) {
		const struct dnsf_entry *a = &feed->entries[order[i - 1]];
		const struct dnsf_entry *b = &feed->entries[order[i]];
		if (strcmp(a->id, b->id) == 0)
			dnsf_errors_add(p->errors,
					"entry %u (%.100s): id: "
					"duplicate of entry %u",
					order[i], b->id, order[i - 1]);
	}
	free(order);
}

static const char *const root_fields[] = { "format",  "serial", "generated", "timezone",
					   "entries", "allow",  NULL };

static void parse_header(struct parser *p, const cJSON *root)
{
	struct dnsf_parsed_feed *feed = p->feed;
	const cJSON *field;

	cJSON_ArrayForEach(field, root)
	{
		if (!known_field(root_fields, field->string))
			dnsf_errors_add(p->errors, "%.100s: unknown field", field->string);
	}
	field = cJSON_GetObjectItemCaseSensitive(root, "format");
	if (!field)
		dnsf_errors_add(p->errors, "format: missing (must be \"" DNSF_FEED_FORMAT "\")");
	else if (!cJSON_IsString(field) || strcmp(field->valuestring, DNSF_FEED_FORMAT) != 0)
		dnsf_errors_add(p->errors, "format: must be \"" DNSF_FEED_FORMAT "\"");

	field = cJSON_GetObjectItemCaseSensitive(root, "serial");
	if (field) {
		double serial = cJSON_GetNumberValue(field);
		if (!cJSON_IsNumber(field) || serial < 0 || serial > 9007199254740992.0 ||
		    serial != (double)(uint64_t)serial)
			dnsf_errors_add(p->errors, "serial: must be a whole number "
						   "from 0 to 2^53");
		else {
			feed->serial = (uint64_t)serial;
			feed->has_serial = 1;
		}
	}
	field = cJSON_GetObjectItemCaseSensitive(root, "timezone");
	if (field && (!cJSON_IsString(field) ||
		      !dnsf_parse_utc_offset(field->valuestring, &p->timezone_offset)))
		dnsf_errors_add(p->errors, "timezone: must be a UTC offset like "
					   "\"+09:00\", \"-05:00\" or \"Z\"");
	field = cJSON_GetObjectItemCaseSensitive(root, "generated");
	if (field) {
		int64_t ignored;
		if (!cJSON_IsString(field) || !dnsf_parse_time(field->valuestring, 0, &ignored))
			dnsf_errors_add(p->errors, "generated: must be an RFC 3339 timestamp");
		else
			feed->generated = copy_string(p, field->valuestring);
	}
}

static void parse_body(struct parser *p, const cJSON *root)
{
	struct dnsf_parsed_feed *feed = p->feed;
	const cJSON *entries = cJSON_GetObjectItemCaseSensitive(root, "entries");
	const cJSON *allow = cJSON_GetObjectItemCaseSensitive(root, "allow");
	const cJSON *item;
	size_t count, i = 0;

	if (!entries) {
		dnsf_errors_add(p->errors, "entries: missing");
		return;
	}
	if (!cJSON_IsArray(entries)) {
		dnsf_errors_add(p->errors, "entries: must be an array");
		return;
	}
	count = (size_t)cJSON_GetArraySize(entries);
	if (count > p->limits->max_entries) {
		dnsf_errors_add_kind(p->errors, DNSF_ERROR_LIMIT,
				     "entries: %zu entries, more than the "
				     "limit of %zu",
				     count, p->limits->max_entries);
		return;
	}
	feed->entries = calloc(count + 1, sizeof(*feed->entries));
	if (!feed->entries) {
		p->out_of_memory = 1;
		return;
	}
	feed->entry_count = count;
	cJSON_ArrayForEach(item, entries)
	{
		parse_entry(p, item, i++);
		if (p->feed->record_count > p->limits->max_names) {
			dnsf_errors_add_kind(p->errors, DNSF_ERROR_LIMIT,
					     "entries: more than the limit of "
					     "%zu names",
					     p->limits->max_names);
			return;
		}
	}
	check_unique_ids(p);
	if (allow && !cJSON_IsArray(allow)) {
		dnsf_errors_add(p->errors, "allow: must be an array of names");
	} else if (allow) {
		i = 0;
		cJSON_ArrayForEach(item, allow)
		{
			parse_name(p, item, "allow", i++, 1, 0, 0);
		}
	}
}

/* Position of a byte offset as line:column, for JSON syntax errors. */
static void text_position(const char *text, size_t offset, size_t *line, size_t *column)
{
	*line = 1;
	*column = 1;
	for (size_t i = 0; i < offset; i++) {
		if (text[i] == '\n') {
			(*line)++;
			*column = 1;
		} else {
			(*column)++;
		}
	}
}

/* Offset where the nesting of arrays and objects first passes max_depth,
 * or length: refused before parsing, with a message that says why. */
static size_t too_deep_offset(const char *text, size_t length, size_t max_depth)
{
	size_t depth = 0;
	int in_string = 0;

	for (size_t i = 0; i < length; i++) {
		char c = text[i];
		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = 0;
		} else if (c == '"') {
			in_string = 1;
		} else if (c == '[' || c == '{') {
			if (++depth > max_depth)
				return i;
		} else if ((c == ']' || c == '}') && depth > 0) {
			depth--;
		}
	}
	return length;
}

/* Check the bytes and parse them; errors name the line and column. */
static cJSON *parse_json(const char *text, size_t length, const struct dnsf_feed_limits *limits,
			 struct dnsf_errors *errors)
{
	const char *parse_end = NULL;
	size_t line, column, offset;
	cJSON *root;

	if (length > limits->max_bytes) {
		dnsf_errors_add_kind(errors, DNSF_ERROR_LIMIT,
				     "feed is %zu bytes, more than the limit of %zu", length,
				     limits->max_bytes);
		return NULL;
	}
	offset = dnsf_utf8_invalid_offset(text, length);
	if (offset < length) {
		text_position(text, offset, &line, &column);
		dnsf_errors_add(errors, "not valid UTF-8 at line %zu column %zu", line, column);
		return NULL;
	}
	offset = too_deep_offset(text, length, DNSF_FEED_MAX_DEPTH);
	if (offset < length) {
		text_position(text, offset, &line, &column);
		dnsf_errors_add_kind(errors, DNSF_ERROR_LIMIT,
				     "JSON nested deeper than %d levels at line %zu column %zu",
				     DNSF_FEED_MAX_DEPTH, line, column);
		return NULL;
	}
	root = cJSON_ParseWithLengthOpts(text, length, &parse_end, 0);
	if (root)
		return root;
	offset = 0;
	if (parse_end && parse_end >= text && parse_end <= text + length)
		offset = (size_t)(parse_end - text);
	text_position(text, offset, &line, &column);
	dnsf_errors_add(errors, "JSON syntax error at line %zu column %zu%s", line, column,
			offset >= length ? " (truncated?)" : "");
	return NULL;
}

int dnsf_feed_parse(const char *text, size_t length, const struct dnsf_feed_limits *limits,
		    struct dnsf_parsed_feed *feed, struct dnsf_errors *errors)
{
	struct dnsf_feed_limits default_limits;
	struct parser p = { .errors = errors, .feed = feed };
	size_t errors_before = errors->count;
	struct dnsf_json_arena *arena;
	cJSON *root;

	memset(feed, 0, sizeof(*feed));
	if (!limits) {
		dnsf_feed_limits_default(&default_limits);
		limits = &default_limits;
	}
	p.limits = limits;
	/* The cJSON tree lives in an arena until the records are made. */
	arena = dnsf_json_arena_begin();
	if (!arena) {
		dnsf_errors_add_kind(errors, DNSF_ERROR_MEMORY, "out of memory");
		goto fail;
	}
	root = parse_json(text, length, limits, errors);
	if (!root)
		goto fail;
	if (!cJSON_IsObject(root)) {
		dnsf_errors_add(errors, "the feed must be a JSON object");
		goto fail;
	}
	p.psl = psl_latest(NULL);
	parse_header(&p, root);
	parse_body(&p, root);
	dnsf_json_arena_end(arena);
	arena = NULL;
	if (p.out_of_memory) {
		dnsf_errors_add_kind(errors, DNSF_ERROR_MEMORY, "out of memory");
		goto fail;
	}
	if (errors->count != errors_before)
		goto fail;
	/* psl_free leaves the built-in list psl_latest may return alone */
	psl_free(p.psl);
	return 1;
fail:
	dnsf_json_arena_end(arena);
	psl_free(p.psl);
	dnsf_parsed_feed_free(feed);
	return 0;
}

void dnsf_entries_free(struct dnsf_entry *entries, size_t count)
{
	if (!entries)
		return;
	for (size_t i = 0; i < count; i++) {
		free(entries[i].id);
		free(entries[i].behavior);
	}
	free(entries);
}

void dnsf_parsed_feed_free(struct dnsf_parsed_feed *feed)
{
	dnsf_entries_free(feed->entries, feed->entry_count);
	free(feed->generated);
	free(feed->records);
	free(feed->keys);
	memset(feed, 0, sizeof(*feed));
}
