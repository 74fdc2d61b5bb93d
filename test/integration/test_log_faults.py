"""The event log, the counter log and the metrics file when the disk fills
up or their directory is not there: Unbound keeps starting and answering,
only whole JSON lines reach the files, and what could not be written is
counted (dropped_events) or caught up (a counter line carries the counts
of the lines that could not be written).

The full disk is a small tmpfs, so these tests run as root (as the whole
integration suite does) and are skipped otherwise.
"""

import json
import os
import subprocess
import time
import unittest

import harness
from harness import entry, feed

ZONE = "logfault.test"
ZONES = {ZONE: harness.zone_text(ZONE, ["www A 192.0.2.80", "c2 A 198.51.100.1"])}
BLOCK_ID = "LF-0001"
FEED = feed([entry(BLOCK_ID, ["c2." + ZONE])])
SINKHOLE_A = "192.0.2.1"
LINE_WAIT = 5.0


def settings(folder, interval=1):
    return {
        "feed": "feed.json",
        "sinkhole": {"a": SINKHOLE_A},
        "watch-interval": 0,
        "log": {"path": os.path.join(folder, "events.jsonl")},
        "stats": {"path": os.path.join(folder, "stats.jsonl"), "interval": interval},
        "metrics": {"path": os.path.join(folder, "dnsfilter.prom")},
    }


def whole_json_lines(path):
    """The lines of a file, each parsed; fails unless it holds whole lines
    of JSON only (empty, or ending in a newline)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    if data and not data.endswith(b"\n"):
        raise AssertionError("%s ends inside a line: ...%r" % (path, data[-120:]))
    lines = []
    for number, line in enumerate(data.decode("utf-8").splitlines(), 1):
        try:
            lines.append(json.loads(line))
        except ValueError as e:
            raise AssertionError("%s:%d is not JSON (%s): %r" % (path, number, e, line))
    return lines


def metric(path, name):
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith(name + " "):
                return int(line.split()[1])
    return None


class LogFaultTest(unittest.TestCase):

    def stack(self, label, document):
        self.nsd, self.unbound = harness.start_stack(self.addCleanup, label, ZONES, document,
                                                     FEED)
        return self.unbound

    def block(self, count):
        """count blocked queries, each answered with the sinkhole."""
        for _ in range(count):
            answer = self.unbound.query("c2." + ZONE)
            self.assertEqual(answer.rdata("A"), [SINKHOLE_A], answer.text)

    def stop_and_sum(self, folder):
        """Stop Unbound (its last counter line) and sum the counter log."""
        self.unbound.stop()
        totals = {"blocked": 0, "dropped_events": 0, "by_id": 0}
        for line in whole_json_lines(os.path.join(folder, "stats.jsonl")):
            totals["blocked"] += line["blocked"]
            totals["dropped_events"] += line["dropped_events"]
            totals["by_id"] += line["by_id"].get(BLOCK_ID, 0)
        return totals

    def dnsfilter_log(self):
        return "\n".join(self.unbound.log_lines(r"dnsfilter: "))

    def test_directory_missing_at_start_is_logged_and_retried(self):
        unbound = self.stack("logmissing", settings("later"))
        folder = unbound.workdir.file("later")
        # It started, filters, and said what it cannot write, once each.
        self.block(3)
        log = self.dnsfilter_log()
        for key, name, what in (("log.path", "events.jsonl", "cannot open"),
                                ("stats.path", "stats.jsonl", "cannot open"),
                                ("metrics.path", "dnsfilter.prom", "cannot write")):
            pattern = r"%s: %s: %s: No such file or directory; trying again" % (
                key, os.path.join(folder, name), what)
            self.assertEqual(len(unbound.log_lines(pattern)), 1, log)
        time.sleep(1.5)  # a counter line and the metrics were due
        self.assertFalse(os.path.exists(folder))
        # The directory comes (a mount, an operator): the files follow.
        os.mkdir(folder)
        self.block(2)
        self.assertTrue(harness.wait_until(
            lambda: len(whole_json_lines(os.path.join(folder, "events.jsonl"))) == 2, 3),
            self.dnsfilter_log())
        self.assertTrue(harness.wait_until(
            lambda: os.path.exists(os.path.join(folder, "dnsfilter.prom")), LINE_WAIT))
        totals = self.stop_and_sum(folder)
        self.assertEqual(totals["blocked"], 5)
        self.assertEqual(totals["by_id"], 5)
        self.assertEqual(totals["dropped_events"], 3)
        self.assertEqual(metric(os.path.join(folder, "dnsfilter.prom"),
                                "dnsfilter_blocked_total"), 5)

    def test_full_disk_leaves_whole_lines_and_loses_no_count(self):
        if os.geteuid() != 0:
            self.skipTest("mounting a tmpfs needs root")
        workdir = harness.WorkDir("logfull-fs")
        self.addCleanup(workdir.cleanup)
        folder = workdir.file("small")
        os.mkdir(folder)
        mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs",
                                folder], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               universal_newlines=True)
        if mount.returncode != 0:
            self.skipTest("cannot mount a tmpfs: " + mount.stdout)
        self.addCleanup(subprocess.run, ["umount", "-l", folder])
        unbound = self.stack("logfull", settings(folder))
        sent = 0
        self.block(3)
        sent += 3
        events = os.path.join(folder, "events.jsonl")
        self.assertTrue(harness.wait_until(lambda: len(whole_json_lines(events)) == 3, 3))
        # Fill the file system: the logs can only grow into what is left
        # of their last page, so the next writes stop inside a line.
        filler = os.path.join(folder, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            while os.write(fd, b"x" * 512) > 0:
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        self.block(60)
        sent += 60
        time.sleep(2.5)  # counter lines and the metrics are due meanwhile
        self.assertTrue(unbound.process.running())
        log = self.dnsfilter_log()
        self.assertRegex(log, r"log\.path: .*events\.jsonl: cannot write: No space left on device")
        full_events = whole_json_lines(events)
        self.assertLess(len(full_events), 63, "the disk was not full")
        # Room again: writing resumes, whole lines, and the counts catch up.
        os.unlink(filler)
        self.block(4)
        sent += 4
        self.assertTrue(harness.wait_until(
            lambda: len(whole_json_lines(events)) >= len(full_events) + 4, 3), log)
        time.sleep(1.5)
        written = len(whole_json_lines(events))
        totals = self.stop_and_sum(folder)
        self.assertEqual(totals["blocked"], sent)
        self.assertEqual(totals["by_id"], sent)
        self.assertEqual(totals["dropped_events"], sent - written)
        self.assertEqual(metric(os.path.join(folder, "dnsfilter.prom"),
                                "dnsfilter_blocked_total"), sent)
        self.assertEqual(whole_json_lines(events)[-1]["id"], BLOCK_ID)


if __name__ == "__main__":
    unittest.main()
