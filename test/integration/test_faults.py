"""Faults that must not take DNS down (docs/faults.md): at a reload or a
restart, a feed or opt-out file that cannot be used - truncated, invalid,
over the settings' limits, missing, a FIFO, a bad opt-out line - is
replaced by the last-good copy the module kept of what it last loaded;
Unbound keeps answering, the log says why at error level, and the counter
log and the metrics say the data in force is stale and since when. Only
with no copy at all does the start fail. Plus: an entry that starts in
year 9999 (the watcher's wake-up arithmetic), and stop with a FIFO as the
feed.

Each test has its own NSD + Unbound; the state directory is the feed's
directory (the default), the work dir.
"""

import json
import os
import re
import time
import unittest

import harness
from harness import entry, feed

ZONE = "fault.test"
RECORDS = [
    "www A 192.0.2.80",
    "c2 A 198.51.100.1",
    "other A 198.51.100.2",
]
ZONES = {ZONE: harness.zone_text(ZONE, RECORDS)}
SINKHOLE_A = "192.0.2.1"
C2 = "c2." + ZONE
OTHER = "other." + ZONE
GOOD = feed([entry("F-0001", [C2])], serial=7)
STATS_INTERVAL = 1


def settings(**more):
    value = {"feed": "feed.json", "sinkhole": {"a": SINKHOLE_A}, "watch-interval": 1,
             "stats": {"path": "stats.jsonl", "interval": STATS_INTERVAL},
             "metrics": {"path": "dnsfilter.prom"}}
    value.update(more)
    return value


