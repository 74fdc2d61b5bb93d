/*
 * feed.c - parse and validate a dnsfilter-feed/1 feed and build its index.
 *
 * The JSON is parsed with cJSON, then every field is checked and every name
 * turned into a key. The names of all entries and of the allow list become
 * records (key, kind, entry); sorted, the records of one name are adjacent
 * and become one trie key whose value points at that name's rules: a list
 * of entries for the name itself, one for "*.name", and allow flags.
 */
#include "dnsfilter/feed.h"
#include "dnsfilter/array.h"
#include "dnsfilter/file.h"
#include "dnsfilter/limits.h"
#include "dnsfilter/json.h"
#include "dnsfilter/timeparse.h"
#include "dnsfilter/utf8.h"

#include <cjson/cJSON.h>
#include <libpsl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A loaded feed (include/dnsfilter/feed.h): immutable once built. */
struct dnsf_index {
	/** the feed's serial, 0 when has_serial is 0 */
	uint64_t serial;
	/** 1 when the feed carried a serial */
	int has_serial;
	/** the feed's "generated" text, or NULL */
	char *generated;
	/** the feed's time zone offset, seconds east of UTC */
	int32_t timezone_offset;
	/** entries in feed order */
	struct dnsf_entry *entries;
	/** number of entries */
	size_t entry_count;
	/** exact names of entries */
	size_t exact_count;
	/** wildcard names of entries */
	size_t wildcard_count;
	/** names in the allow list */
	size_t allow_count;
	/** the name trie; a value is the offset of the name's rules */
	struct dnsf_trie trie;
	/** per listed name: a header word and entry indexes (see feed.c) */
	uint32_t *rule_lists;
	/** words in rule_lists */
	size_t rule_words;
	/** bytes held, for reporting */
	size_t memory_bytes;
};

/*
 * The rules of one listed name, at the word offset its trie value gives in
 * index->rule_lists: a header word, then the entry indexes of the entries
 * listing the name itself, then those listing "*.name", each run in the
 * order that decides (block first, then earliest start, then feed order).
 * One lookup thus reads one small, contiguous record.
 */
#define RULES_EXACT_COUNT(header) ((header)&0x3fffu)
#define RULES_WILDCARD_COUNT(header) (((header) >> 14) & 0x3fffu)
#define RULES_ALLOW_EXACT (1u << 28)
#define RULES_ALLOW_BELOW (1u << 29)
/** Most entries one name may have, of each kind. */
#define RULES_MAX_COUNT 0x3fffu

/** Kinds of name record, in the order they sort within one name. */
enum record_kind {
	RECORD_EXACT = 0,
	RECORD_WILDCARD = 1,
	RECORD_ALLOW_EXACT = 2,
	RECORD_ALLOW_WILDCARD = 3,
};

struct name_record {
	/** the key's first 8 bytes, big-endian, zero padded: most sort
	 * comparisons are decided by it without touching the key pool */
	uint64_t prefix;
	/** offset of the key in the parser's key pool */
	uint32_t key_offset;
	/** key length */
	uint8_t key_length;
	/** enum record_kind */
	uint8_t kind;
	/** entry index (entries only) */
	uint32_t entry;
};

struct parser {
	const struct dnsf_feed_limits *limits;
	struct dnsf_errors *errors;
	struct dnsf_index *index;
	psl_ctx_t *psl;
	struct name_record *records;
	size_t record_count, record_capacity;
	uint8_t *keys;
	size_t keys_size, keys_capacity;
	int out_of_memory;
};

void dnsf_feed_limits_default(struct dnsf_feed_limits *limits)
{
	limits->max_bytes = DNSF_FEED_MAX_BYTES_DEFAULT;
	limits->max_entries = DNSF_FEED_MAX_ENTRIES_DEFAULT;
	limits->max_names = DNSF_FEED_MAX_NAMES_DEFAULT;
}

const char *dnsf_verdict_name(enum dnsf_verdict verdict)
{
	switch (verdict) {
	case DNSF_VERDICT_ALLOW:
		return "allow";
	case DNSF_VERDICT_BLOCK:
		return "block";
	case DNSF_VERDICT_MONITOR:
		return "monitor";
	default:
		return "none";
	}
}

