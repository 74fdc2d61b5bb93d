/*
 * dnsfilter-check - validate a feed or a settings file with the module's own
 * parser, and show what the feed decides for a name.
 *
 *   dnsfilter-check FEED                    validate, print a summary
 *   dnsfilter-check FEED --lookup NAME [--at TIME]
 *   dnsfilter-check --config FILE           validate settings (and its feed)
 *
 * Exit status: 0 valid, 1 invalid, 2 usage or I/O error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dnsfilter/cidr.h"
#include "dnsfilter/optout.h"
#include "dnsfilter/feed.h"
#include "dnsfilter/settings.h"
#include "dnsfilter/timeparse.h"

enum { EXIT_VALID = 0, EXIT_INVALID = 1, EXIT_USAGE = 2 };

static void usage(FILE *out)
{
	fprintf(out, "usage: dnsfilter-check FEED [--lookup NAME [--at TIME]]\n"
		     "       dnsfilter-check --config SETTINGS [--lookup NAME [--at TIME]]\n"
		     "Validates a dnsfilter-feed/1 feed or a dnsfilter.json settings file.\n"
		     "TIME is YYYY-MM-DD (UTC) or an RFC 3339 timestamp; default now.\n"
		     "Exit status: 0 valid, 1 invalid, 2 usage or I/O error.\n");
}

static void print_errors(const char *what, const struct dnsf_errors *errors)
{
	for (size_t i = 0; i < errors->count_kept; i++)
		fprintf(stderr, "%s: %s\n", what, errors->messages[i]);
	if (errors->count > errors->count_kept)
		fprintf(stderr, "%s: and %zu more errors\n", what,
			errors->count - errors->count_kept);
}

/* An I/O problem (cannot open) is exit 2; anything else found is exit 1. */
static int is_io_error(const struct dnsf_errors *errors)
{
	return errors->count == 1 && (strncmp(errors->messages[0], "cannot open", 11) == 0 ||
				      strncmp(errors->messages[0], "read error", 10) == 0 ||
				      strncmp(errors->messages[0], "not a regular file", 18) == 0);
}

static void print_summary(const char *path, const struct dnsf_index *index, int64_t now)
{
	size_t block = 0, monitor = 0, active = 0;
	struct dnsf_index_info info;
	char when[32];

	dnsf_index_info(index, &info);
	for (size_t i = 0; i < info.entry_count; i++) {
		const struct dnsf_entry *entry = dnsf_index_entry(index, i);
		if (entry->action == DNSF_ACTION_MONITOR)
			monitor++;
		else
			block++;
		if (entry->start <= now && now < entry->end)
			active++;
	}
	dnsf_format_time(now, when);
	printf("%s: valid %s feed\n", path, DNSF_FEED_FORMAT);
	if (info.has_serial)
		printf("serial: %llu\n", (unsigned long long)info.serial);
	if (info.generated)
		printf("generated: %s\n", info.generated);
	printf("entries: %zu (block %zu, monitor %zu), active at %s: %zu\n", info.entry_count,
	       block, monitor, when, active);
	printf("names: %zu (exact %zu, wildcard %zu), allow: %zu\n",
	       info.exact_count + info.wildcard_count, info.exact_count, info.wildcard_count,
	       info.allow_count);
	/* behaviours, in order of first appearance */
	printf("behaviors:");
	for (size_t i = 0; i < info.entry_count; i++) {
		const char *behavior = dnsf_index_entry(index, i)->behavior;
		size_t count = 0, seen = 0;
		for (size_t j = 0; j < i && !seen; j++)
			seen = strcmp(dnsf_index_entry(index, j)->behavior, behavior) == 0;
		if (seen)
			continue;
		for (size_t j = i; j < info.entry_count; j++)
			count += strcmp(dnsf_index_entry(index, j)->behavior, behavior) == 0;
		printf(" %s=%zu", behavior[0] ? behavior : "(none)", count);
	}
	printf("\nindex: %zu bytes\n", info.memory_bytes);
}

/* The opt-out networks of the settings (list and file), as the module
 * builds them. */
