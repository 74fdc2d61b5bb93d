/* dnsfilter.json: values, defaults, and errors naming the key. */
#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsfilter/limits.h"
#include "dnsfilter/settings.h"
#include "unit.h"

static int parse(const char *text, struct dnsf_settings *settings, struct dnsf_errors *errors)
{
	return dnsf_settings_parse(text, strlen(text), "/etc/unbound/dnsfilter.json", settings,
				   errors);
}

static void assert_rejected_with(const char *text, const char *part)
{
	struct dnsf_settings settings;
	struct dnsf_errors errors = { 0 };
	ck_assert(!parse(text, &settings, &errors));
	assert_errors_mention(&errors, part, NULL);
	dnsf_errors_clear(&errors);
	dnsf_settings_free(&settings);
}

START_TEST(test_defaults)
{
	struct dnsf_settings s;
	struct dnsf_errors errors = { 0 };
	ck_assert(parse("{\"feed\":\"feed.json\"}", &s, &errors));
	ck_assert_str_eq(s.feed, "/etc/unbound/feed.json");
	ck_assert_uint_eq(s.ttl, 60);
	ck_assert_uint_eq(s.sinkhole_a.s_addr, 0);
	ck_assert_int_eq(s.other_types, DNSF_OTHER_NODATA);
	ck_assert_int_eq(s.mode, DNSF_MODE_ENFORCE);
	ck_assert_int_eq(s.ede, 1);
	dnsf_settings_free(&s);
}
END_TEST

START_TEST(test_nested_and_dotted_keys)
{
	struct dnsf_settings s;
	struct dnsf_errors errors = { 0 };
	char text[64];
	ck_assert(parse("{\"feed\":\"/var/lib/feed.json\",\"sinkhole\":{\"a\":\"192.0.2.1\"},"
			"\"sinkhole.aaaa\":\"2001:db8::1\",\"ttl\":42,\"other-types\":\"nxdomain\","
			"\"mode\":\"monitor\",\"ede\":false}",
			&s, &errors));
	ck_assert_str_eq(s.feed, "/var/lib/feed.json");
	ck_assert_str_eq(inet_ntop(AF_INET, &s.sinkhole_a, text, sizeof(text)), "192.0.2.1");
	ck_assert_str_eq(inet_ntop(AF_INET6, &s.sinkhole_aaaa, text, sizeof(text)), "2001:db8::1");
	ck_assert_uint_eq(s.ttl, 42);
	ck_assert_int_eq(s.other_types, DNSF_OTHER_NXDOMAIN);
	ck_assert_int_eq(s.mode, DNSF_MODE_MONITOR);
	ck_assert_int_eq(s.ede, 0);
	dnsf_settings_free(&s);
}
END_TEST

START_TEST(test_errors_name_the_key)
{
	assert_rejected_with("{\"feed\":\"f\",\"colour\":1}", "colour: unknown key");
	assert_rejected_with("{\"feed\":\"f\",\"sinkhole\":{\"b\":1}}", "sinkhole.b: unknown key");
	assert_rejected_with("{\"feed\":\"f\",\"sinkhole\":{\"a\":\"300.1.1.1\"}}",
			     "sinkhole.a: must be an IPv4");
	assert_rejected_with("{\"feed\":\"f\",\"sinkhole.aaaa\":\"1.2.3.4\"}",
			     "sinkhole.aaaa: must be an IPv6");
	assert_rejected_with("{\"feed\":\"f\",\"ttl\":-1}", "ttl: must be a whole number");
	assert_rejected_with("{\"feed\":\"f\",\"ttl\":\"60\"}", "ttl: must be a whole number");
	assert_rejected_with("{\"feed\":\"f\",\"other-types\":\"refuse\"}", "other-types: must be");
	assert_rejected_with("{\"feed\":\"f\",\"mode\":1}", "mode: must be");
	assert_rejected_with("{\"feed\":\"f\",\"ede\":\"yes\"}", "ede: must be true or false");
	assert_rejected_with("{\"ttl\":5}", "feed: missing");
	assert_rejected_with("{\"feed\":\"\"}", "feed: must be a non-empty path");
	assert_rejected_with("{\"feed\":\"f\",\"ttl\":1,\"ttl\":2}", "ttl: given twice");
	assert_rejected_with("{\"feed\":\"f\"", "JSON syntax error");
	assert_rejected_with("[1]", "must be a JSON object");
}
END_TEST