class LastGoodTest(unittest.TestCase):

    def start(self, settings_document=None, optout=None):
        self.workdir = harness.WorkDir("faults")
        self.addCleanup(self.workdir.cleanup)
        if optout is not None:
            self.workdir.write("optout.txt", optout)
        self.nsd = harness.Nsd(self.workdir, ZONES)
        self.addCleanup(self.nsd.stop)
        self.nsd.start()
        self.unbound = harness.Unbound(self.workdir, {ZONE: self.nsd.port},
                                       settings=settings_document or settings(), feed=GOOD)
        self.addCleanup(self.unbound.stop)
        self.unbound.start()
        self.copy = self.workdir.file("feed.json.last-good")

    # -- helpers ----------------------------------------------------------

    def assertSinkholed(self, name=C2):
        answer = self.unbound.query(name, "A")
        self.assertEqual(answer.rdata("A"), [SINKHOLE_A], "%s\n--- log ---\n%s" % (
            answer.text, self.unbound.output()[-3000:]))

    def assertReal(self, name, address):
        answer = self.unbound.query(name, "A")
        self.assertEqual(answer.rdata("A"), [address], answer.text)

    def restart(self):
        """Stop and start the same Unbound (the same work dir and copies)."""
        self.unbound.stop()
        self.unbound.start()

    def reload_survives(self):
        """unbound-control reload: Unbound must come back with the module
        loaded (a failed module init makes Unbound exit)."""
        mark = self.unbound.log_size()
        self.unbound.reload(keep_cache=False)
        self.assertTrue(self.unbound.process.running(), self.unbound.output()[-3000:])
        return self.unbound.log_since(mark)

    def last_counter_line(self, after):
        """The first counter line written after the monotonic time `after`."""
        path = self.workdir.file("stats.jsonl")
        found = []

        def newer():
            try:
                with open(path) as f:
                    lines = [json.loads(line) for line in f if line.strip()]
            except OSError:
                return False
            found[:] = lines[-1:]
            return time.monotonic() > after + 2 * STATS_INTERVAL + 0.5
        harness.wait_until(newer, 15)
        self.assertTrue(found, "no counter line in %s" % path)
        return found[-1]

    def metrics(self):
        with open(self.workdir.file("dnsfilter.prom")) as f:
            text = f.read()
        return {m.group(1): float(m.group(2))
                for m in re.finditer(r"^(dnsfilter_\w+) (\S+)$", text, re.M)}

    def wait_metric(self, name, value):
        harness.wait_until(lambda: self.metrics().get(name) == value, 15)
        self.assertEqual(self.metrics().get(name), value, self.metrics())

    def break_feed(self, content, mtime=None):
        path = self.unbound.write_feed(content)
        if mtime is not None:
            os.utime(path, (mtime, mtime))
        return path

    # -- tests ------------------------------------------------------------

    def test_copy_is_kept_and_equals_the_feed(self):
        self.start()
        with open(self.copy, "rb") as f, open(self.workdir.file("feed.json"), "rb") as g:
            self.assertEqual(f.read(), g.read())
        self.assertEqual(os.stat(self.copy).st_mode & 0o777, 0o600)
        self.assertEqual(self.metrics().get("dnsfilter_feed_stale"), 0)

    def test_truncated_feed_at_reload_serves_the_copy(self):
        self.start()
        broken_at = 1700000000  # the truncated file's mtime: stale since then
        self.break_feed(json.dumps(GOOD)[:40], mtime=broken_at)
        log = self.reload_survives()
        self.assertRegex(log, r"error: dnsfilter: .*feed\.json: .*(?i:json)")
        self.assertRegex(log, r"error: dnsfilter: .*feed\.json: feed rejected \(1 error\)")
        self.assertRegex(log, r"error: dnsfilter: .*feed\.json: serving the last-good feed "
                              r".*feed\.json\.last-good \(saved [0-9T:-]+Z\): STALE")
        self.assertSinkholed()
        self.assertReal(OTHER, "198.51.100.2")
        line = self.last_counter_line(time.monotonic())
        self.assertEqual(line["feed_stale_since"], "2023-11-14T22:13:20.000Z", line)
        self.assertEqual(line["feed_serial"], 7, line)
        self.wait_metric("dnsfilter_feed_stale", 1)
        self.assertEqual(self.metrics()["dnsfilter_feed_stale_since_seconds"], broken_at)
        # The copy still holds the good feed, not the broken one.
        with open(self.copy) as f:
            self.assertEqual(json.load(f)["serial"], 7)
        # A good feed again (picked up by the watcher): fresh.
        self.unbound.write_feed(feed([entry("F-0002", [OTHER])], serial=8))
        self.wait_metric("dnsfilter_feed_stale", 0)
        self.assertSinkholed(OTHER)
        line = self.last_counter_line(time.monotonic())
        self.assertIsNone(line["feed_stale_since"], line)
        with open(self.copy) as f:
            self.assertEqual(json.load(f)["serial"], 8)

    def test_invalid_feed_at_restart_serves_the_copy(self):
        self.start()
        self.break_feed(feed([entry("F-0001", ["bad name!." + ZONE])]))
        self.restart()
        self.assertSinkholed()
        self.assertRegex(self.unbound.output(), r"serving the last-good feed")

    def test_missing_feed_at_restart_serves_the_copy(self):
        self.start()
        os.unlink(self.workdir.file("feed.json"))
        self.restart()
        self.assertSinkholed()
        self.assertRegex(self.unbound.output(),
                         r"error: dnsfilter: .*feed\.json: cannot open: No such file")

    def test_feed_over_the_settings_limits_serves_the_copy(self):
        self.start(settings(limits={"feed-entries": 1}))
        self.break_feed(feed([entry("F-0001", [C2]), entry("F-0002", [OTHER])], serial=9))
        log = self.reload_survives()
        self.assertRegex(log, r"entries, more than the limit of 1")
        self.assertSinkholed()
        self.assertReal(OTHER, "198.51.100.2")

    def test_feed_replaced_by_a_fifo_serves_the_copy_and_stop_completes(self):
        self.start()
        path = self.workdir.file("feed.json")
        os.unlink(path)
        os.mkfifo(path)
        log = self.reload_survives()
        self.assertRegex(log, r"not a regular file \(a FIFO\)")
        self.assertSinkholed()
        started = time.monotonic()
        code = self.unbound.stop()
        self.assertEqual(code, 0, "Unbound did not stop cleanly (%.1f s)" % (
            time.monotonic() - started))

    def test_no_copy_and_a_bad_feed_still_refuses_start(self):
        self.start()
        os.unlink(self.copy)
        self.break_feed("{")
        self.unbound.stop()
        self.unbound.launch()
        code = self.unbound.wait_exit(harness.START_TIMEOUT)
        self.assertIsNotNone(code, "Unbound started without a usable feed")
        self.assertRegex(self.unbound.output(), r"no last-good copy yet")

    def test_bad_optout_line_at_reload_serves_the_copy(self):
        self.start(settings(optout={"file": "optout.txt"}), optout="127.0.0.2/32\n")
        self.assertTrue(os.path.exists(self.workdir.file("optout.txt.last-good")))
        self.workdir.write("optout.txt", "127.0.0.2/32\n10.0.0.1/33\n")
        log = self.reload_survives()
        self.assertRegex(log, r"optout\.txt: line 2: \"10\.0\.0\.1/33\"")
        self.assertRegex(log, r"serving the last-good opt-out set")
        # The opted-out client still gets the real answer, others the sinkhole.
        answer = harness.kdig(self.unbound.port, C2, "A", options=("-b", "127.0.0.2"))
        self.assertEqual(answer.rdata("A"), ["198.51.100.1"], answer.text)
        self.assertSinkholed()
        self.wait_metric("dnsfilter_optout_stale", 1)
        self.assertEqual(self.metrics()["dnsfilter_feed_stale"], 0)

    def test_unwritable_state_dir_is_logged_and_the_start_goes_on(self):
        self.start(settings(**{"state-dir": "no-such-dir"}))
        self.assertSinkholed()
        self.assertRegex(self.unbound.output(),
                         r"error: dnsfilter: .*no-such-dir/feed\.json\.last-good\.\d+\.tmp: "
                         r"cannot create")