static int add_record(struct parser *p, const struct dnsf_key *key, enum record_kind kind,
		      uint32_t entry)
{
	if (!dnsf_array_grow((void **)&p->records, &p->record_capacity, p->record_count + 1,
			     sizeof(*p->records)) ||
	    !dnsf_array_grow((void **)&p->keys, &p->keys_capacity, p->keys_size + key->length, 1)) {
		p->out_of_memory = 1;
		return 0;
	}
	struct name_record *record = &p->records[p->record_count++];
	record->prefix = 0;
	for (size_t i = 0; i < 8; i++)
		record->prefix = record->prefix << 8 | (i < key->length ? key->bytes[i] : 0);
	record->key_offset = (uint32_t)p->keys_size;
	record->key_length = (uint8_t)key->length;
	record->kind = (uint8_t)kind;
	record->entry = entry;
	memcpy(p->keys + p->keys_size, key->bytes, key->length);
	p->keys_size += key->length;
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
		add_record(p, &key, wildcard ? RECORD_ALLOW_WILDCARD : RECORD_ALLOW_EXACT, 0);
	else
		add_record(p, &key, wildcard ? RECORD_WILDCARD : RECORD_EXACT, entry);
	if (wildcard && !is_allow)
		p->index->wildcard_count++;
	else if (!is_allow)
		p->index->exact_count++;
	else
		p->index->allow_count++;
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
	if (!dnsf_parse_time(text, p->index->timezone_offset, out)) {
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
	struct dnsf_entry *entry = &p->index->entries[position];
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
	struct dnsf_index *index = p->index;
	size_t count = 0;
	uint32_t *order = malloc(index->entry_count * sizeof(*order) + 1);

	if (!order) {
		p->out_of_memory = 1;
		return;
	}
	for (size_t i = 0; i < index->entry_count; i++)
		if (index->entries[i].id)
			order[count++] = (uint32_t)i;
	qsort_r(order, count, sizeof(*order), compare_entry_ids, index->entries);
	for (size_t i = 1; i < count; i++) {
		const struct dnsf_entry *a = &index->entries[order[i - 1]];
		const struct dnsf_entry *b = &index->entries[order[i]];
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
	struct dnsf_index *index = p->index;
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
			index->serial = (uint64_t)serial;
			index->has_serial = 1;
		}
	}
	field = cJSON_GetObjectItemCaseSensitive(root, "timezone");
	if (field && (!cJSON_IsString(field) ||
		      !dnsf_parse_utc_offset(field->valuestring, &index->timezone_offset)))
		dnsf_errors_add(p->errors, "timezone: must be a UTC offset like "
					   "\"+09:00\", \"-05:00\" or \"Z\"");
	field = cJSON_GetObjectItemCaseSensitive(root, "generated");
	if (field) {
		int64_t ignored;
		if (!cJSON_IsString(field) || !dnsf_parse_time(field->valuestring, 0, &ignored))
			dnsf_errors_add(p->errors, "generated: must be an RFC 3339 timestamp");
		else
			index->generated = copy_string(p, field->valuestring);
	}
}