START_TEST(test_every_error_is_reported)
{
	struct dnsf_settings s;
	struct dnsf_errors errors = { 0 };
	ck_assert(!parse("{\"feed\":\"f\",\"a\":1,\"ttl\":-5,\"mode\":\"x\"}", &s, &errors));
	ck_assert_uint_eq(errors.count, 3);
	dnsf_errors_clear(&errors);
	dnsf_settings_free(&s);
}
END_TEST

START_TEST(test_reporting_defaults_are_off_with_full_addresses_every_minute)
{
	struct dnsf_settings s;
	struct dnsf_errors errors = { 0 };
	ck_assert(parse("{\"feed\":\"feed.json\"}", &s, &errors));
	ck_assert_ptr_null(s.log_path);
	ck_assert_ptr_null(s.stats_path);
	ck_assert_ptr_null(s.metrics_path);
	ck_assert_int_eq(s.log_client_ip, DNSF_CLIENT_IP_FULL);
	ck_assert_uint_eq(s.stats_interval, 60);
	dnsf_settings_free(&s);
}
END_TEST

START_TEST(test_reporting_paths_are_relative_to_the_settings_file)
{
	struct dnsf_settings s;
	struct dnsf_errors errors = { 0 };
	ck_assert(
	    parse("{\"feed\":\"f\",\"log\":{\"path\":\"events.log\",\"client-ip\":\"truncate\"},"
		  "\"stats.path\":\"/var/log/dnsfilter/stats.log\",\"stats\":{\"interval\":300},"
		  "\"metrics\":{\"path\":\"prom/dnsfilter.prom\"}}",
		  &s, &errors));
	ck_assert_str_eq(s.log_path, "/etc/unbound/events.log");
	ck_assert_int_eq(s.log_client_ip, DNSF_CLIENT_IP_TRUNCATE);
	ck_assert_str_eq(s.stats_path, "/var/log/dnsfilter/stats.log");
	ck_assert_uint_eq(s.stats_interval, 300);
	ck_assert_str_eq(s.metrics_path, "/etc/unbound/prom/dnsfilter.prom");
	dnsf_settings_free(&s);
	ck_assert(
	    parse("{\"feed\":\"f\",\"log.client-ip\":\"none\",\"stats.interval\":1}", &s, &errors));
	ck_assert_int_eq(s.log_client_ip, DNSF_CLIENT_IP_NONE);
	ck_assert_uint_eq(s.stats_interval, 1);
	dnsf_settings_free(&s);
	ck_assert(parse("{\"feed\":\"f\",\"log.client-ip\":\"full\",\"stats.interval\":86400}", &s,
			&errors));
	ck_assert_int_eq(s.log_client_ip, DNSF_CLIENT_IP_FULL);
	ck_assert_uint_eq(s.stats_interval, 86400);
	dnsf_settings_free(&s);
	ck_assert_uint_eq(errors.count, 0);
}
END_TEST

START_TEST(test_reporting_errors_name_the_key)
{
	assert_rejected_with("{\"feed\":\"f\",\"log.path\":\"\"}",
			     "log.path: must be a non-empty path");
	assert_rejected_with("{\"feed\":\"f\",\"log\":{\"path\":7}}",
			     "log.path: must be a non-empty path");
	assert_rejected_with("{\"feed\":\"f\",\"log.client-ip\":\"anonymize\"}",
			     "log.client-ip: must be \"full\", \"truncate\" or \"none\"");
	assert_rejected_with("{\"feed\":\"f\",\"log.client-ip\":false}", "log.client-ip: must be");
	assert_rejected_with("{\"feed\":\"f\",\"log\":{\"level\":1}}", "log.level: unknown key");
	assert_rejected_with("{\"feed\":\"f\",\"stats.path\":[]}",
			     "stats.path: must be a non-empty path");
	assert_rejected_with("{\"feed\":\"f\",\"stats.interval\":0}",
			     "stats.interval: must be a whole number from 1 to 86400");
	assert_rejected_with("{\"feed\":\"f\",\"stats.interval\":86401}",
			     "stats.interval: must be a whole number");
	assert_rejected_with("{\"feed\":\"f\",\"stats.interval\":1.5}",
			     "stats.interval: must be a whole number");
	assert_rejected_with("{\"feed\":\"f\",\"stats.interval\":\"60\"}",
			     "stats.interval: must be a whole number");
	assert_rejected_with("{\"feed\":\"f\",\"metrics.path\":null}",
			     "metrics.path: must be a non-empty path");
	assert_rejected_with("{\"feed\":\"f\",\"metrics\":{\"port\":9100}}",
			     "metrics.port: unknown key");
	assert_rejected_with("{\"feed\":\"f\",\"log.path\":\"a\",\"log\":{\"path\":\"b\"}}",
			     "log.path: given twice");
}
END_TEST

