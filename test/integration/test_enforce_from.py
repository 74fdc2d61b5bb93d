"""enforce-from: the module monitors until that moment and then enforces,
on its own, without a reload, with the cache rules of an entry's start: a
real answer of a listed name in the cache at the switch is gone after it.
The counter log says the mode of each interval ("mode", and a line at the
switch, so no line mixes the two), the metrics dnsfilter_enforcing.

The module never caches a listed name's real answer itself, also while it
monitors; the cached answer here is restored with unbound-control
load_cache, as an operator does after a restart, with an address that is
not the real one (192.0.2.99), so an answer from that cache entry is
recognised.
"""

import calendar
import json
import os
import re
import subprocess
import sys
import threading
import time
import unittest

import harness
import refresh_support as rs
from harness import entry, feed

ZONE = "enf.test"
ZONES = {ZONE: harness.zone_text(ZONE, ["c2 A 198.51.100.1", "decoy A 192.0.2.99",
                                        "slow A 198.51.100.9"])}
FEED = feed([entry("T-0001", ["c2." + ZONE, "slow." + ZONE])])
SINKHOLE = "192.0.2.1"
REAL = "198.51.100.1"
PLANTED = "192.0.2.99"  # the cached answer restored for c2
SWITCH_AFTER = 8  # seconds from the start of the test to enforce-from
DELAY = 2.0
SLOW_STUB = ["discard-timeout: 0", "qname-minimisation: no"]
CHECK = os.environ.get("DNSFILTER_CHECK") or os.path.join(
    harness.REPO, "build", "cmake", "dnsfilter-check")
REPORT = os.path.join(harness.REPO, "scripts", "dnsfilter-report")
SWITCH_LINE = re.compile(r"dnsfilter: enforce-from (\S+) reached: enforcing from now on")


def name(label):
    return "%s.%s" % (label, ZONE)


def settings(enforce_from, **more):
    document = {"feed": "feed.json", "sinkhole": {"a": SINKHOLE}, "watch-interval": 0,
                "enforce-from": enforce_from, "log": {"path": "events.jsonl"},
                "stats": {"path": "stats.jsonl", "interval": 1},
                "metrics": {"path": "metrics.prom"}}
    document.update(more)
    return document


def read_json_lines(path):
    try:
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except OSError:
        return []


def metric(unbound, sample):
    try:
        with open(unbound.workdir.file("metrics.prom"), encoding="utf-8") as f:
            for line in f:
                if line.startswith(sample + " "):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


