"""Two resolver threads under load while the feed, the opt-out file and the
whole module are replaced: the module's threads (resolver threads, the
watcher, the reporter's writer, unbound-control's reloads) at work at once.

One Unbound with num-threads: 2, the event log and counter log on (the
writer thread), the watcher checking the files every second, and dnsperf
asking listed and unlisted names from two clients all along. While it
runs, the feed is replaced by rename SWAPS times (feeds A and B alternate),
the opt-out file is rewritten with each swap, and `unbound-control reload`
and `reload_keep_cache` alternate RELOADS times. After each change the
answers are those of the version in force; at the end Unbound still runs,
dnsperf got its answers, and the counters add up.

ctest runs this as integration_test_threads, integration_asan_test_threads
and integration_tsan_test_threads: the last with the module built with
ThreadSanitizer (its runtime preloaded into Unbound), where a data race
report with the module's code in it fails the test (harness.py). Every step
is bounded; the whole test takes about a minute.
"""

import json
import os
import time
import unittest

import harness
import refresh_support as rs
from harness import entry, feed

ZONE = "threads.test"
RECORDS = ["a A 198.51.100.1", "b A 198.51.100.2", "www A 192.0.2.80"] + \
          ["n%d A 192.0.2.%d" % (i, 100 + i) for i in range(8)]
REAL = {"a": "198.51.100.1", "b": "198.51.100.2"}
SINKHOLE_A = "192.0.2.1"
SWAPS = int(os.environ.get("DNSFILTER_THREADS_SWAPS", "16"))
RELOADS = int(os.environ.get("DNSFILTER_THREADS_RELOADS", "8"))
STEP_TIMEOUT = 30  # seconds for one change to be in force
QUERIES = [("a.%s" % ZONE, "A"), ("b.%s" % ZONE, "A"), ("www.%s" % ZONE, "A"),
           ("x.a.%s" % ZONE, "AAAA")] + [("n%d.%s" % (i, ZONE), "A") for i in range(8)]


def name(label):
    return "%s.%s" % (label, ZONE)


def feed_listing(label, serial):
    """Feed A lists a.<zone> and below it; feed B lists b.<zone>."""
    return feed([entry("%s-%d" % (label.upper(), serial), [name(label), "*." + name(label)])],
                serial=serial)


def optout_text(generation):
    # networks no test client uses: the file changes, the answers do not
    return "# generation %d\n198.18.%d.0/24\n2001:db8:%x::/48\n" % (
        generation, generation % 256, generation)


class ThreadsTest(unittest.TestCase):
    def setUp(self):
        self.workdir = harness.WorkDir("threads")
        self.addCleanup(self.workdir.cleanup)
        self.nsd = harness.Nsd(self.workdir, {ZONE: harness.zone_text(ZONE, RECORDS)},
                               extra=["rrl-ratelimit: 0"])
        self.addCleanup(self.nsd.stop)
        self.nsd.start()
        self.workdir.write("optout.txt", optout_text(0))
        settings = {"feed": "feed.json", "sinkhole": {"a": SINKHOLE_A}, "watch-interval": 1,
                    "optout": {"file": "optout.txt"},
                    "log": {"path": "events.jsonl"},
                    "stats": {"path": "stats.jsonl", "interval": 1}}
        self.unbound = harness.Unbound(self.workdir, {ZONE: self.nsd.port}, settings=settings,
                                       feed=feed_listing("a", 1), threads=2)
        self.addCleanup(self.unbound.stop)
        self.unbound.start()

    def assert_listed(self, label, listed):
        """label.<zone> is sinkholed (listed) or gets its real address, and
        so does a name below it (wildcard)."""
        for qname, real in ((name(label), REAL[label]), ("x." + name(label), None)):
            answer = self.unbound.query(qname)
            if listed:
                self.assertEqual(answer.rdata("A"), [SINKHOLE_A], answer)
            elif real:
                self.assertEqual(answer.rdata("A"), [real], answer)
            else:
                self.assertEqual(answer.rcode, "NXDOMAIN", answer)

    def swap_feed(self, label, serial):
        """Replace the feed by rename and wait until the watcher put it in
        force (its log line)."""
        mark = self.unbound.log_size()
        self.workdir.write("feed.json.new", feed_listing(label, serial))
        os.rename(self.workdir.file("feed.json.new"), self.workdir.file("feed.json"))
        self.workdir.write("optout.txt.new", optout_text(serial))
        os.rename(self.workdir.file("optout.txt.new"), self.workdir.file("optout.txt"))
        in_force = "new feed in force: serial %d," % serial
        self.assertTrue(
            harness.wait_until(lambda: in_force in self.unbound.log_since(mark), STEP_TIMEOUT),
            "feed %d not in force after %d s:\n%s" % (serial, STEP_TIMEOUT,
                                                      self.unbound.log_since(mark)[-3000:]))

    def test_swaps_and_reloads_under_load_with_two_threads(self):
        load = rs.Dnsperf(self.workdir, self.unbound.port, QUERIES, clients=2, rate=1500,
                          limit=300, label="threads")
        self.addCleanup(load.stop)
        started = time.monotonic()
        serial = 1
        for step in range(SWAPS):
            serial += 1
            label = "b" if step % 2 == 0 else "a"
            self.swap_feed(label, serial)
            self.assert_listed(label, True)
            self.assert_listed("a" if label == "b" else "b", False)
            if step < RELOADS:
                # a reload reads the feed file as it is now: the same list
                self.unbound.reload(keep_cache=step % 2 == 0, timeout=STEP_TIMEOUT)
                self.assert_listed(label, True)
        perf = load.stop()
        seconds = time.monotonic() - started
        self.assertTrue(self.unbound.process.running(), self.unbound.output()[-3000:])
        self.assertGreater(perf.get("completed", 0), 0, perf.get("text"))
        # a reload drops the queries in flight: a few per reload at most
        self.assertLessEqual(perf.get("lost", 0), 50 * RELOADS + 50, perf.get("text"))
        print("\n  %d swaps, %d reloads in %.1f s under dnsperf: sent %s, completed %s, "
              "lost %s" % (SWAPS, RELOADS, seconds, perf.get("sent"), perf.get("completed"),
                           perf.get("lost")))
        # the two resolver threads both counted (their own counter slots)
        self.unbound.query(name("www"))
        self.assertTrue(harness.wait_until(lambda: self.counted_queries() > 0, 10))

    def counted_queries(self):
        total = 0
        try:
            with open(self.workdir.file("stats.jsonl")) as f:
                for line in f:
                    total += json.loads(line).get("queries", 0)
        except (OSError, ValueError):
            return 0
        return total


if __name__ == "__main__":
    unittest.main()
