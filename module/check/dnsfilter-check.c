/*
 * dnsfilter-check - validate a feed or a settings file with the module's own
 * parser, and show what the feed decides for a name.
 *
 *   dnsfilter-check FEED                    validate, print a summary
 *   dnsfilter-check FEED --lookup NAME [--at TIME]
 *   dnsfilter-check --config FILE           validate settings (and its feed)
 *   dnsfilter-check --config FILE FEED      validate FEED with the limits of FILE
 *   dnsfilter-check [--config FILE] FEED --compile IMAGE
 *                                           and write its index image (index.h)
 *
 * The summary or the lookup goes to stdout as text, or with --json as one
 * JSON object; --print serial prints only the feed's serial, for scripts.
 * Errors go to stderr in every case. Text from the files or the command
 * line (paths, ids, behaviours) is escaped in text output (error.h), so a
 * feed cannot forge a line of it.
 *
 * Exit status: 0 valid, 1 invalid, 2 usage or I/O error (an error of kind
 * DNSF_ERROR_IO: a file that cannot be opened or read, or is not a
 * regular file).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dnsfilter/cidr.h"
#include "dnsfilter/optout.h"
#include "dnsfilter/feed.h"
#include "dnsfilter/file.h"
#include "dnsfilter/settings.h"
#include "dnsfilter/timeparse.h"
#include "dnsfilter/utf8.h"

enum { EXIT_VALID = 0, EXIT_INVALID = 1, EXIT_USAGE = 2 };

/** What goes to stdout. */
enum output {
	/** the summary or the lookup as text */
	OUTPUT_TEXT,
	/** the same as one JSON object */
	OUTPUT_JSON,
	/** only the feed's serial (nothing when it has none) */
	OUTPUT_SERIAL,
};

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: dnsfilter-check FEED [--lookup NAME [--at TIME]] [--json | --print serial]\n"
	    "       dnsfilter-check --config SETTINGS [FEED] [--lookup NAME [--at TIME]]\n"
	    "                       [--json | --print serial]\n"
	    "       dnsfilter-check [--config SETTINGS] FEED --compile IMAGE\n"
	    "Validates a dnsfilter-feed/1 feed or a dnsfilter.json settings file; with\n"
	    "both, FEED (instead of the feed the settings name) with the settings' limits.\n"
	    "TIME is YYYY-MM-DD (UTC) or an RFC 3339 timestamp; default now.\n"
	    "--json prints the summary (or the lookup) as one JSON object; --print serial\n"
	    "prints only the feed's serial (nothing when it has none). --compile writes the\n"
	    "valid feed's index image, which the module maps instead of parsing the feed\n"
	    "when it finds it as <state-dir>/<feed file name>.index.\n"
	    "Exit status: 0 valid, 1 invalid, 2 usage or I/O error.\n");
}

/* Text from a file or the command line, escaped (error.h). */
static void put_text(FILE *out, const char *text)
{
	char small[1024], *big;
	size_t length = strlen(text), need = dnsf_escape(small, sizeof(small), text, length);

	if (need < sizeof(small)) {
		fputs(small, out);
		return;
	}
	big = malloc(need + 1);
	if (big) {
		dnsf_escape(big, need + 1, text, length);
		fputs(big, out);
	}
	free(big);
}

static void print_errors(const char *what, const struct dnsf_errors *errors)
{
	for (size_t i = 0; i < errors->count_kept; i++) {
		put_text(stderr, what);
		fprintf(stderr, ": %s\n", errors->messages[i]);
	}
	if (errors->count > errors->count_kept) {
		put_text(stderr, what);
		fprintf(stderr, ": and %zu more errors\n", errors->count - errors->count_kept);
	}
}

/* A file that could not be read is exit 2; anything else found is exit 1. */
static int failure_status(const struct dnsf_errors *errors)
{
	return dnsf_errors_count_kind(errors, DNSF_ERROR_IO) ? EXIT_USAGE : EXIT_INVALID;
}

/* ---- JSON on stdout ---- */

/* A string, escaped; a byte that is not UTF-8 (a path may hold one) is
 * U+FFFD, so the output is always valid JSON. */
