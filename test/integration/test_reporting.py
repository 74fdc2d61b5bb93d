"""The event log, the counter log and the metrics file (issue 6, SPEC
section 8; formats in include/dnsfilter/report.h), end to end: a real
Unbound 1.17.1 with dnsfilter.so, resolving from a real NSD, queried with
kdig (and dnsperf for the burst).

Every test asserts exact values. The harness's own start-up queries (SOA
probes until Unbound answers) are counted by the module like any client
query; the tests that sum counter lines either skip the lines that can hold
them (a baseline taken once a counter line was written after the start
returned) or count the probes they send themselves.

Clients: kdig from 127.0.0.1, and with -b 127.0.0.2 (opted out; every
127.0.0.0/8 address is local on Linux).
"""

import datetime as dt
import json
import os
import re
import select
import subprocess
import threading
import time
import unittest
from collections import Counter, OrderedDict

import harness
from harness import entry, feed

ZONE = "rep.test"
SERIAL = 2024070101
BLOCK_ID = "T-BLK-0001"
MONITOR_ID = "T-MON-0001"
SINKHOLE_A = "192.0.2.1"
SINKHOLE_AAAA = "2001:db8::1"
REAL = {
    "c2": "198.51.100.1",
    "mon": "198.51.100.2",
    "www": "192.0.2.80",
    "www2": "192.0.2.81",
    "www3": "192.0.2.82",
    "www4": "192.0.2.83",
    "www5": "192.0.2.84",
}
RECORDS = ["%s A %s" % (label, address) for label, address in REAL.items()]
RECORDS += ["c2 AAAA 2001:db8:bad::1"]
ZONES = {ZONE: harness.zone_text(ZONE, RECORDS)}

FILTERED = "127.0.0.1"
OPTED_OUT = "127.0.0.2"

EVENT_KEYS = ["ts", "client", "qname", "qtype", "id", "action", "via"]
COUNTER_KEYS = ["ts", "interval", "queries", "optout", "blocked", "monitored",
                "by_id", "dropped_events", "feed_serial", "feed_failures",
                "feed_stale_since", "optout_stale_since", "mode"]
SUMMED = ["queries", "optout", "blocked", "monitored", "dropped_events",
          "feed_failures"]
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
COUNTER_TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

# Metric name -> the counter log field it sums.
METRICS = {
    "dnsfilter_queries_total": "queries",
    "dnsfilter_optout_queries_total": "optout",
    "dnsfilter_blocked_total": "blocked",
    "dnsfilter_monitored_total": "monitored",
    "dnsfilter_dropped_events_total": "dropped_events",
    "dnsfilter_feed_failures_total": "feed_failures",
}

LINE_WAIT = 5.0  # seconds to wait for a counter line with interval 1


def name(label):
    return "%s.%s" % (label, ZONE)


def the_feed(serial=SERIAL):
    return feed([
        entry(BLOCK_ID, [name("c2")]),
        entry(MONITOR_ID, [name("mon")], behavior="backdoor", action="monitor"),
    ], serial=serial)


def settings(client_ip="full", interval=1, log_path="events.jsonl"):
    return {
        "feed": "feed.json",
        "sinkhole": {"a": SINKHOLE_A, "aaaa": SINKHOLE_AAAA},
        "log": {"path": log_path, "client-ip": client_ip},
        "stats": {"path": "stats.jsonl", "interval": interval},
        "metrics": {"path": "dnsfilter.prom"},
        "optout": {"networks": [OPTED_OUT + "/32"]},
    }


# ---------------------------------------------------------------------------
# Reading the files