START_TEST(test_missing_file_is_reported)
{
	struct dnsf_settings s;
	struct dnsf_errors errors = { 0 };
	ck_assert(!dnsf_settings_load("/nonexistent/dnsfilter.json", &s, &errors));
	ck_assert_ptr_nonnull(strstr(errors.messages[0], "cannot open"));
	dnsf_errors_clear(&errors);
	dnsf_settings_free(&s);
}
END_TEST

/* The exact message of the one error a text gives. */
static void assert_only_error(const char *text, const char *message)
{
	struct dnsf_settings settings;
	struct dnsf_errors errors = { 0 };
	ck_assert(!parse(text, &settings, &errors));
	char *all = dnsf_errors_join(&errors, " | ");
	ck_assert_msg(errors.count == 1 && strcmp(errors.messages[0], message) == 0,
		      "expected only \"%s\", got: %s", message, all);
	ck_assert_int_eq(errors.kinds[0], DNSF_ERROR_INVALID);
	free(all);
	dnsf_errors_clear(&errors);
	dnsf_settings_free(&settings);
}

START_TEST(test_errors_quote_the_bad_value)
{
	assert_only_error("{\"feed\":\"f\",\"ttl\":-1}",
			  "ttl: must be a whole number from 0 to 604800, not -1");
	assert_only_error("{\"feed\":\"f\",\"ttl\":\"60\"}",
			  "ttl: must be a whole number from 0 to 604800, not \"60\"");
	assert_only_error("{\"feed\":\"f\",\"watch-interval\":1.5}",
			  "watch-interval: must be a whole number from 0 to 86400, not 1.5");
	assert_only_error("{\"feed\":\"f\",\"limits\":{\"feed-bytes\":1023}}",
			  "limits.feed-bytes: must be a whole number from 1024 to 4294967296, "
			  "not 1023");
	assert_only_error("{\"feed\":\"f\",\"sinkhole\":{\"a\":\"300.1.1.1\"}}",
			  "sinkhole.a: must be an IPv4 address string, not \"300.1.1.1\"");
	assert_only_error("{\"feed\":\"f\",\"sinkhole.aaaa\":[\"::1\"]}",
			  "sinkhole.aaaa: must be an IPv6 address string, not an array");
	assert_only_error("{\"feed\":\"f\",\"mode\":{}}",
			  "mode: must be \"enforce\" or \"monitor\", not an object");
	assert_only_error(
	    "{\"feed\":\"f\",\"other-types\":\"refuse\"}",
	    "other-types: must be \"nodata\", \"nxdomain\" or \"pass\", not \"refuse\"");
	assert_only_error("{\"feed\":\"f\",\"ede\":null}", "ede: must be true or false, not null");
	assert_only_error("{\"feed\":\"f\",\"match-cname\":1}",
			  "match-cname: must be true or false, not 1");
	assert_only_error("{\"feed\":false}", "feed: must be a non-empty path, not false");
	assert_only_error("{\"feed\":\"f\",\"optout\":{\"networks\":\"10.0.0.0/8\"}}",
			  "optout.networks: must be a list of networks (CIDR strings), "
			  "not \"10.0.0.0/8\"");
	assert_only_error("{\"feed\":\"f\",\"optout.networks\":[\"10.0.0.0/8\",true]}",
			  "optout.networks[1]: must be a string, not true");
}
END_TEST