def report(workdir, stats, day, lang="en"):
    """dnsfilter-report over counter logs for one day (UTC); return the
    CompletedProcess and the Markdown report's text."""
    feed_path = workdir.file("feed.json")
    if not os.path.exists(feed_path):
        workdir.write("feed.json", FEED)
    out = workdir.file("report")
    result = subprocess.run(
        [sys.executable, REPORT, "--feed", feed_path, "--stats"] + list(stats) +
        ["--from", day, "--to", day, "--tz", "Z", "--lang", lang, "--out", out],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    try:
        with open(os.path.join(out, "report.md"), encoding="utf-8") as f:
            return result, f.read()
    except OSError:
        return result, ""


def parse_ts(text):
    """Unix seconds of a counter log timestamp ("...T...[.fff]Z")."""
    whole, _, fraction = text.rstrip("Z").partition(".")
    seconds = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
    return seconds + (float("0." + fraction) if fraction else 0.0)


class EnforceFromTest(unittest.TestCase):

    def start(self, label, seconds=SWITCH_AFTER, slow=False):
        """NSD (behind the DelayProxy when slow) and Unbound with
        enforce-from seconds from now; return the switch time."""
        self.switch_at = int(time.time()) + seconds
        workdir = harness.WorkDir(label)
        self.addCleanup(workdir.cleanup)
        nsd = harness.Nsd(workdir, ZONES)
        self.addCleanup(nsd.stop)
        nsd.start()
        port = nsd.port
        if slow:
            self.proxy = rs.DelayProxy(nsd.port, slow=[name("slow")], delay=DELAY)
            self.addCleanup(self.proxy.stop)
            self.proxy.start()
            port = self.proxy.port
        self.unbound = harness.Unbound(workdir, {ZONE: port},
                                       settings=settings(harness.rfc3339(self.switch_at)),
                                       feed=FEED, extra=SLOW_STUB if slow else ())
        self.addCleanup(self.unbound.stop)
        self.unbound.start()
        return self.switch_at

    def a(self, label, **kwargs):
        return self.unbound.query(name(label), "A", **kwargs).rdata("A")

    def plant(self, label):
        """Put a real-looking answer for label into the message cache with
        load_cache: the dump of the unlisted decoy, renamed."""
        self.assertEqual(self.a("decoy"), [PLANTED])
        dump = self.unbound.control("dump_cache", timeout=30).stdout
        rrsets, messages, keep = [], [], False
        section = None
        for line in dump.splitlines():
            if line.startswith("START_"):
                section = line
                continue
            if line.startswith("END_"):
                section = None
                continue
            if section == "START_RRSET_CACHE":
                if line.startswith(";rrset"):
                    keep = False
                    header = line
                elif line.split()[:1] == [name("decoy") + "."] and line.split()[3:4] == ["A"]:
                    if not keep:
                        rrsets.append(header)
                        keep = True
                    rrsets.append(line)
            elif section == "START_MSG_CACHE":
                if line.startswith("msg "):
                    keep = line.lower().startswith("msg %s. in a " % name("decoy"))
                if keep:
                    messages.append(line)
        self.assertTrue(rrsets and messages, dump)
        text = "\n".join(["START_RRSET_CACHE"] + rrsets + ["END_RRSET_CACHE",
                                                           "START_MSG_CACHE"] + messages +
                         ["END_MSG_CACHE", "EOF", ""])
        text = re.sub(r"(?i)\bdecoy\.", label + ".", text)
        result = subprocess.run([harness.tool("unbound-control"), "-c", self.unbound.conf,
                                 "load_cache"], input=text, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, universal_newlines=True, timeout=30)
        self.assertEqual(result.returncode, 0, result.stdout + "\n" + text)
        self.assertTrue(self.unbound.dump_cache().has_message(name(label), "A"))

    def counter_lines(self):
        return read_json_lines(self.unbound.workdir.file("stats.jsonl"))

    def test_switch_to_enforce_without_reload_removes_the_cached_real_answer(self):
        switch_at = self.start("enfswitch")
        self.assertTrue(self.unbound.log_lines(
            r"dnsfilter: .*; mode monitor until %s" % re.escape(harness.rfc3339(switch_at))),
            rs.dnsfilter_lines(self.unbound))
        # monitor: the real answer, logged as monitored, not cached
        self.assertEqual(self.a("c2"), [REAL])
        self.assertFalse(self.unbound.dump_cache().has_message(name("c2"), "A"))
        self.assertTrue(harness.wait_until(lambda: metric(self.unbound, "dnsfilter_enforcing")
                                           == 0, 3))
        # a real answer restored into the cache is served while monitoring
        self.plant("c2")
        self.assertEqual(self.a("c2"), [PLANTED])
        self.assertLess(time.time(), switch_at - 1, "the test was too slow to set up")
        purges = len(self.unbound.purges())

        # the switch, on its own
        found = rs.wait_for_count(self.unbound, SWITCH_LINE, 1, switch_at - time.time() + 5)
        self.assertTrue(found, "no switch:\n" + "\n".join(rs.dnsfilter_lines(self.unbound)))
        self.assertEqual(found[0].group(1), harness.rfc3339(switch_at))
        # the purge that follows it (the documented bound), then no cached copy
        purged = harness.wait_until(lambda: len(self.unbound.purges()) > purges, 5)
        self.assertEqual(self.a("c2"), [SINKHOLE], "after the switch (%s):\n%s" % (
            "purged" if purged else "no purge", rs.log_tail(self.unbound)))
        self.assertFalse(self.unbound.dump_cache().has_message(name("c2"), "A"))
        self.assertEqual(self.a("c2", tcp=True), [SINKHOLE])
        self.assertTrue(harness.wait_until(lambda: metric(self.unbound, "dnsfilter_enforcing")
                                           == 1, 3))

        # the counter log: monitor lines up to the switch, enforce after it
        self.assertTrue(harness.wait_until(
            lambda: sum(1 for line in self.counter_lines() if line["mode"] == "enforce") >= 2,
            5), self.counter_lines())
        lines = self.counter_lines()
        modes = [line["mode"] for line in lines]
        first_enforce = modes.index("enforce")
        self.assertGreater(first_enforce, 0, lines)
        self.assertEqual(set(modes[:first_enforce]), {"monitor"}, lines)
        self.assertEqual(set(modes[first_enforce:]), {"enforce"}, lines)
        last_monitor = lines[first_enforce - 1]
        # the line at the switch ends the monitor interval there
        self.assertGreaterEqual(parse_ts(last_monitor["ts"]), switch_at, last_monitor)
        self.assertLess(parse_ts(last_monitor["ts"]), switch_at + 1.0, last_monitor)
        self.assertEqual(sum(line["blocked"] for line in lines[:first_enforce]), 0, lines)
        self.assertGreaterEqual(sum(line["monitored"] for line in lines[:first_enforce]), 1)
        self.assertEqual(sum(line["monitored"] for line in lines[first_enforce:]), 0, lines)
        self.assertEqual(sum(line["blocked"] for line in lines[first_enforce:]), 2, lines)
        around = lines[max(0, first_enforce - 2):first_enforce + 2]
        sys.stderr.write("\n  counter lines around the switch (enforce-from %s):\n%s\n" % (
            harness.rfc3339(switch_at),
            "\n".join("    " + json.dumps(line, separators=(",", ":")) for line in around)))
        events = read_json_lines(self.unbound.workdir.file("events.jsonl"))
        self.assertEqual([e["action"] for e in events if e["qname"] == name("c2")],
                         ["monitor", "block", "block"], events)
        # the report says when enforcement started, to the second
        switch_line = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(
            int(parse_ts(last_monitor["ts"]))))
        result, text = report(self.unbound.workdir, [self.unbound.workdir.file("stats.jsonl")],
                              time.strftime("%Y-%m-%d", time.gmtime(switch_at)))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("- **Mode**: monitoring (monitor) until %s (UTC), filtering (enforce) "
                      "since then" % switch_line, text)

    def test_resolution_in_flight_across_the_switch_gets_the_sinkhole(self):
        switch_at = self.start("enfflight", slow=True)
        # asked 1 s before the switch, answered (2 s delay) after it
        time.sleep(max(0.0, switch_at - 1 - time.time()))
        self.assertLess(time.time(), switch_at, "too late to ask before the switch")
        answer = self.unbound.query(name("slow"), "A", timeout=8)
        self.assertGreater(time.time(), switch_at, "answered before the switch")
        self.assertEqual(answer.rdata("A"), [SINKHOLE], answer.text)
        self.assertFalse(self.unbound.dump_cache().has_message(name("slow"), "A"))

    def test_enforce_from_in_the_past_enforces_from_the_start(self):
        self.start("enfpast", seconds=-3600)
        self.assertTrue(self.unbound.log_lines(r"dnsfilter: .*; mode enforce$"),
                        rs.dnsfilter_lines(self.unbound))
        self.assertEqual(self.a("c2"), [SINKHOLE])
        self.assertFalse(self.unbound.log_lines(SWITCH_LINE.pattern))