static void json_string(const char *text)
{
	size_t length = strlen(text);

	putchar('"');
	for (size_t i = 0; i < length;) {
		unsigned char c = (unsigned char)text[i];
		size_t n = dnsf_utf8_char_length(text + i, length - i);
		if (n == 0) {
			fputs("\\ufffd", stdout);
			i++;
			continue;
		}
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			fwrite(text + i, 1, n, stdout);
		i += n;
	}
	putchar('"');
}

/** An object being written: fields so far. */
struct json_object {
	size_t fields;
};

static void json_key(struct json_object *object, const char *key)
{
	putchar(object->fields++ ? ',' : '{');
	json_string(key);
	putchar(':');
}

static void json_end(struct json_object *object)
{
	if (!object->fields)
		putchar('{');
	putchar('}');
}

static void json_field_string(struct json_object *object, const char *key, const char *value)
{
	json_key(object, key);
	if (value)
		json_string(value);
	else
		fputs("null", stdout);
}

static void json_field_number(struct json_object *object, const char *key, unsigned long long value)
{
	json_key(object, key);
	printf("%llu", value);
}

static void json_field_bool(struct json_object *object, const char *key, int value)
{
	json_key(object, key);
	fputs(value ? "true" : "false", stdout);
}

/* "valid": false and the errors, each with its kind. */
static void json_errors(struct json_object *object, const struct dnsf_errors *errors)
{
	json_field_bool(object, "valid", 0);
	json_field_number(object, "error_count", errors->count);
	json_key(object, "errors");
	putchar('[');
	for (size_t i = 0; i < errors->count_kept; i++) {
		struct json_object error = { 0 };
		if (i > 0)
			putchar(',');
		json_field_string(&error, "kind", dnsf_error_kind_name(errors->kinds[i]));
		json_field_string(&error, "message", errors->messages[i]);
		json_end(&error);
	}
	putchar(']');
}

/* ---- what is checked ---- */

/** One run: the arguments and what was found. */
struct check {
	/** the feed file, the settings file (or NULL) */
	const char *feed, *config;
	/** the name to look up, or NULL */
	const char *name;
	/** its key */
	struct dnsf_key key;
	/** the time entries are judged at */
	int64_t now;
	/** stdout's format */
	enum output output;
	/** JSON: the object on stdout, begun before the feed is read */
	struct json_object json;
	/** prefixes of the opt-out set, when the settings name one */
	size_t optout_prefixes;
	/** 1 when the settings name an opt-out set */
	int has_optout;
	/** --compile: where to write the feed's index image, or NULL */
	const char *image;
	/** the content hash of the feed read */
	uint8_t feed_hash[DNSF_FEED_HASH_SIZE];
};