START_TEST(test_quoted_values_are_escaped_and_cut)
{
	/* control characters, a newline, quotes, backslashes and bytes that are
	 * not UTF-8 are escaped (error.h), so a value cannot forge a log line
	 * nor end its quotes early; a long value is cut with "..." */
	assert_only_error(
	    "{\"feed\":\"f\",\"mode\":\"a\\u0007\\n\\\"\\\\\xff\"}",
	    "mode: must be \"enforce\" or \"monitor\", not \"a\\x07\\n\\\"\\\\\\xff\"");
	char text[600], message[600];
	snprintf(text, sizeof(text), "{\"feed\":\"f\",\"log.client-ip\":\"%0400d\"}", 0);
	snprintf(message, sizeof(message),
		 "log.client-ip: must be \"full\", \"truncate\" or \"none\", not \"%0300d...\"", 0);
	assert_only_error(text, message);
}
END_TEST

START_TEST(test_missing_feed_is_reported_beside_other_errors)
{
	struct dnsf_settings s;
	struct dnsf_errors errors = { 0 };
	ck_assert(!parse("{\"ttl\":-1}", &s, &errors));
	ck_assert_uint_eq(errors.count, 2);
	assert_errors_mention(&errors, "ttl: must be a whole number", NULL);
	assert_errors_mention(&errors, "feed: missing (the path of the feed file)", NULL);
	dnsf_errors_clear(&errors);
	dnsf_settings_free(&s);
}
END_TEST

START_TEST(test_every_default)
{
	struct dnsf_settings s;
	struct dnsf_errors errors = { 0 };
	char text[64];
	ck_assert(parse("{\"feed\":\"f\"}", &s, &errors));
	ck_assert_str_eq(inet_ntop(AF_INET, &s.sinkhole_a, text, sizeof(text)), "0.0.0.0");
	ck_assert_str_eq(inet_ntop(AF_INET6, &s.sinkhole_aaaa, text, sizeof(text)), "::");
	ck_assert_uint_eq(s.ttl, 60);
	ck_assert_int_eq(s.other_types, DNSF_OTHER_NODATA);
	ck_assert_int_eq(s.mode, DNSF_MODE_ENFORCE);
	ck_assert_int_eq(s.ede, 1);
	ck_assert_int_eq(s.match_cname, 1);
	ck_assert_ptr_null(s.optout_networks);
	ck_assert_uint_eq(s.optout_network_count, 0);
	ck_assert_ptr_null(s.optout_file);
	ck_assert_uint_eq(s.watch_interval, 5);
	ck_assert_int_eq(s.log_client_ip, DNSF_CLIENT_IP_FULL);
	ck_assert_uint_eq(s.stats_interval, 60);
	ck_assert_uint_eq(s.feed_max_bytes, DNSF_FEED_MAX_BYTES_DEFAULT);
	ck_assert_uint_eq(s.feed_max_entries, DNSF_FEED_MAX_ENTRIES_DEFAULT);
	ck_assert_uint_eq(s.feed_max_names, DNSF_FEED_MAX_NAMES_DEFAULT);
	/* the documented values (README's settings table) */
	ck_assert_uint_eq(s.feed_max_bytes, 256u << 20);
	ck_assert_uint_eq(s.feed_max_entries, 1000000);
	ck_assert_uint_eq(s.feed_max_names, 5000000);
	dnsf_settings_free(&s);
}
END_TEST

START_TEST(test_every_value_is_stored_in_its_field)
{
	struct dnsf_settings s;
	struct dnsf_errors errors = { 0 };
	ck_assert(parse("{\"feed\":\"/f\",\"optout\":{\"networks\":[\"10.0.0.0/8\",\"::1/128\"],"
			"\"file\":\"o.txt\"},\"match-cname\":false,\"watch-interval\":0,"
			"\"other-types\":\"pass\",\"limits\":{\"feed-bytes\":4294967296,"
			"\"feed-entries\":7,\"feed-names\":100000000}}",
			&s, &errors));
	ck_assert_uint_eq(errors.count, 0);
	ck_assert_uint_eq(s.optout_network_count, 2);
	ck_assert_str_eq(s.optout_networks[0], "10.0.0.0/8");
	ck_assert_str_eq(s.optout_networks[1], "::1/128");
	ck_assert_str_eq(s.optout_file, "/etc/unbound/o.txt");
	ck_assert_int_eq(s.match_cname, 0);
	ck_assert_uint_eq(s.watch_interval, 0);
	ck_assert_int_eq(s.other_types, DNSF_OTHER_PASS);
	ck_assert_uint_eq(s.feed_max_bytes, 4294967296u);
	ck_assert_uint_eq(s.feed_max_entries, 7);
	ck_assert_uint_eq(s.feed_max_names, 100000000);
	ck_assert_uint_eq(s.ttl, 60);
	dnsf_settings_free(&s);
}
END_TEST