class ReportModeTest(unittest.TestCase):
    """dnsfilter-report's "Mode" row from the counter lines' mode."""

    DAY = "2024-07-01"

    def setUp(self):
        self.workdir = harness.WorkDir("enfreport")
        self.addCleanup(self.workdir.cleanup)

    def run_report(self, *logs, lang="en"):
        paths = []
        for number, lines in enumerate(logs):
            paths.append(self.workdir.write("stats%d.jsonl" % number, "".join(
                json.dumps(line) + "\n" for line in lines)))
        return report(self.workdir, paths, self.DAY, lang)

    @staticmethod
    def line(ts, mode=None, blocked=0, monitored=0):
        value = {"ts": "2024-07-01T%sZ" % ts, "interval": 60, "queries": 10,
                 "optout": 0, "blocked": blocked, "monitored": monitored, "by_id": {}}
        if mode:
            value["mode"] = mode
        return value

    def test_switch_in_the_period_is_named_to_the_second(self):
        result, text = self.run_report(
            [self.line("08:59:00.100", "monitor", monitored=2),
             self.line("09:00:00.004", "monitor", monitored=1),
             self.line("09:01:00.100", "enforce", blocked=3)],
            [self.line("08:59:30.000", "monitor"), self.line("09:00:01.020", "monitor"),
             self.line("09:00:30.000", "enforce")])
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("- **Mode**: monitoring (monitor) until 2024-07-01 09:00:00 (UTC) – "
                      "2024-07-01 09:00:01 (UTC) (2 counter logs), filtering (enforce) since "
                      "then", text)
        result, text = self.run_report(
            [self.line("09:00:00.004", "monitor"), self.line("09:01:00.100", "enforce")],
            lang="ja")
        self.assertIn("2024-07-01 09:00:00 (UTC) までモニタ（monitor）、以降フィルタ（enforce）", text)

    def test_one_mode_throughout(self):
        _, text = self.run_report([self.line("01:00:00", "monitor", monitored=1)])
        self.assertIn("- **Mode**: monitoring only (monitor): no query was filtered", text)
        _, text = self.run_report([self.line("01:00:00", "enforce", blocked=1)])
        self.assertIn("- **Mode**: filtering (enforce) throughout", text)

    def test_lines_without_mode_give_no_mode_row(self):
        result, text = self.run_report([self.line("01:00:00", blocked=1)])
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertNotIn("**Mode**", text)

    def test_bad_mode_is_named(self):
        bad = self.line("01:00:00")
        bad["mode"] = "block"
        result, _ = self.run_report([bad])
        self.assertEqual(result.returncode, 1)
        self.assertIn("stats0.jsonl:1: field 'mode': must be \"monitor\" or \"enforce\"",
                      result.stderr)