/* The feed summary: the entries by action and by behaviour, the names. */
static void print_summary(struct check *check, const struct dnsf_index *index)
{
	size_t block = 0, monitor = 0, active = 0;
	struct dnsf_index_info info;
	struct json_object behaviors = { 0 };
	char when[32];

	dnsf_index_info(index, &info);
	for (size_t i = 0; i < info.entry_count; i++) {
		struct dnsf_entry entry;
		dnsf_index_entry(index, i, &entry);
		if (entry.action == DNSF_ACTION_MONITOR)
			monitor++;
		else
			block++;
		if (entry.start <= check->now && check->now < entry.end)
			active++;
	}
	dnsf_format_time(check->now, when);
	if (check->output == OUTPUT_JSON) {
		struct json_object *json = &check->json;
		json_field_bool(json, "valid", 1);
		json_field_string(json, "format", DNSF_FEED_FORMAT);
		json_key(json, "serial");
		if (info.has_serial)
			printf("%llu", (unsigned long long)info.serial);
		else
			fputs("null", stdout);
		json_field_string(json, "generated", info.generated);
		json_field_string(json, "at", when);
		json_field_number(json, "entries", info.entry_count);
		json_field_number(json, "entries_block", block);
		json_field_number(json, "entries_monitor", monitor);
		json_field_number(json, "entries_active", active);
		json_field_number(json, "names", info.exact_count + info.wildcard_count);
		json_field_number(json, "names_exact", info.exact_count);
		json_field_number(json, "names_wildcard", info.wildcard_count);
		json_field_number(json, "allow", info.allow_count);
		json_key(json, "behaviors");
	} else {
		put_text(stdout, check->feed);
		printf(": valid %s feed\n", DNSF_FEED_FORMAT);
		if (info.has_serial)
			printf("serial: %llu\n", (unsigned long long)info.serial);
		if (info.generated)
			printf("generated: %s\n", info.generated);
		printf("entries: %zu (block %zu, monitor %zu), active at %s: %zu\n",
		       info.entry_count, block, monitor, when, active);
		printf("names: %zu (exact %zu, wildcard %zu), allow: %zu\n",
		       info.exact_count + info.wildcard_count, info.exact_count,
		       info.wildcard_count, info.allow_count);
		printf("behaviors:");
	}
	/* behaviours, in order of first appearance */
	for (size_t i = 0; i < info.entry_count; i++) {
		struct dnsf_entry entry, other;
		size_t count = 0, seen = 0;
		dnsf_index_entry(index, i, &entry);
		for (size_t j = 0; j < i && !seen; j++)
			seen = dnsf_index_entry(index, j, &other) &&
			       strcmp(other.behavior, entry.behavior) == 0;
		if (seen)
			continue;
		for (size_t j = i; j < info.entry_count; j++)
			count += dnsf_index_entry(index, j, &other) &&
				 strcmp(other.behavior, entry.behavior) == 0;
		const char *behavior = entry.behavior;
		if (check->output == OUTPUT_JSON)
			json_field_number(&behaviors, behavior, count);
		else {
			putchar(' ');
			put_text(stdout, behavior[0] ? behavior : "(none)");
			printf("=%zu", count);
		}
	}
	if (check->output == OUTPUT_JSON) {
		json_end(&behaviors);
		json_field_number(&check->json, "index_bytes", info.memory_bytes);
	} else {
		printf("\nindex: %zu bytes\n", info.memory_bytes);
	}
}

/* The opt-out networks of the settings (list and file), as the module
 * builds them. */
static int check_optout(struct check *check, const struct dnsf_settings *settings,
			struct dnsf_errors *errors)
{
	struct dnsf_cidr_set *set;

	if (!dnsf_optout_build(settings, &set, errors))
		return 0;
	if (set) {
		check->has_optout = 1;
		check->optout_prefixes = dnsf_cidr_set_prefix_count(set);
	}
	dnsf_cidr_set_free(set);
	return 1;
}

/* What the feed decides for the name, with the entry and the listed name. */
/* The mode the settings give now and, with enforce-from, when it changes;
 * the service addresses (Unbound's interface: lines are checked when the
 * module loads: this tool does not read unbound.conf). */
static void print_mode_and_service_addresses(struct check *check,
					     const struct dnsf_settings *settings)
{
	enum dnsf_mode mode = dnsf_settings_mode_at(settings, check->now);
	char when[32], address[INET6_ADDRSTRLEN];

	if (check->output == OUTPUT_JSON) {
		struct json_object *json = &check->json;
		json_field_string(json, "mode", mode == DNSF_MODE_MONITOR ? "monitor" : "enforce");
		dnsf_format_time(settings->enforce_from, when);
		json_field_string(json, "enforce_from",
				  settings->enforce_from != DNSF_ENFORCE_FROM_NONE ? when : NULL);
		json_key(json, "service_addresses");
		putchar('[');
		for (size_t i = 0; i < settings->service_address_count; i++) {
			inet_ntop(settings->service_addresses[i].family,
				  settings->service_addresses[i].bytes, address, sizeof(address));
			if (i)
				putchar(',');
			json_string(address);
		}
		putchar(']');
		return;
	}
	if (settings->service_address_count) {
		printf("service addresses:");
		for (size_t i = 0; i < settings->service_address_count; i++) {
			inet_ntop(settings->service_addresses[i].family,
				  settings->service_addresses[i].bytes, address, sizeof(address));
			printf("%s %s", i ? "," : "", address);
		}
		printf(" (Unbound must listen on each: checked when the module loads)\n");
	}
	if (settings->enforce_from != DNSF_ENFORCE_FROM_NONE) {
		dnsf_format_time(settings->enforce_from, when);
		if (mode == DNSF_MODE_MONITOR)
			printf("mode: monitor until %s, then enforce\n", when);
		else
			printf("mode: enforce (since enforce-from %s)\n", when);
	} else if (mode == DNSF_MODE_MONITOR) {
		printf("mode: monitor\n");
	}
}