static void parse_body(struct parser *p, const cJSON *root)
{
	struct dnsf_index *index = p->index;
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
	index->entries = calloc(count + 1, sizeof(*index->entries));
	if (!index->entries) {
		p->out_of_memory = 1;
		return;
	}
	index->entry_count = count;
	cJSON_ArrayForEach(item, entries)
	{
		parse_entry(p, item, i++);
		if (p->record_count > p->limits->max_names) {
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

/* Sort order of records: key, then kind, then the entry that should win. */
struct sort_context {
	const uint8_t *keys;
	const struct dnsf_entry *entries;
};

static int compare_records(const void *x, const void *y, void *context)
{
	const struct sort_context *c = context;
	const struct name_record *a = x, *b = y;

	if (a->prefix != b->prefix)
		return a->prefix < b->prefix ? -1 : 1;
	size_t n = a->key_length < b->key_length ? a->key_length : b->key_length;
	int order =
	    n > 8 ? memcmp(c->keys + a->key_offset + 8, c->keys + b->key_offset + 8, n - 8) : 0;
	if (order)
		return order;
	if (a->key_length != b->key_length)
		return a->key_length < b->key_length ? -1 : 1;
	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	if (a->kind >= RECORD_ALLOW_EXACT)
		return 0;
	const struct dnsf_entry *ea = &c->entries[a->entry], *eb = &c->entries[b->entry];
	if (ea->action != eb->action) /* block before monitor */
		return ea->action < eb->action ? -1 : 1;
	if (ea->start != eb->start)
		return ea->start < eb->start ? -1 : 1;
	return a->entry < b->entry ? -1 : (a->entry > b->entry);
}

static int same_key(const struct parser *p, const struct name_record *a,
		    const struct name_record *b)
{
	return a->key_length == b->key_length &&
	       memcmp(p->keys + a->key_offset, p->keys + b->key_offset, a->key_length) == 0;
}

/*
 * Rewrite the key pool in the records' sorted order, one copy per distinct
 * key: every later pass (grouping, trie build) then reads keys one after
 * another instead of jumping around a pool of tens of megabytes.
 */
static int sort_key_pool(struct parser *p)
{
	uint8_t *sorted = malloc(p->keys_size + 1);
	struct name_record previous = { 0 }; /* as it was, in the old pool */
	size_t size = 0;

	if (!sorted)
		return 0;
	for (size_t i = 0; i < p->record_count; i++) {
		struct name_record *record = &p->records[i], old = *record;
		if (i > 0 && same_key(p, &previous, &old)) {
			record->key_offset = p->records[i - 1].key_offset;
			continue;
		}
		memcpy(sorted + size, p->keys + old.key_offset, old.key_length);
		record->key_offset = (uint32_t)size;
		size += old.key_length;
		previous = old;
	}
	free(p->keys);
	p->keys = sorted;
	p->keys_size = size;
	p->keys_capacity = p->keys_size + 1;
	return 1;
}

/* Write the rules of the name whose records start at records[i]; returns
 * the index past them, or 0 when a name has too many entries. */
static size_t write_rules(struct parser *p, size_t i, size_t *word)
{
	struct dnsf_index *index = p->index;
	const struct name_record *first = &p->records[i];
	uint32_t *header = &index->rule_lists[(*word)++];
	uint32_t counts[2] = { 0, 0 };

	*header = 0;
	for (; i < p->record_count && same_key(p, first, &p->records[i]); i++) {
		const struct name_record *record = &p->records[i];
		if (record->kind == RECORD_ALLOW_EXACT) {
			*header |= RULES_ALLOW_EXACT;
		} else if (record->kind == RECORD_ALLOW_WILDCARD) {
			*header |= RULES_ALLOW_BELOW;
		} else if (i == 0 || record->kind != p->records[i - 1].kind ||
			   record->entry != p->records[i - 1].entry ||
			   !same_key(p, first, &p->records[i - 1])) {
			/* the same entry listing a name twice counts once */
			if (++counts[record->kind] > RULES_MAX_COUNT)
				return 0;
			index->rule_lists[(*word)++] = record->entry;
		}
	}
	*header |= counts[RECORD_EXACT] | counts[RECORD_WILDCARD] << 14;
	return i;
}

/* Turn the sorted records into rule lists and the trie. */
static int build_index(struct parser *p)
{
	struct dnsf_index *index = p->index;
	struct sort_context context = { p->keys, index->entries };
	struct dnsf_trie_item *items;
	size_t names = 0, words = 0, name = 0, word = 0;

	if (p->record_count > 0)
		qsort_r(p->records, p->record_count, sizeof(*p->records), compare_records,
			&context);
	if (!sort_key_pool(p))
		return 0;
	for (size_t i = 0; i < p->record_count; i++)
		if (i == 0 || !same_key(p, &p->records[i - 1], &p->records[i]))
			names++;
	words = names + p->record_count; /* a header a name, a word a record at most */
	items = malloc((names + 1) * sizeof(*items));
	index->rule_lists = malloc((words + 1) * sizeof(*index->rule_lists));
	if (!items || !index->rule_lists) {
		free(items);
		return 0;
	}
	for (size_t i = 0; i < p->record_count; name++) {
		items[name].key = p->keys + p->records[i].key_offset;
		items[name].length = p->records[i].key_length;
		items[name].value = (uint32_t)word;
		i = write_rules(p, i, &word);
		if (i == 0) {
			dnsf_errors_add_kind(p->errors, DNSF_ERROR_LIMIT,
					     "a name is listed by more than %u entries",
					     RULES_MAX_COUNT);
			free(items);
			return 0;
		}
	}
	int built = dnsf_trie_build(&index->trie, items, names);
	free(items);
	index->rule_words = word;
	index->memory_bytes = sizeof(*index) + index->trie.arena_size +
			      word * sizeof(*index->rule_lists) +
			      index->entry_count * sizeof(*index->entries);
	return built;
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

static void free_parser(struct parser *p)
{
	free(p->records);
	free(p->keys);
	/* psl_free leaves the built-in list psl_latest may return alone */
	psl_free(p->psl);
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

struct dnsf_index *dnsf_index_from_buffer(const char *text, size_t length,
					  const struct dnsf_feed_limits *limits,
					  struct dnsf_errors *errors)
{
	struct dnsf_feed_limits default_limits;
	struct parser p = { .errors = errors };
	size_t errors_before = errors->count;
	struct dnsf_json_arena *arena;
	cJSON *root;

	if (!limits) {
		dnsf_feed_limits_default(&default_limits);
		limits = &default_limits;
	}
	p.limits = limits;
	/* The cJSON tree lives in an arena until the records are made. */
	arena = dnsf_json_arena_begin();
	p.index = calloc(1, sizeof(*p.index));
	if (!arena || !p.index) {
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
	if (!build_index(&p)) {
		dnsf_errors_add_kind(errors, DNSF_ERROR_MEMORY,
				     "out of memory while building the index");
		goto fail;
	}
	free_parser(&p);
	return p.index;
fail:
	dnsf_json_arena_end(arena);
	free_parser(&p);
	dnsf_index_free(p.index);
	return NULL;
}

struct dnsf_index *dnsf_index_from_file(const char *path, const struct dnsf_feed_limits *limits,
					struct dnsf_errors *errors)
{
	struct dnsf_feed_limits default_limits;
	struct dnsf_index *index;
	size_t length;
	char *text;

	if (!limits) {
		dnsf_feed_limits_default(&default_limits);
		limits = &default_limits;
	}
	/* messages follow the path in the caller's log line */
	if (!dnsf_file_read(path, limits->max_bytes, NULL, &text, &length, errors))
		return NULL;
	index = dnsf_index_from_buffer(text, length, limits, errors);
	free(text);
	return index;
}

void dnsf_index_free(struct dnsf_index *index)
{
	if (!index)
		return;
	for (size_t i = 0; i < index->entry_count; i++) {
		free(index->entries[i].id);
		free(index->entries[i].behavior);
	}
	free(index->entries);
	free(index->generated);
	free(index->rule_lists);
	dnsf_trie_free(&index->trie);
	free(index);
}

/* First active entry of a run of entry indexes, or NULL. */
static const struct dnsf_entry *active_entry(const struct dnsf_index *index, const uint32_t *run,
					     uint32_t count, int64_t now)
{
	for (uint32_t i = 0; i < count; i++) {
		const struct dnsf_entry *entry = &index->entries[run[i]];
		if (entry->start <= now && now < entry->end)
			return entry;
	}
	return NULL;
}

void dnsf_index_decide(const struct dnsf_index *index, const struct dnsf_key *key, int64_t now,
		       struct dnsf_decision *decision)
{
	struct dnsf_trie_match matches[DNSF_KEY_MAX / 2 + 1];
	size_t count = dnsf_trie_walk(&index->trie, key->bytes, key->length, matches,
				      sizeof(matches) / sizeof(matches[0]));

	memset(decision, 0, sizeof(*decision));
	/* Allow beats everything: the name itself, or "*." of a parent. */
	for (size_t i = 0; i < count; i++) {
		uint32_t header = index->rule_lists[matches[i].value];
		int exact = matches[i].length == key->length;
		if ((exact && (header & RULES_ALLOW_EXACT)) ||
		    (!exact && (header & RULES_ALLOW_BELOW))) {
			decision->verdict = DNSF_VERDICT_ALLOW;
			decision->match_length = matches[i].length;
			return;
		}
	}
	/* Longest first: the name itself, then "*." of ever shorter parents. */
	for (size_t i = count; i-- > 0;) {
		const uint32_t *rules = &index->rule_lists[matches[i].value];
		uint32_t exact_count = RULES_EXACT_COUNT(rules[0]);
		int exact = matches[i].length == key->length;
		const struct dnsf_entry *entry =
		    exact ? active_entry(index, rules + 1, exact_count, now)
			  : active_entry(index, rules + 1 + exact_count,
					 RULES_WILDCARD_COUNT(rules[0]), now);
		if (entry) {
			decision->verdict = entry->action == DNSF_ACTION_MONITOR
						? DNSF_VERDICT_MONITOR
						: DNSF_VERDICT_BLOCK;
			decision->entry = entry;
			decision->wildcard = !exact;
			decision->match_length = matches[i].length;
			return;
		}
	}
}

void dnsf_index_info(const struct dnsf_index *index, struct dnsf_index_info *info)
{
	info->serial = index->serial;
	info->has_serial = index->has_serial;
	info->generated = index->generated;
	info->entry_count = index->entry_count;
	info->exact_count = index->exact_count;
	info->wildcard_count = index->wildcard_count;
	info->allow_count = index->allow_count;
	info->memory_bytes = index->memory_bytes;
}

const struct dnsf_entry *dnsf_index_entry(const struct dnsf_index *index, size_t i)
{
	return i < index->entry_count ? &index->entries[i] : NULL;
}

int64_t dnsf_index_next_start(const struct dnsf_index *index, int64_t after)
{
	int64_t next = INT64_MAX;

	for (size_t i = 0; index && i < index->entry_count; i++)
		if (index->entries[i].start > after && index->entries[i].start < next)
			next = index->entries[i].start;
	return next;
}

int dnsf_index_check(const struct dnsf_index *index, const char **why)
{
	return dnsf_trie_check(&index->trie, why);
}