START_TEST(test_a_list_given_twice_keeps_the_last)
{
	/* an error, and no leak of the first list (the ASan run checks) */
	struct dnsf_settings s;
	struct dnsf_errors errors = { 0 };
	ck_assert(!parse("{\"feed\":\"f\",\"optout.networks\":[\"10.0.0.0/8\",\"10.1.0.0/16\"],"
			 "\"optout\":{\"networks\":[\"192.0.2.0/24\"]}}",
			 &s, &errors));
	ck_assert_uint_eq(errors.count, 1);
	assert_errors_mention(&errors, "optout.networks: given twice", NULL);
	ck_assert_uint_eq(s.optout_network_count, 1);
	ck_assert_str_eq(s.optout_networks[0], "192.0.2.0/24");
	dnsf_errors_clear(&errors);
	dnsf_settings_free(&s);
}
END_TEST

START_TEST(test_unreadable_settings_are_io_errors)
{
	struct dnsf_settings s;
	struct dnsf_errors errors = { 0 };
	ck_assert(!dnsf_settings_load("/tmp", &s, &errors));
	ck_assert_uint_eq(errors.count, 1);
	ck_assert_int_eq(errors.kinds[0], DNSF_ERROR_IO);
	ck_assert_str_eq(errors.messages[0], "not a regular file (a directory)");
	dnsf_errors_clear(&errors);
	dnsf_settings_free(&s);
	ck_assert(!dnsf_settings_load("/nonexistent/dnsfilter.json", &s, &errors));
	ck_assert_int_eq(errors.kinds[0], DNSF_ERROR_IO);
	dnsf_errors_clear(&errors);
	dnsf_settings_free(&s);
}
END_TEST

/* ---- enforce-from ---- */

START_TEST(test_enforce_from_is_absent_by_default)
{
	struct dnsf_settings s;
	struct dnsf_errors errors = { 0 };
	ck_assert(parse("{\"feed\":\"f\"}", &s, &errors));
	ck_assert(s.enforce_from == DNSF_ENFORCE_FROM_NONE);
	ck_assert_int_eq(dnsf_settings_mode_at(&s, 0), DNSF_MODE_ENFORCE);
	ck_assert_int_eq(dnsf_settings_mode_at(&s, INT64_MAX), DNSF_MODE_ENFORCE);
	dnsf_settings_free(&s);
	ck_assert(parse("{\"feed\":\"f\",\"mode\":\"monitor\"}", &s, &errors));
	ck_assert_int_eq(dnsf_settings_mode_at(&s, INT64_MAX), DNSF_MODE_MONITOR);
	dnsf_settings_free(&s);
}
END_TEST

START_TEST(test_enforce_from_monitors_until_the_second_it_names)
{
	struct dnsf_settings s;
	struct dnsf_errors errors = { 0 };
	/* 2024-07-01T00:00:00+09:00 is 2024-06-30T15:00:00Z = 1719759600 */
	ck_assert(
	    parse("{\"feed\":\"f\",\"enforce-from\":\"2024-07-01T00:00:00+09:00\"}", &s, &errors));
	ck_assert_int_eq(s.enforce_from, 1719759600);
	ck_assert_int_eq(s.mode, DNSF_MODE_ENFORCE);
	ck_assert_int_eq(dnsf_settings_mode_at(&s, 1719759599), DNSF_MODE_MONITOR);
	ck_assert_int_eq(dnsf_settings_mode_at(&s, 1719759600), DNSF_MODE_ENFORCE);
	ck_assert_int_eq(dnsf_settings_mode_at(&s, 1719759601), DNSF_MODE_ENFORCE);
	dnsf_settings_free(&s);
	/* with mode enforce written out, and in UTC with a fraction */
	ck_assert(parse("{\"feed\":\"f\",\"mode\":\"enforce\","
			"\"enforce-from\":\"2024-06-30T15:00:00.250Z\"}",
			&s, &errors));
	ck_assert_int_eq(s.enforce_from, 1719759600);
	dnsf_settings_free(&s);
}
END_TEST