class EnforceFromSettingsTest(unittest.TestCase):
    """enforce-from beside mode monitor is refused by the module (Unbound
    does not start) and by dnsfilter-check --config, which also says what
    is in force."""

    def setUp(self):
        self.workdir = harness.WorkDir("enfsettings")
        self.addCleanup(self.workdir.cleanup)
        self.workdir.write("feed.json", FEED)

    def check(self, document):
        path = self.workdir.write("dnsfilter.json", document)
        return subprocess.run([CHECK, "--config", path], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True, timeout=30)

    def test_with_mode_monitor_unbound_refuses_to_start(self):
        nsd = harness.Nsd(self.workdir, ZONES)
        self.addCleanup(nsd.stop)
        nsd.start()
        unbound = harness.Unbound(self.workdir, {ZONE: nsd.port}, feed=FEED,
                                  settings=settings("2024-07-01T00:00:00+09:00", mode="monitor"))
        self.addCleanup(unbound.stop)
        unbound.launch()
        code = unbound.wait_exit(harness.START_TIMEOUT)
        self.assertIsNotNone(code, "Unbound still running")
        self.assertNotEqual(code, 0)
        self.assertRegex(unbound.output(), r'enforce-from: cannot be combined with '
                                           r'\\?"mode\\?": \\?"monitor\\?"')

    def test_dnsfilter_check_says_the_mode_and_refuses_monitor_with_enforce_from(self):
        if not os.access(CHECK, os.X_OK):
            self.skipTest("dnsfilter-check not built at %s" % CHECK)
        later = self.check(settings("2099-07-01T00:00:00+09:00"))
        self.assertEqual(later.returncode, 0, later.stderr)
        self.assertIn("mode: monitor until 2099-06-30T15:00:00Z, then enforce\n", later.stdout)
        earlier = self.check(settings("2024-07-01T00:00:00+09:00"))
        self.assertIn("mode: enforce (since enforce-from 2024-06-30T15:00:00Z)\n",
                      earlier.stdout)
        both = self.check(settings("2099-07-01T00:00:00+09:00", mode="monitor"))
        self.assertEqual(both.returncode, 1)
        self.assertIn('enforce-from: cannot be combined with "mode": "monitor"', both.stderr)
        date = self.check(settings("2099-07-01"))
        self.assertEqual(date.returncode, 1)
        self.assertIn("enforce-from: must be an RFC 3339 timestamp with its UTC offset",
                      date.stderr)
        service = self.check(settings("2099-07-01T00:00:00Z",
                                      optout={"service-addresses": ["127.0.0.2"]}))
        self.assertEqual(service.returncode, 0, service.stderr)
        self.assertIn("service addresses: 127.0.0.2 (Unbound must listen on each", service.stdout)


if __name__ == "__main__":
    unittest.main()