static void lookup(struct check *check, const struct dnsf_index *index)
{
	struct dnsf_decision decision;
	char text[DNSF_KEY_MAX * 4 + 2], matched[DNSF_KEY_MAX * 4 + 4] = "", when[32];

	dnsf_index_decide(index, &check->key, check->now, &decision);
	dnsf_key_to_text(&check->key, text, sizeof(text));
	if (decision.verdict != DNSF_VERDICT_NONE) {
		struct dnsf_key listed = check->key;
		size_t used = decision.wildcard ? 2 : 0;
		listed.length = decision.match_length;
		memcpy(matched, "*.", used);
		dnsf_key_to_text(&listed, matched + used, sizeof(matched) - used);
	}
	if (check->output == OUTPUT_JSON) {
		struct json_object *json = &check->json, entry = { 0 };
		dnsf_format_time(check->now, when);
		json_field_bool(json, "valid", 1);
		json_field_string(json, "name", text);
		json_field_string(json, "at", when);
		json_field_string(json, "verdict", dnsf_verdict_name(decision.verdict));
		json_key(json, "entry");
		if (decision.entry.id) {
			json_field_string(&entry, "id", decision.entry.id);
			json_field_string(&entry, "behavior", decision.entry.behavior);
			json_end(&entry);
		} else {
			fputs("null", stdout);
		}
		json_field_string(json, "matched", matched[0] ? matched : NULL);
		json_field_bool(json, "wildcard", decision.wildcard);
		return;
	}
	printf("%s: %s", text, dnsf_verdict_name(decision.verdict));
	if (decision.verdict != DNSF_VERDICT_NONE) {
		if (decision.entry.id) {
			fputs(" by entry ", stdout);
			put_text(stdout, decision.entry.id);
			fputs(" (", stdout);
			put_text(stdout, decision.entry.behavior);
			fputs(")", stdout);
		}
		printf(", matched %s", matched);
		if (decision.verdict == DNSF_VERDICT_ALLOW)
			printf(" in the allow list");
	}
	printf("\n");
}