STALL_STAT = os.environ.get("DNSFILTER_STALL_STAT")


@unittest.skipUnless(STALL_STAT and os.path.exists(STALL_STAT),
                     "DNSFILTER_STALL_STAT (the stall_stat.so fault library) not built")
class StuckWatcherTest(unittest.TestCase):
    """A module thread stuck in a system call (a dead network mount, made
    here by preloading stall_stat.so): the watcher in stat() of the feed,
    the reporter in rename() of the metrics. `unbound-control stop` still
    completes, the thread being left behind after its timeout."""

    def stuck_stop(self, suffix, expect):
        """Start, make calls on paths ending in suffix block, stop: Unbound
        must exit in time and log expect."""
        workdir = harness.WorkDir("stuck")
        self.addCleanup(workdir.cleanup)
        trigger = workdir.file("stall-now")
        self.addCleanup(lambda: os.path.exists(trigger) and os.unlink(trigger))
        os.environ["DNSFILTER_STALL_SUFFIX"] = suffix
        os.environ["DNSFILTER_STALL_TRIGGER"] = trigger
        self.addCleanup(os.environ.pop, "DNSFILTER_STALL_SUFFIX", None)
        self.addCleanup(os.environ.pop, "DNSFILTER_STALL_TRIGGER", None)
        nsd = harness.Nsd(workdir, ZONES)
        self.addCleanup(nsd.stop)
        nsd.start()
        unbound = harness.Unbound(workdir, {ZONE: nsd.port}, settings=settings(),
                                  feed=GOOD, preload=[STALL_STAT])
        self.addCleanup(unbound.stop)
        unbound.start()
        self.assertEqual(unbound.query(C2, "A").rdata("A"), [SINKHOLE_A])
        with open(trigger, "w"):
            pass
        time.sleep(2.5)  # watch-interval and stats.interval 1: now stuck
        self.assertEqual(unbound.query(C2, "A").rdata("A"), [SINKHOLE_A],
                         "queries are answered while a module thread is stuck")
        started = time.monotonic()
        unbound.control("stop", timeout=60)
        code = unbound.wait_exit(40)
        elapsed = time.monotonic() - started
        self.assertIsNotNone(code, "Unbound did not stop within 40 s with a module "
                             "thread stuck:\n" + unbound.output()[-3000:])
        self.assertRegex(unbound.output(), expect)
        print("\n  stop with %s stuck: %.1f s" % (suffix, elapsed))

    def test_stop_completes_with_the_watcher_stuck(self):
        self.stuck_stop("/feed.json",
                        r"error: dnsfilter: the watcher thread has not stopped in \d+ s")

    def test_stop_completes_with_the_reporter_stuck(self):
        self.stuck_stop("/dnsfilter.prom",
                        r"error: dnsfilter: the reporter's writer has not stopped in \d+ s")


class FarFutureStartTest(unittest.TestCase):
    """An entry starting in 9999 next to one in force: the watcher's sleep
    until the next start must not overflow (the ASan+UBSan run reports a
    signed overflow), and the entry in force works."""

    def test_year_9999_start(self):
        document = feed([entry("F-0001", [C2]),
                         entry("F-9999", [OTHER], start="9999-12-31")])
        _, unbound = harness.start_stack(self.addCleanup, "far", ZONES,
                                         settings(), document)
        self.assertEqual(unbound.query(C2, "A").rdata("A"), [SINKHOLE_A])
        self.assertEqual(unbound.query(OTHER, "A").rdata("A"), ["198.51.100.2"])
        time.sleep(1.5)  # a few watcher rounds
        self.assertEqual(unbound.stop(), 0, unbound.output()[-3000:])
        self.assertNotRegex(unbound.output(), r"runtime error")


if __name__ == "__main__":
    unittest.main()