START_TEST(test_enforce_from_must_be_a_whole_timestamp)
{
	assert_rejected_with("{\"feed\":\"f\",\"enforce-from\":\"2024-07-01\"}",
			     "enforce-from: must be an RFC 3339 timestamp with its UTC offset");
	assert_rejected_with("{\"feed\":\"f\",\"enforce-from\":\"2024-07-01T00:00:00\"}",
			     "enforce-from: must be an RFC 3339 timestamp");
	assert_rejected_with("{\"feed\":\"f\",\"enforce-from\":\"2024-02-30T00:00:00Z\"}",
			     "enforce-from: must be an RFC 3339 timestamp");
	assert_rejected_with("{\"feed\":\"f\",\"enforce-from\":1719759600}",
			     "enforce-from: must be an RFC 3339 timestamp");
	assert_rejected_with("{\"feed\":\"f\",\"enforce-from\":\"tomorrow\"}", "not \"tomorrow\"");
}
END_TEST

START_TEST(test_enforce_from_with_monitor_mode_is_an_error)
{
	/* monitor for good, or until enforce-from? Not guessed. */
	assert_rejected_with("{\"feed\":\"f\",\"mode\":\"monitor\","
			     "\"enforce-from\":\"2024-07-01T00:00:00+09:00\"}",
			     "enforce-from: cannot be combined with \"mode\": \"monitor\"");
}
END_TEST

/* ---- optout.service-addresses ---- */

START_TEST(test_service_addresses_are_parsed_and_looked_up)
{
	struct dnsf_settings s;
	struct dnsf_errors errors = { 0 };
	struct in_addr v4;
	struct in6_addr v6;
	ck_assert(parse("{\"feed\":\"f\",\"optout\":{\"service-addresses\":"
			"[\"192.0.2.53\",\"2001:db8::53\",\"::ffff:198.51.100.53\"]}}",
			&s, &errors));
	ck_assert_uint_eq(s.service_address_count, 3);
	ck_assert_int_eq(s.service_addresses[0].family, AF_INET);
	ck_assert_int_eq(s.service_addresses[1].family, AF_INET6);
	/* an IPv4-mapped address is the IPv4 address */
	ck_assert_int_eq(s.service_addresses[2].family, AF_INET);
	inet_pton(AF_INET, "192.0.2.53", &v4);
	ck_assert(dnsf_settings_is_service_address(&s, AF_INET, &v4));
	inet_pton(AF_INET, "198.51.100.53", &v4);
	ck_assert(dnsf_settings_is_service_address(&s, AF_INET, &v4));
	inet_pton(AF_INET, "192.0.2.54", &v4);
	ck_assert(!dnsf_settings_is_service_address(&s, AF_INET, &v4));
	inet_pton(AF_INET6, "2001:db8::53", &v6);
	ck_assert(dnsf_settings_is_service_address(&s, AF_INET6, &v6));
	inet_pton(AF_INET6, "::ffff:192.0.2.53", &v6);
	ck_assert(dnsf_settings_is_service_address(&s, AF_INET6, &v6));
	inet_pton(AF_INET6, "2001:db8::54", &v6);
	ck_assert(!dnsf_settings_is_service_address(&s, AF_INET6, &v6));
	ck_assert(!dnsf_settings_is_service_address(&s, AF_UNIX, &v6));
	dnsf_settings_free(&s);
	/* none by default, and nothing matches */
	ck_assert(parse("{\"feed\":\"f\"}", &s, &errors));
	ck_assert_ptr_null(s.service_addresses);
	ck_assert_uint_eq(s.service_address_count, 0);
	inet_pton(AF_INET, "192.0.2.53", &v4);
	ck_assert(!dnsf_settings_is_service_address(&s, AF_INET, &v4));
	dnsf_settings_free(&s);
	/* dotted key, empty list */
	ck_assert(parse("{\"feed\":\"f\",\"optout.service-addresses\":[]}", &s, &errors));
	ck_assert_uint_eq(s.service_address_count, 0);
	dnsf_settings_free(&s);
}
END_TEST