static int check_optout(const struct dnsf_settings *settings, struct dnsf_errors *errors)
{
	struct dnsf_cidr_set *set;

	if (!dnsf_optout_build(settings, &set, errors))
		return 0;
	if (set)
		printf("opt-out: %zu prefixes\n", dnsf_cidr_set_prefix_count(set));
	dnsf_cidr_set_free(set);
	return 1;
}

static int lookup(const struct dnsf_index *index, const char *name, int64_t now)
{
	uint8_t wire[DNSF_WIRE_MAX];
	size_t wire_length;
	struct dnsf_key key;
	struct dnsf_decision decision;
	char text[DNSF_KEY_MAX * 4 + 2], matched[DNSF_KEY_MAX * 4 + 2];

	if (!dnsf_wire_from_text(name, wire, &wire_length) ||
	    !dnsf_key_from_wire(wire, wire_length, &key)) {
		fprintf(stderr, "dnsfilter-check: not a domain name: %s\n", name);
		return EXIT_USAGE;
	}
	dnsf_index_decide(index, &key, now, &decision);
	dnsf_key_to_text(&key, text, sizeof(text));
	printf("%s: %s", text, dnsf_verdict_name(decision.verdict));
	if (decision.verdict != DNSF_VERDICT_NONE) {
		struct dnsf_key listed = key;
		listed.length = decision.match_length;
		dnsf_key_to_text(&listed, matched, sizeof(matched));
		if (decision.entry)
			printf(" by entry %s (%s)", decision.entry->id, decision.entry->behavior);
		printf(", matched %s%s", decision.wildcard ? "*." : "", matched);
		if (decision.verdict == DNSF_VERDICT_ALLOW)
			printf(" in the allow list");
	}
	printf("\n");
	return EXIT_VALID;
}

int main(int argc, char **argv)
{
	const char *feed = NULL, *config = NULL, *name = NULL, *at = NULL;
	struct dnsf_settings settings = { 0 };
	struct dnsf_errors errors = { 0 };
	struct dnsf_feed_limits limits, *use_limits = NULL;
	struct dnsf_index *index;
	int64_t now = (int64_t)time(NULL);
	int status = EXIT_VALID;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return EXIT_VALID;
		} else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			config = argv[++i];
		} else if (strcmp(argv[i], "--lookup") == 0 && i + 1 < argc) {
			name = argv[++i];
		} else if (strcmp(argv[i], "--at") == 0 && i + 1 < argc) {
			at = argv[++i];
		} else if (argv[i][0] != '-' && !feed) {
			feed = argv[i];
		} else {
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if ((!feed && !config) || (feed && config) || (at && !name)) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (at && !dnsf_parse_time(at, 0, &now)) {
		fprintf(stderr,
			"dnsfilter-check: --at: not a date or RFC 3339 "
			"timestamp: %s\n",
			at);
		return EXIT_USAGE;
	}
	if (config) {
		if (!dnsf_settings_load(config, &settings, &errors)) {
			print_errors(config, &errors);
			status = is_io_error(&errors) ? EXIT_USAGE : EXIT_INVALID;
			goto done;
		}
		if (!check_optout(&settings, &errors)) {
			print_errors(config, &errors);
			status = EXIT_INVALID;
			goto done;
		}
		printf("%s: valid settings; feed %s\n", config, settings.feed);
		feed = settings.feed;
		limits.max_bytes = settings.feed_max_bytes;
		limits.max_entries = settings.feed_max_entries;
		limits.max_names = settings.feed_max_names;
		use_limits = &limits;
	}
	index = dnsf_index_from_file(feed, use_limits, &errors);
	if (!index) {
		print_errors(feed, &errors);
		if (is_io_error(&errors))
			status = EXIT_USAGE;
		else {
			fprintf(stderr, "%s: invalid feed (%zu errors)\n", feed, errors.count);
			status = EXIT_INVALID;
		}
		goto done;
	}
	if (name)
		status = lookup(index, name, now);
	else
		print_summary(feed, index, now);
	dnsf_index_free(index);
done:
	dnsf_errors_clear(&errors);
	dnsf_settings_free(&settings);
	return status;
}