/* Read the settings (with --config) and the feed, and say what was found. */
static int run(struct check *check)
{
	struct dnsf_settings settings = { 0 };
	struct dnsf_errors errors = { 0 };
	struct dnsf_feed_limits limits, *use_limits = NULL;
	struct dnsf_index *index = NULL;
	/* --config SETTINGS FEED: FEED with the settings' limits, as the
	 * module would load it (dnsfilter-refresh, before installing it) */
	int feed_given = check->config && check->feed;
	int status;

	if (check->output == OUTPUT_JSON && check->config)
		json_field_string(&check->json, "settings", check->config);
	if (check->config) {
		if (!dnsf_settings_load(check->config, &settings, &errors) ||
		    (!feed_given && !check_optout(check, &settings, &errors))) {
			print_errors(check->config, &errors);
			status = failure_status(&errors);
			if (feed_given) {
				/* not the feed's fault: it was not checked */
				status = EXIT_USAGE;
				put_text(stderr, check->feed);
				fputs(": not checked: the settings are not usable\n", stderr);
			}
			if (check->output == OUTPUT_JSON) {
				json_field_string(&check->json, "path",
						  feed_given ? check->feed : settings.feed);
				json_errors(&check->json, &errors);
			}
			goto done;
		}
		if (check->output == OUTPUT_TEXT && !feed_given) {
			if (check->has_optout)
				printf("opt-out: %zu prefixes\n", check->optout_prefixes);
			print_mode_and_service_addresses(check, &settings);
			put_text(stdout, check->config);
			fputs(": valid settings; feed ", stdout);
			put_text(stdout, settings.feed);
			putchar('\n');
		} else if (check->output == OUTPUT_TEXT) {
			put_text(stdout, check->config);
			fputs(": valid settings; their limits apply to ", stdout);
			put_text(stdout, check->feed);
			putchar('\n');
		}
		if (!feed_given)
			check->feed = settings.feed;
		dnsf_settings_feed_limits(&settings, &limits);
		use_limits = &limits;
	}
	if (check->output == OUTPUT_JSON) {
		json_field_string(&check->json, "path", check->feed);
		if (check->config && !feed_given) {
			json_key(&check->json, "optout_prefixes");
			if (check->has_optout)
				printf("%zu", check->optout_prefixes);
			else
				fputs("null", stdout);
			print_mode_and_service_addresses(check, &settings);
		}
	}
	index = dnsf_index_from_file_hashed(check->feed, use_limits, check->feed_hash, &errors);
	if (!index) {
		print_errors(check->feed, &errors);
		status = failure_status(&errors);
		if (status == EXIT_INVALID) {
			put_text(stderr, check->feed);
			fprintf(stderr, ": invalid feed (%zu errors)\n", errors.count);
		}
		if (check->output == OUTPUT_JSON)
			json_errors(&check->json, &errors);
		goto done;
	}
	status = EXIT_VALID;
	if (check->image &&
	    !dnsf_index_write_image(index, check->feed_hash, check->image, &errors)) {
		print_errors(check->image, &errors);
		dnsf_index_free(index);
		status = EXIT_USAGE;
		goto done;
	}
	if (check->output == OUTPUT_SERIAL) {
		struct dnsf_index_info info;
		dnsf_index_info(index, &info);
		if (info.has_serial)
			printf("%llu\n", (unsigned long long)info.serial);
	} else if (check->name) {
		lookup(check, index);
	} else {
		print_summary(check, index);
	}
	dnsf_index_free(index);
done:
	dnsf_errors_clear(&errors);
	dnsf_settings_free(&settings);
	return status;
}

int main(int argc, char **argv)
{
	struct check check = { .now = (int64_t)time(NULL), .output = OUTPUT_TEXT };
	const char *at = NULL, *print = NULL;
	int json = 0, status;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return EXIT_VALID;
		} else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			check.config = argv[++i];
		} else if (strcmp(argv[i], "--lookup") == 0 && i + 1 < argc) {
			check.name = argv[++i];
		} else if (strcmp(argv[i], "--at") == 0 && i + 1 < argc) {
			at = argv[++i];
		} else if (strcmp(argv[i], "--print") == 0 && i + 1 < argc) {
			print = argv[++i];
		} else if (strcmp(argv[i], "--compile") == 0 && i + 1 < argc) {
			check.image = argv[++i];
		} else if (strcmp(argv[i], "--json") == 0) {
			json = 1;
		} else if (argv[i][0] != '-' && !check.feed) {
			check.feed = argv[i];
		} else {
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if ((!check.feed && !check.config) || (at && !check.name) || (json && print) ||
	    (print && check.name)) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (print && strcmp(print, "serial") != 0) {
		fputs("dnsfilter-check: --print: only \"serial\" can be printed, not ", stderr);
		put_text(stderr, print);
		fputc('\n', stderr);
		return EXIT_USAGE;
	}
	if (check.name) {
		uint8_t wire[DNSF_WIRE_MAX];
		size_t wire_length;
		if (!dnsf_wire_from_text(check.name, wire, &wire_length) ||
		    !dnsf_key_from_wire(wire, wire_length, &check.key)) {
			fputs("dnsfilter-check: not a domain name: ", stderr);
			put_text(stderr, check.name);
			fputc('\n', stderr);
			return EXIT_USAGE;
		}
	}
	if (at && !dnsf_parse_time(at, 0, &check.now)) {
		fputs("dnsfilter-check: --at: not a date or RFC 3339 timestamp: ", stderr);
		put_text(stderr, at);
		fputc('\n', stderr);
		return EXIT_USAGE;
	}
	if (json)
		check.output = OUTPUT_JSON;
	else if (print)
		check.output = OUTPUT_SERIAL;
	status = run(&check);
	if (check.output == OUTPUT_JSON && check.json.fields) {
		json_end(&check.json);
		putchar('\n');
	}
	return status;
}
