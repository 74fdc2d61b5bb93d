/*
 * feed.c - parse and validate a dnsfilter-feed/1 feed.
 *
 * The bytes are checked (size, UTF-8, nesting, control characters) and
 * parsed with cJSON, in an arena, as exactly one JSON document with no key
 * twice in an object: where cJSON is more lenient than JSON (text after
 * the document, control characters, a repeated key, of which it keeps the
 * first and Python's json the last) the module and the scripts would read
 * one file two ways. Then every field is checked, every error reported,
 * and every name turned into a key. The names of all entries and of the allow list
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

/* Check one name of an entry or of the allow list; add its record. A
 * public suffix needs force: listed, it would block a whole top-level
 * domain; allowed, it would turn the filter off for all of it. */
static void parse_name(struct parser *p, const cJSON *item, const char *where, size_t position,
		       const char *suffix, int is_allow, uint32_t entry, int force)
{
	struct dnsf_key key;
	const char *why = NULL;
	const char *text = cJSON_GetStringValue(item);
	int wildcard = 0;

	if (!text) {
		dnsf_errors_add(p->errors, "%s[%zu]%s: not a string", where, position, suffix);
		return;
	}
	if (strncmp(text, "*.", 2) == 0)
		wildcard = 1;
	if (!dnsf_key_from_feed_name(text + 2 * wildcard, &key, &why)) {
		dnsf_errors_add(p->errors, "%s[%zu]%s: \"%.300s\": %s", where, position, suffix,
				text, why);
		return;
	}
	if (!force) {
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
			if (is_allow)
				dnsf_errors_add(p->errors,
						"%s[%zu]%s: \"%.300s\": %s is a public suffix; "
						"write {\"name\": \"%.300s\", \"force\": true} "
						"to allow it",
						where, position, suffix, text, base, text);
			else
				dnsf_errors_add(p->errors,
						"%s[%zu]%s: \"%.300s\": %s is a public suffix; "
						"add \"force\": true to the entry to list it",
						where, position, suffix, text, base);
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
	entry->position = (uint32_t)position;
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
	else if (strlen(id->valuestring) > DNSF_FEED_ID_MAX)
		dnsf_errors_add(p->errors, "%s: id: %zu bytes, longer than the limit of %d", prefix,
				strlen(id->valuestring), DNSF_FEED_ID_MAX);
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
			parse_name(p, name, where, i++, "", 0, (uint32_t)position, entry->force);
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

static const char *const allow_fields[] = { "name", "force", NULL };

/* One item of the allow list: a name, or {"name": ..., "force": true} for
 * a public suffix. */
static void parse_allow_item(struct parser *p, const cJSON *item, size_t position)
{
	const cJSON *name, *force, *field;

	if (cJSON_IsString(item)) {
		parse_name(p, item, "allow", position, "", 1, 0, 0);
		return;
	}
	if (!cJSON_IsObject(item)) {
		dnsf_errors_add(p->errors,
				"allow[%zu]: must be a name or an object "
				"{\"name\": ..., \"force\": true}",
				position);
		return;
	}
	cJSON_ArrayForEach(field, item)
	{
		if (!known_field(allow_fields, field->string))
			dnsf_errors_add(p->errors, "allow[%zu]: %.100s: unknown field", position,
					field->string);
	}
	force = cJSON_GetObjectItemCaseSensitive(item, "force");
	if (force && !cJSON_IsBool(force))
		dnsf_errors_add(p->errors, "allow[%zu]: force: must be true or false", position);
	name = cJSON_GetObjectItemCaseSensitive(item, "name");
	if (!name) {
		dnsf_errors_add(p->errors, "allow[%zu]: name: missing", position);
		return;
	}
	parse_name(p, name, "allow", position, ".name", 1, 0, cJSON_IsTrue(force));
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
			parse_allow_item(p, item, i++);
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

/** What the scan of the bytes before parsing found. */
enum byte_problem {
	BYTES_OK,
	/** arrays and objects nested deeper than the limit */
	BYTES_TOO_DEEP,
	/** a control character outside a string that is not JSON whitespace,
	 * or one inside a string (JSON allows neither; cJSON takes both) */
	BYTES_CONTROL,
};

static int is_json_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Scan the bytes before parsing: the first place where the nesting of
 * arrays and objects passes max_depth, or a control character JSON does
 * not allow; *offset is set to it. Refused before parsing, with a message
 * that says why. */
static enum byte_problem scan_bytes(const char *text, size_t length, size_t max_depth,
				    size_t *offset)
{
	size_t depth = 0;
	int in_string = 0;

	for (size_t i = 0; i < length; i++) {
		unsigned char c = (unsigned char)text[i];
		*offset = i;
		if (c < 0x20 && (in_string || !is_json_space((char)c)))
			return BYTES_CONTROL;
		if (in_string) {
			if (c == '\\' && i + 1 < length && (unsigned char)text[i + 1] >= 0x20)
				i++;
			else if (c == '"')
				in_string = 0;
		} else if (c == '"') {
			in_string = 1;
		} else if (c == '[' || c == '{') {
			if (++depth > max_depth)
				return BYTES_TOO_DEEP;
		} else if ((c == ']' || c == '}') && depth > 0) {
			depth--;
		}
	}
	*offset = length;
	return BYTES_OK;
}

/* Check the bytes and parse them; errors name the line and column. */
static cJSON *parse_json(const char *text, size_t length, const struct dnsf_feed_limits *limits,
			 const struct dnsf_json_arena *arena, struct dnsf_errors *errors)
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
	switch (scan_bytes(text, length, DNSF_FEED_MAX_DEPTH, &offset)) {
	case BYTES_TOO_DEEP:
		text_position(text, offset, &line, &column);
		dnsf_errors_add_kind(errors, DNSF_ERROR_LIMIT,
				     "JSON nested deeper than %d levels at line %zu column %zu",
				     DNSF_FEED_MAX_DEPTH, line, column);
		return NULL;
	case BYTES_CONTROL:
		text_position(text, offset, &line, &column);
		dnsf_errors_add(errors,
				"JSON syntax error at line %zu column %zu: control character "
				"0x%02x (write it as \\u%04x in a string)",
				line, column, (unsigned char)text[offset],
				(unsigned char)text[offset]);
		return NULL;
	case BYTES_OK:
		break;
	}
	root = cJSON_ParseWithLengthOpts(text, length, &parse_end, 0);
	if (root) {
		/* exactly one document: only whitespace may follow it */
		offset = (size_t)(parse_end - text);
		while (offset < length && is_json_space(text[offset]))
			offset++;
		if (offset == length)
			return root;
		cJSON_Delete(root);
		text_position(text, offset, &line, &column);
		dnsf_errors_add(errors,
				"JSON syntax error at line %zu column %zu: text after the end "
				"of the JSON document",
				line, column);
		return NULL;
	}
	if (dnsf_json_arena_failed(arena)) {
		/* cJSON cannot tell; its failure was the arena's */
		dnsf_errors_add_kind(errors, DNSF_ERROR_MEMORY,
				     "out of memory while parsing the JSON (%zu bytes)", length);
		return NULL;
	}
	offset = 0;
	if (parse_end && parse_end >= text && parse_end <= text + length)
		offset = (size_t)(parse_end - text);
	text_position(text, offset, &line, &column);
	dnsf_errors_add(errors, "JSON syntax error at line %zu column %zu%s", line, column,
			offset >= length ? " (truncated?)" : "");
	return NULL;
}

/** Where a value is in the document, for messages: a chain up to the
 * root, formatted only when something is reported. */
struct json_path {
	/** the enclosing value's path, NULL at the root */
	const struct json_path *parent;
	/** the member's key in an object, or NULL: an array item */
	const char *key;
	/** the item's index in an array */
	size_t index;
};

/* The path as text: "entries[3].fqdns", "" for the root. */
static void format_path(const struct json_path *path, char *out, size_t size)
{
	char rest[256];

	if (!path || !path->parent) {
		out[0] = 0;
		return;
	}
	format_path(path->parent, rest, sizeof(rest));
	/* a path deeper than out holds is cut: it only names a place */
	int written = path->key
			  ? snprintf(out, size, "%s%s%.60s", rest, rest[0] ? "." : "", path->key)
			  : snprintf(out, size, "%s[%zu]", rest, path->index);
	if (written < 0)
		out[0] = 0;
}

static int compare_member_keys(const void *x, const void *y)
{
	const cJSON *a = *(const cJSON *const *)x, *b = *(const cJSON *const *)y;
	return strcmp(a->string, b->string);
}

static void report_repeated_key(struct parser *p, const struct json_path *path, const char *key)
{
	char where[256];

	format_path(path, where, sizeof(where));
	dnsf_errors_add(p->errors, "%s%s\"%.100s\": key given more than once", where,
			where[0] ? ": " : "", key);
}

/* Report each key given more than once in an object. Small objects (the
 * feed's own) are compared pair by pair; big ones sorted. */
static void check_object_keys(struct parser *p, const cJSON *object, const struct json_path *path)
{
	const cJSON *member, *other;
	const cJSON **sorted;
	size_t count = 0, i = 0;

	cJSON_ArrayForEach(member, object)
	{
		count++;
	}
	if (count <= 16) {
		cJSON_ArrayForEach(member, object)
		{
			/* reported at its second appearance only */
			size_t seen = 0;
			for (other = object->child; other != member; other = other->next)
				seen += strcmp(other->string, member->string) == 0;
			if (seen == 1)
				report_repeated_key(p, path, member->string);
		}
		return;
	}
	sorted = malloc(count * sizeof(*sorted));
	if (!sorted) {
		p->out_of_memory = 1;
		return;
	}
	cJSON_ArrayForEach(member, object)
	{
		sorted[i++] = member;
	}
	qsort(sorted, count, sizeof(*sorted), compare_member_keys);
	for (i = 1; i < count; i++)
		if (strcmp(sorted[i - 1]->string, sorted[i]->string) == 0 &&
		    (i < 2 || strcmp(sorted[i - 2]->string, sorted[i]->string) != 0))
			report_repeated_key(p, path, sorted[i]->string);
	free(sorted);
}

/* Walk every object of the document (nested at most DNSF_FEED_MAX_DEPTH)
 * for keys given twice: cJSON keeps the first, Python's json the last, so
 * the module and the scripts would disagree on such a feed. */
static void check_duplicate_keys(struct parser *p, const cJSON *value, const struct json_path *path)
{
	const cJSON *child;
	struct json_path child_path = { path, NULL, 0 };

	if (cJSON_IsObject(value))
		check_object_keys(p, value, path);
	else if (!cJSON_IsArray(value))
		return;
	cJSON_ArrayForEach(child, value)
	{
		if (cJSON_IsObject(child) || cJSON_IsArray(child)) {
			child_path.key = cJSON_IsObject(value) ? child->string : NULL;
			check_duplicate_keys(p, child, &child_path);
		}
		child_path.index++;
	}
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
	root = parse_json(text, length, limits, arena, errors);
	if (!root)
		goto fail;
	if (!cJSON_IsObject(root)) {
		dnsf_errors_add(errors, "the feed must be a JSON object");
		goto fail;
	}
	struct json_path root_path = { NULL, NULL, 0 };
	check_duplicate_keys(&p, root, &root_path);
	/* the public-suffix guard fails closed: no list, no feed */
	p.psl = psl_latest(NULL);
	if (!p.psl) {
		dnsf_errors_add_kind(errors, DNSF_ERROR_MEMORY,
				     "cannot load the Public Suffix List (out of memory)");
		goto fail;
	}
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
		free((char *)entries[i].id);
		free((char *)entries[i].behavior);
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