START_TEST(test_bad_service_addresses_are_named)
{
	assert_rejected_with("{\"feed\":\"f\",\"optout\":{\"service-addresses\":\"192.0.2.53\"}}",
			     "optout.service-addresses: must be a list of IPv4 or IPv6 addresses");
	assert_rejected_with("{\"feed\":\"f\",\"optout\":{\"service-addresses\":"
			     "[\"192.0.2.53\",\"192.0.2.0/24\"]}}",
			     "optout.service-addresses[1]: must be an IPv4 or IPv6 address");
	assert_rejected_with("{\"feed\":\"f\",\"optout.service-addresses\":[\"0.0.0.0\"]}",
			     "optout.service-addresses[0]: must be an IPv4 or IPv6 address (not a "
			     "network, not a wildcard), not \"0.0.0.0\"");
	assert_rejected_with("{\"feed\":\"f\",\"optout.service-addresses\":[\"::\"]}",
			     "not a wildcard), not \"::\"");
	assert_rejected_with("{\"feed\":\"f\",\"optout.service-addresses\":[\"fe80::1%eth0\"]}",
			     "optout.service-addresses[0]: must be an IPv4 or IPv6 address");
	assert_rejected_with("{\"feed\":\"f\",\"optout.service-addresses\":[53]}",
			     "optout.service-addresses[0]: must be an IPv4 or IPv6 address");
	assert_rejected_with("{\"feed\":\"f\",\"optout.service-addresses\":"
			     "[\"192.0.2.53\",\"::ffff:192.0.2.53\"]}",
			     "optout.service-addresses[1]: \"::ffff:192.0.2.53\": given twice");
}
END_TEST

START_TEST(test_service_addresses_given_twice_keep_the_last)
{
	/* an error, and no leak of the first list (the ASan run checks) */
	struct dnsf_settings s;
	struct dnsf_errors errors = { 0 };
	ck_assert(!parse("{\"feed\":\"f\",\"optout.service-addresses\":[\"192.0.2.1\"],"
			 "\"optout\":{\"service-addresses\":[\"192.0.2.2\",\"192.0.2.3\"]}}",
			 &s, &errors));
	assert_errors_mention(&errors, "optout.service-addresses: given twice", NULL);
	ck_assert_uint_eq(s.service_address_count, 2);
	dnsf_errors_clear(&errors);
	dnsf_settings_free(&s);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("settings");
	TCase *tc = tcase_create("settings");
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_nested_and_dotted_keys);
	tcase_add_test(tc, test_errors_name_the_key);
	tcase_add_test(tc, test_every_error_is_reported);
	tcase_add_test(tc, test_missing_file_is_reported);
	tcase_add_test(tc, test_reporting_defaults_are_off_with_full_addresses_every_minute);
	tcase_add_test(tc, test_reporting_paths_are_relative_to_the_settings_file);
	tcase_add_test(tc, test_reporting_errors_name_the_key);
	tcase_add_test(tc, test_errors_quote_the_bad_value);
	tcase_add_test(tc, test_quoted_values_are_escaped_and_cut);
	tcase_add_test(tc, test_missing_feed_is_reported_beside_other_errors);
	tcase_add_test(tc, test_every_default);
	tcase_add_test(tc, test_every_value_is_stored_in_its_field);
	tcase_add_test(tc, test_a_list_given_twice_keeps_the_last);
	tcase_add_test(tc, test_unreadable_settings_are_io_errors);
	tcase_add_test(tc, test_enforce_from_is_absent_by_default);
	tcase_add_test(tc, test_enforce_from_monitors_until_the_second_it_names);
	tcase_add_test(tc, test_enforce_from_must_be_a_whole_timestamp);
	tcase_add_test(tc, test_enforce_from_with_monitor_mode_is_an_error);
	tcase_add_test(tc, test_service_addresses_are_parsed_and_looked_up);
	tcase_add_test(tc, test_bad_service_addresses_are_named);
	tcase_add_test(tc, test_service_addresses_given_twice_keep_the_last);
	suite_add_tcase(suite, tc);
	return run_suite(suite);
}