def read_lines(path):
    """The complete (newline-terminated) lines of a file, parsed as JSON
    with the key order kept; [] when the file is not there."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    text = data.decode("utf-8")
    complete = text[:text.rfind("\n") + 1] if "\n" in text else ""
    return [json.loads(line, object_pairs_hook=OrderedDict)
            for line in complete.splitlines()]


def read_metrics(path):
    """The Prometheus text file as {sample name with labels: value}."""
    values = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            sample, value = line.rsplit(None, 1)
            values[sample] = float(value)
    return values


def sum_lines(lines):
    """The counter lines summed: SUMMED fields and by_id."""
    total = {key: 0 for key in SUMMED}
    by_id = Counter()
    for line in lines:
        for key in SUMMED:
            total[key] += line[key]
        by_id.update(line["by_id"])
    total["by_id"] = dict(by_id)
    return total


def parse_ts(text):
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=dt.timezone.utc).timestamp()


class Stack:
    """NSD + Unbound with dnsfilter writing into the work dir."""

    def __init__(self, test, label, settings_document, feed_document=None,
                 before_start=None):
        self.workdir = harness.WorkDir(label)
        test.addCleanup(self.workdir.cleanup)
        if before_start:
            before_start(self.workdir)
        self.nsd = harness.Nsd(self.workdir, ZONES)
        test.addCleanup(self.nsd.stop)
        self.nsd.start()
        self.unbound = harness.Unbound(
            self.workdir, {ZONE: self.nsd.port}, settings=settings_document,
            feed=feed_document if feed_document is not None else the_feed())
        test.addCleanup(self.unbound.stop)
        self.unbound.start()
        self.events_path = self.workdir.file("events.jsonl")
        self.stats_path = self.workdir.file("stats.jsonl")
        self.metrics_path = self.workdir.file("dnsfilter.prom")

    def ask(self, label, qtype="A", source=None, timeout=harness.QUERY_TIMEOUT):
        options = ("-b", source) if source else ()
        qname = label if label.endswith(".") else name(label)
        return self.unbound.query(qname, qtype, options=options, timeout=timeout)

    def counter_lines(self):
        return read_lines(self.stats_path)

    def events(self, path=None):
        return read_lines(path or self.events_path)

    def wait_counter_lines(self, count, timeout=LINE_WAIT):
        """The counter lines once there are at least count (bounded)."""
        harness.wait_until(lambda: len(self.counter_lines()) >= count, timeout,
                           interval=0.05)
        lines = self.counter_lines()
        if len(lines) < count:
            raise AssertionError("%d counter lines after %ss, want %d:\n%s\n%s" % (
                len(lines), timeout, count, lines, self.log_tail()))
        return lines

    def baseline(self):
        """Number of counter lines that may hold queries sent before now
        (the harness's start-up probes): the count once a line was written
        after this call began. Lines after it hold only later queries."""
        now = len(self.counter_lines())
        return len(self.wait_counter_lines(now + 1))

    def settle(self, count_after=2):
        """Wait for count_after more counter lines (they cover every query
        answered before this call); return all lines."""
        now = len(self.counter_lines())
        return self.wait_counter_lines(now + count_after)

    def wait_events(self, count, path=None, timeout=3.0):
        harness.wait_until(lambda: len(self.events(path)) >= count, timeout,
                           interval=0.05)
        return self.events(path)

    def stop_unbound(self):
        """unbound-control stop, and wait (bounded) for the exit."""
        result = self.unbound.control("stop")
        if result.returncode != 0:
            raise AssertionError("unbound-control stop failed:\n" + result.stdout)
        code = self.unbound.wait_exit(harness.START_TIMEOUT)
        if code is None:
            raise AssertionError("Unbound still running %ss after stop:\n%s" % (
                harness.START_TIMEOUT, self.log_tail()))
        return code

    def reload_counting(self, keep_cache=True):
        """unbound-control reload_keep_cache, then wait (bounded) for the
        module's next load without querying, then probe with queries until
        one is answered. Return the number of probe queries sent (each is
        a client query the module counts)."""
        before = len(self.unbound.loads())
        result = self.unbound.control("reload_keep_cache" if keep_cache else "reload")
        if result.returncode != 0:
            raise AssertionError("reload failed:\n" + result.stdout)
        if not harness.wait_until(lambda: len(self.unbound.loads()) > before,
                                  harness.START_TIMEOUT):
            raise AssertionError("no module load after reload:\n" + self.log_tail())
        probes = 0
        deadline = time.monotonic() + harness.START_TIMEOUT
        while True:
            probes += 1
            try:
                # Unbound keeps its sockets over a reload: a query sent now
                # is answered once the workers run again.
                self.ask(ZONE + ".", "SOA", timeout=3)
                return probes
            except harness.QueryError:
                if time.monotonic() > deadline:
                    raise AssertionError("no answer after reload:\n" + self.log_tail())

    def log_tail(self, lines=30):
        return "\n".join(self.unbound.output().splitlines()[-lines:])


class ReportingAssertions:

    def assertSinkhole(self, answer, qtype="A"):
        expected = SINKHOLE_A if qtype == "A" else SINKHOLE_AAAA
        self.assertEqual(answer.rdata(qtype), [expected], answer)

    def assertReal(self, answer, label):
        self.assertEqual(answer.rcode, "NOERROR", answer)
        self.assertEqual(answer.rdata("A"), [REAL[label]], answer)

    def assertEvent(self, event, qname, qtype, entry_id, action, client=FILTERED,
                    via="qname", window=None):
        self.assertEqual(list(event.keys()), EVENT_KEYS, event)
        self.assertRegex(event["ts"], TS_RE)
        if window:
            ts = parse_ts(event["ts"])
            self.assertTrue(window[0] - 1 <= ts <= window[1] + 1,
                            "event ts %s outside the test's window %s" % (event, window))
        self.assertEqual(
            (event["client"], event["qname"], event["qtype"], event["id"],
             event["action"], event["via"]),
            (client, qname, qtype, entry_id, action, via), event)

    def assertCounterLines(self, lines, serial=SERIAL):
        for line in lines:
            self.assertEqual(list(line.keys()), COUNTER_KEYS, line)
            self.assertRegex(line["ts"], COUNTER_TS_RE)
            self.assertEqual(line["mode"], "enforce", line)
            for key in SUMMED:
                self.assertIsInstance(line[key], int, line)
                self.assertGreaterEqual(line[key], 0, line)
            for count in line["by_id"].values():
                self.assertGreater(count, 0, line)
            self.assertEqual(list(line["by_id"].keys()), sorted(line["by_id"].keys()),
                             line)
            if serial is not None:
                self.assertEqual(line["feed_serial"], serial, line)


# ---------------------------------------------------------------------------
# 1. A known mix of queries


class KnownMixTest(ReportingAssertions, unittest.TestCase):

    def test_known_mix_counts_events_and_metrics(self):
        stack = Stack(self, "rep-mix", settings())
        base = stack.baseline()
        events_before = len(stack.events())
        self.assertEqual(events_before, 0, stack.events())

        t0 = time.time()
        # Blocked: A x2, AAAA x1 from 127.0.0.1.
        self.assertSinkhole(stack.ask("c2"))
        self.assertSinkhole(stack.ask("c2"))
        self.assertSinkhole(stack.ask("c2", "AAAA"), "AAAA")
        # Monitored x2: the real answer, not cached, so both reach the module.
        self.assertReal(stack.ask("mon"), "mon")
        self.assertReal(stack.ask("mon"), "mon")
        # Opted out x1: the real answer, not logged, counted as optout only.
        self.assertReal(stack.ask("c2", source=OPTED_OUT), "c2")
        # Not listed x1 (uncached), then the same again (a cache hit).
        self.assertReal(stack.ask("www"), "www")
        self.assertReal(stack.ask("www"), "www")
        # Local data.
        local = stack.ask("localhost.")
        self.assertEqual(local.rdata("A"), ["127.0.0.1"], local)
        t1 = time.time()
        sent_filtered = 3 + 2 + 2 + 1

        lines = stack.settle(2)
        mine = lines[base:]
        self.assertCounterLines(mine)
        for line in mine:
            self.assertIn(line["interval"], (1,), line)
        total = sum_lines(mine)
        self.assertEqual(total, {
            "queries": sent_filtered, "optout": 1, "blocked": 3, "monitored": 2,
            "dropped_events": 0, "feed_failures": 0,
            "by_id": {BLOCK_ID: 3, MONITOR_ID: 2},
        }, "counter lines after the baseline (%d):\n%s" % (base, "\n".join(
            json.dumps(line) for line in lines)))

        events = stack.wait_events(5)
        self.assertEqual(len(events), 5, events)
        expected = [
            (name("c2"), "A", BLOCK_ID, "block"),
            (name("c2"), "A", BLOCK_ID, "block"),
            (name("c2"), "AAAA", BLOCK_ID, "block"),
            (name("mon"), "A", MONITOR_ID, "monitor"),
            (name("mon"), "A", MONITOR_ID, "monitor"),
        ]
        for event, (qname, qtype, entry_id, action) in zip(events, expected):
            self.assertEvent(event, qname, qtype, entry_id, action, window=(t0, t1))
        self.assertNotIn(OPTED_OUT, [event["client"] for event in events])
        stamps = [parse_ts(event["ts"]) for event in events]
        self.assertEqual(stamps, sorted(stamps), events)

        # Metrics: cumulative since the start, equal to the sum of every
        # counter line once nothing changes (read until both agree: the
        # writer appends the line and rewrites the file in the same round).
        def consistent():
            all_lines = stack.counter_lines()
            try:
                metrics = read_metrics(stack.metrics_path)
            except (OSError, ValueError):
                return (False, None, None)
            whole = sum_lines(all_lines)
            wanted = {metric: float(whole[field]) for metric, field in METRICS.items()}
            got = {metric: metrics.get(metric) for metric in METRICS}
            ids = {'dnsfilter_matches_total{id="%s"}' % i: float(n)
                   for i, n in whole["by_id"].items()}
            got_ids = {k: v for k, v in metrics.items()
                       if k.startswith("dnsfilter_matches_total")}
            ok = (wanted == got and ids == got_ids
                  and metrics.get("dnsfilter_feed_serial") == float(SERIAL))
            return (ok, metrics, whole)

        harness.wait_until(lambda: consistent()[0], 3.0)
        ok, metrics, whole = consistent()
        self.assertTrue(ok, "metrics %s\nvs the sum of all counter lines %s" % (
            metrics, whole))
        self.assertGreaterEqual(metrics["dnsfilter_queries_total"], sent_filtered)
        self.assertEqual(metrics["dnsfilter_optout_queries_total"], 1)
        self.assertEqual(metrics["dnsfilter_blocked_total"], 3)
        self.assertEqual(metrics["dnsfilter_monitored_total"], 2)
        self.assertEqual(metrics['dnsfilter_matches_total{id="%s"}' % BLOCK_ID], 3)
        self.assertEqual(metrics['dnsfilter_matches_total{id="%s"}' % MONITOR_ID], 2)
        self.assertEqual(metrics["dnsfilter_dropped_events_total"], 0)
        self.assertEqual(metrics["dnsfilter_feed_failures_total"], 0)
        self.assertEqual(metrics["dnsfilter_feed_serial"], SERIAL)
        # Only regular files left beside it (the temporary file is renamed).
        leftovers = [f for f in os.listdir(stack.workdir.path)
                     if f.startswith("dnsfilter.prom") and f != "dnsfilter.prom"]
        self.assertEqual(leftovers, [])


# ---------------------------------------------------------------------------
# 2. log.client-ip


class ClientIpTest(ReportingAssertions, unittest.TestCase):

    def test_truncate_then_none(self):
        stack = Stack(self, "rep-clientip", settings(client_ip="truncate"))
        self.assertSinkhole(stack.ask("c2"))
        self.assertSinkhole(stack.ask("c2", "AAAA"), "AAAA")
        events = stack.wait_events(2)
        self.assertEqual(len(events), 2, events)
        self.assertEvent(events[0], name("c2"), "A", BLOCK_ID, "block", client="127.0.0.0")
        self.assertEvent(events[1], name("c2"), "AAAA", BLOCK_ID, "block",
                         client="127.0.0.0")

        stack.workdir.write("dnsfilter.json", settings(client_ip="none"))
        stack.unbound.reload()
        self.assertSinkhole(stack.ask("c2"))
        self.assertReal(stack.ask("mon"), "mon")
        events = stack.wait_events(4)
        self.assertEqual(len(events), 4, events)
        self.assertEvent(events[2], name("c2"), "A", BLOCK_ID, "block", client=None)
        self.assertEvent(events[3], name("mon"), "A", MONITOR_ID, "monitor", client=None)
        # null, not a missing key or the string "null"
        with open(stack.events_path, encoding="utf-8") as f:
            raw = f.read().splitlines()
        self.assertIn('"client":null', raw[2])

        stack.workdir.write("dnsfilter.json", settings(client_ip="full"))
        stack.unbound.reload()
        self.assertSinkhole(stack.ask("c2"))
        events = stack.wait_events(5)
        self.assertEqual(len(events), 5, events)
        self.assertEvent(events[4], name("c2"), "A", BLOCK_ID, "block", client=FILTERED)


# ---------------------------------------------------------------------------
# 3. The last line at stop (and at reload)


class LastLineTest(ReportingAssertions, unittest.TestCase):

    def test_stop_and_reload_write_the_last_line(self):
        stack = Stack(self, "rep-stop", settings(interval=3600))
        self.assertEqual(stack.counter_lines(), [])
        self.assertSinkhole(stack.ask("c2"))
        self.assertSinkhole(stack.ask("c2"))

        # reload_keep_cache: the old module's reporter writes its last line.
        probes = stack.reload_counting()
        lines = stack.wait_counter_lines(1)
        self.assertEqual(len(lines), 1, lines)
        self.assertCounterLines(lines)
        self.assertEqual(lines[0]["blocked"], 2, lines)
        self.assertEqual(lines[0]["by_id"], {BLOCK_ID: 2}, lines)
        self.assertLess(lines[0]["interval"], 3600, lines)
        self.assertGreaterEqual(lines[0]["queries"], 3, lines)  # 2 + start probe(s)

        self.assertSinkhole(stack.ask("c2"))
        self.assertSinkhole(stack.ask("c2", "AAAA"), "AAAA")
        self.assertReal(stack.ask("www"), "www")
        self.assertEqual(len(stack.counter_lines()), 1)
        stack.stop_unbound()
        lines = stack.counter_lines()
        self.assertEqual(len(lines), 2, lines)
        self.assertCounterLines(lines)
        last = lines[1]
        self.assertEqual((last["queries"], last["optout"], last["blocked"],
                          last["monitored"], last["by_id"], last["dropped_events"]),
                         (probes + 3, 0, 2, 0, {BLOCK_ID: 2}, 0), lines)
        self.assertLess(last["interval"], 3600, lines)
        events = stack.events()
        self.assertEqual(len(events), 4, events)
        # The metrics written at stop: the second reporter's totals.
        metrics = read_metrics(stack.metrics_path)
        self.assertEqual(metrics["dnsfilter_blocked_total"], 2, metrics)
        self.assertEqual(metrics["dnsfilter_queries_total"], probes + 3, metrics)


# ---------------------------------------------------------------------------
# 4. Rotation


class RotationTest(ReportingAssertions, unittest.TestCase):

    def test_event_and_counter_logs_reopened_after_rename(self):
        stack = Stack(self, "rep-rotate", settings())
        self.assertSinkhole(stack.ask("c2"))
        self.assertSinkhole(stack.ask("c2"))
        self.assertEqual(len(stack.wait_events(2)), 2)
        stack.wait_counter_lines(1)

        rotated_events = stack.workdir.file("events.jsonl.1")
        rotated_stats = stack.workdir.file("stats.jsonl.1")
        os.rename(stack.events_path, rotated_events)
        os.rename(stack.stats_path, rotated_stats)

        self.assertSinkhole(stack.ask("c2"))
        self.assertSinkhole(stack.ask("c2", "AAAA"), "AAAA")
        self.assertReal(stack.ask("mon"), "mon")
        new = stack.wait_events(3)
        self.assertEqual([(e["qname"], e["qtype"], e["action"]) for e in new],
                         [(name("c2"), "A", "block"), (name("c2"), "AAAA", "block"),
                          (name("mon"), "A", "monitor")], new)
        # The old event log keeps the two lines written before the rename.
        old_events = read_lines(rotated_events)
        self.assertEqual(len(old_events), 2, old_events)
        # The new counter log appears within a round or two.
        self.assertTrue(harness.wait_until(
            lambda: os.path.exists(stack.stats_path), 3.0), "no new stats.jsonl")
        old_stats = read_lines(rotated_stats)

        # More events, more counter lines: only in the new files.
        self.assertSinkhole(stack.ask("c2"))
        new = stack.wait_events(4)
        self.assertEqual(len(new), 4, new)
        stack.settle(2)
        stack.stop_unbound()
        self.assertEqual(read_lines(rotated_events), old_events)
        self.assertEqual(read_lines(rotated_stats), old_stats)
        self.assertEqual(len(stack.events()), 4)
        # Nothing lost between the two counter logs.
        whole = sum_lines(old_stats + stack.counter_lines())
        self.assertEqual((whole["blocked"], whole["monitored"], whole["by_id"],
                          whole["dropped_events"]),
                         (5, 1, {BLOCK_ID: 5, MONITOR_ID: 1}, 0), whole)


# ---------------------------------------------------------------------------
# 5. Dropped events: a FIFO nobody (or a slow reader) reads


class DropTest(ReportingAssertions, unittest.TestCase):

    RATE = 5000
    SECONDS = 3

    def test_fifo_without_reader_then_slow_reader(self):
        fifo = {}

        def make_fifo(workdir):
            fifo["path"] = workdir.file("events.fifo")
            os.mkfifo(fifo["path"])

        stack = Stack(self, "rep-drop", settings(log_path="events.fifo"),
                      before_start=make_fifo)
        path = fifo["path"]

        # (a) Nobody reads: every event is dropped, and counted.
        base = stack.baseline()
        for _ in range(5):
            self.assertSinkhole(stack.ask("c2"))
        lines = stack.settle(2)
        first = sum_lines(lines[base:])
        self.assertEqual((first["blocked"], first["dropped_events"], first["by_id"]),
                         (5, 5, {BLOCK_ID: 5}), lines)

        # (b) A reader that reads one line, then sleeps through a burst.
        reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self.addCleanup(os.close, reader)
        data = bytearray()
        reader_phase = 0
        deadline = time.monotonic() + 5
        while b"\n" not in data and time.monotonic() < deadline:
            # The writer opens the FIFO again each round while it had no
            # reader; an event may be dropped before it does: ask again.
            self.assertSinkhole(stack.ask("c2"))
            reader_phase += 1
            wait = time.monotonic() + 0.5
            while b"\n" not in data and time.monotonic() < wait:
                if select.select([reader], [], [], 0.1)[0]:
                    data += os.read(reader, 65536)
        self.assertIn(b"\n", bytes(data), "the writer never wrote to the FIFO")

        query_file = stack.workdir.write("queries.txt", "%s A\n" % name("c2"))
        dnsperf = subprocess.Popen(
            [harness.tool("dnsperf"), "-s", harness.LOOPBACK,
             "-p", str(stack.unbound.port), "-d", query_file, "-c", "2",
             "-Q", str(self.RATE), "-l", str(self.SECONDS), "-t", "2"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            universal_newlines=True)
        try:
            # Unbound keeps answering during the burst (a real resolution).
            time.sleep(1.0)
            started = time.monotonic()
            during = stack.ask("www2")
            during_took = time.monotonic() - started
            output, _ = dnsperf.communicate(timeout=self.SECONDS + 15)
        finally:
            if dnsperf.poll() is None:
                dnsperf.kill()
                dnsperf.wait(5)
        self.assertReal(during, "www2")
        self.assertLess(during_took, 1.0, "answer during the burst took %.2fs" % during_took)
        started = time.monotonic()
        after = stack.ask("www3")
        self.assertReal(after, "www3")
        self.assertLess(time.monotonic() - started, 1.0)

        sent = int(re.search(r"Queries sent:\s+(\d+)", output).group(1))
        completed = int(re.search(r"Queries completed:\s+(\d+)", output).group(1))
        lost = int(re.search(r"Queries lost:\s+(\d+)", output).group(1))
        self.assertGreaterEqual(completed, 4000, output)
        self.assertIn("NOERROR %d" % completed, " ".join(output.split()), output)

        # Read what is in the pipe, stop Unbound (its last round), read to
        # the end (EOF once the writer closed the FIFO).
        def drain(until_eof, timeout):
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                if not select.select([reader], [], [], 0.1)[0]:
                    if not until_eof:
                        return True
                    continue
                chunk = os.read(reader, 65536)
                if not chunk:
                    return True
                data.extend(chunk)
            return False

        drain(False, 5)
        stop_thread = threading.Thread(target=stack.stop_unbound)
        stop_thread.start()
        eof = drain(True, harness.START_TIMEOUT)
        stop_thread.join(harness.START_TIMEOUT + harness.STOP_TIMEOUT)
        self.assertTrue(eof, "no EOF on the FIFO after stop")
        self.assertFalse(stop_thread.is_alive())

        text = data.decode("utf-8")
        self.assertTrue(text.endswith("\n"), "a half line in the FIFO")
        events = [json.loads(line, object_pairs_hook=OrderedDict)
                  for line in text.splitlines()]
        for event in events:
            self.assertEvent(event, name("c2"), "A", BLOCK_ID, "block")

        lines = stack.counter_lines()
        self.assertCounterLines(lines)
        whole = sum_lines(lines[base:])
        # Blocked counts every query answered: the 5, the reader phase's,
        # the burst.
        burst_blocked = whole["blocked"] - 5 - reader_phase
        after_burst = dict(whole, burst_blocked=burst_blocked, sent=sent,
                           completed=completed, lost=lost, events_read=len(events))
        if lost == 0:
            self.assertEqual(burst_blocked, completed, (output, after_burst))
        else:
            self.assertTrue(completed <= burst_blocked <= sent, (output, after_burst))
        self.assertEqual(whole["monitored"], 0)
        # Events were dropped, and every blocked query is either in the
        # event log or counted as dropped.
        self.assertGreater(after_burst["dropped_events"], 0, after_burst)
        self.assertEqual(len(events) + whole["dropped_events"], whole["blocked"],
                         "events read %d, counter lines %s" % (len(events), whole))
        self.assertLessEqual(len(events), whole["by_id"].get(BLOCK_ID, 0))
        self.assertLessEqual(whole["by_id"].get(BLOCK_ID, 0), whole["blocked"])


# ---------------------------------------------------------------------------
# 6. A reload keeps the counts


class ReloadTest(ReportingAssertions, unittest.TestCase):

    def test_counts_across_reload_keep_cache(self):
        stack = Stack(self, "rep-reload", settings())
        base = stack.baseline()
        self.assertSinkhole(stack.ask("c2"))
        self.assertSinkhole(stack.ask("c2"))
        self.assertReal(stack.ask("mon"), "mon")
        self.assertReal(stack.ask("www"), "www")
        self.assertReal(stack.ask("c2", source=OPTED_OUT), "c2")

        stack.unbound.write_feed(the_feed(serial=SERIAL + 1))
        probes = stack.reload_counting()

        self.assertSinkhole(stack.ask("c2"))
        self.assertSinkhole(stack.ask("c2", "AAAA"), "AAAA")
        self.assertSinkhole(stack.ask("c2"))
        self.assertReal(stack.ask("mon"), "mon")
        self.assertReal(stack.ask("www"), "www")  # kept in the cache
        self.assertReal(stack.ask("www4"), "www4")
        self.assertReal(stack.ask("c2", source=OPTED_OUT), "c2")
        lines = stack.settle(2)
        self.assertCounterLines(lines, serial=None)
        serials = [line["feed_serial"] for line in lines[base:]]
        self.assertEqual(serials, sorted(serials), lines)
        self.assertEqual(set(serials), {SERIAL, SERIAL + 1}, lines)

        total = sum_lines(lines[base:])
        self.assertEqual(total, {
            "queries": 4 + probes + 6, "optout": 2, "blocked": 5, "monitored": 2,
            "dropped_events": 0, "feed_failures": 0,
            "by_id": {BLOCK_ID: 5, MONITOR_ID: 2},
        }, "probes %d, lines:\n%s" % (probes, "\n".join(json.dumps(l) for l in lines)))
        self.assertEqual(len(stack.events()), 7)


if __name__ == "__main__":
    unittest.main()
