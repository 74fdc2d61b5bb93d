"""unbound-control reload loop (SPEC section 7): 200 reloads, alternating
`reload` and `reload_keep_cache` and alternating two feeds (A lists a.<zone>,
B lists b.<zone>), while dnsperf sends queries from 2 clients for listed and
unlisted names. After each reload (once `unbound-control status` answers):
the module's init ran again, the answers are those of the feed now in force
(a.<zone> sinkholed only under A, b.<zone> only under B), an opted-out
client still gets the real answer, Unbound is running. At the end: RSS
within 10 % of the RSS after the first reload (both printed), a clean stop.

The loop is bounded: it fails after LOOP_TIMEOUT seconds.
"""

import os
import sys
import time
import unittest

import harness
import refresh_support as rs
from harness import entry, feed

ZONE = "loop.test"
RECORDS = [
    "a A 198.51.100.1",
    "a AAAA 2001:db8::a",
    "b A 198.51.100.2",
    "b AAAA 2001:db8::b",
    "oa A 198.51.100.11",
    "ob A 198.51.100.12",
    "www A 192.0.2.80",
] + ["n%d A 192.0.2.%d" % (i, 100 + i) for i in range(8)]
REAL = {"a": "198.51.100.1", "b": "198.51.100.2", "oa": "198.51.100.11",
        "ob": "198.51.100.12"}
ZONES = {ZONE: harness.zone_text(ZONE, RECORDS)}
SINKHOLE_A = "192.0.2.1"
OPTED_OUT = "127.0.0.2"
RELOADS = int(os.environ.get("DNSFILTER_RELOADS", "200"))
LOOP_TIMEOUT = 600  # seconds for the whole loop
RELOAD_TIMEOUT = 30  # seconds for one reload to answer status again
RSS_TOLERANCE = 0.10


def name(label):
    return "%s.%s" % (label, ZONE)


# oa/ob: listed too, asked only by the opted-out client (and once by the
# filtered one after it): dnsperf's filtered clients asking a listed name
# that an opted-out client's query is resolving would (rightly, fail safe)
# give the opted-out client the sinkhole.
def feed_a(serial):
    return feed([entry("A-%d" % serial, [name("a"), name("oa")])], serial=serial)


def feed_b(serial):
    return feed([entry("B-%d" % serial, [name("b"), name("ob")])], serial=serial)


SETTINGS = {"feed": "feed.json", "sinkhole": {"a": SINKHOLE_A},
            "watch-interval": 1, "optout": {"networks": [OPTED_OUT + "/32"]}}
QUERIES = [(name(label), qtype) for label in ("a", "b") for qtype in ("A", "AAAA")] + \
          [(name("www"), "A")] + [(name("n%d" % i), "A") for i in range(8)]


class LoopResult:
    """What a reload loop measured."""

    def __init__(self):
        self.seconds = 0.0
        self.reload_seconds = []
        self.failures = []
        self.rss_first = None
        self.rss_last = None
        self.hwm = None
        self.rss_samples = []  # (reloads done, VmRSS kB)
        self.perf = {}

    def report(self, label):
        return (
            "\n  [%s] %d reloads in %.1f s (reload to status answering: avg %.3f s, "
            "max %.3f s)"
            "\n  [%s] RSS after the first reload: %d kB; after the loop: %d kB (%+.1f %%); "
            "VmHWM %d kB"
            "\n  [%s] RSS by reloads done: %s"
            "\n  [%s] dnsperf (2 clients, 2000 qps): sent %s, completed %s, lost %s, "
            "avg latency %s s, max %s s, rcodes %s\n" % (
                label, len(self.reload_seconds), self.seconds,
                sum(self.reload_seconds) / max(1, len(self.reload_seconds)),
                max(self.reload_seconds or [0]), label, self.rss_first, self.rss_last,
                100.0 * (self.rss_last - self.rss_first) / self.rss_first, self.hwm,
                label, " ".join("%d:%d" % sample for sample in self.rss_samples),
                label, self.perf.get("sent"), self.perf.get("completed"),
                self.perf.get("lost"), self.perf.get("latency_avg"),
                self.perf.get("latency_max"), self.perf.get("rcodes")))


class ReloadLoopTest(unittest.TestCase):

    def run_loop(self, unbound, module=True):
        """RELOADS reloads under dnsperf load; with the module, check the
        answers after each. Return a LoopResult."""
        result = LoopResult()
        feed_path = unbound.workdir.file("feed.json")
        pid = unbound.process.pid
        perf = rs.Dnsperf(unbound.workdir, unbound.port, QUERIES, clients=2, rate=2000,
                          limit=LOOP_TIMEOUT + 60, timeout=5, label="loop")
        self.addCleanup(perf.process.stop)
        time.sleep(1)
        self.assertTrue(perf.process.running(), perf.process.output())

        deadline = time.monotonic() + LOOP_TIMEOUT
        started = time.monotonic()
        for i in range(RELOADS):
            if time.monotonic() > deadline:
                self.fail("reload loop not done after %ss (%d reloads)" % (LOOP_TIMEOUT, i))
            command = "reload" if i % 2 == 0 else "reload_keep_cache"
            under_a = ((i + 1) // 2) % 2 == 1
            serial = i + 2
            rs.replace_by_rename(feed_path, feed_a(serial) if under_a else feed_b(serial))
            loads = len(rs.matches(unbound, rs.INIT_LOAD))
            begin = time.monotonic()
            control = unbound.control(command, timeout=RELOAD_TIMEOUT)
            context = "reload %d (%s, feed %s)" % (i + 1, command, "A" if under_a else "B")
            self.assertEqual(control.returncode, 0, "%s: %s\n%s" % (
                context, control.stdout, rs.log_tail(unbound)))
            ok = harness.wait_until(
                lambda: rs.status_ok(unbound) or not unbound.process.running(),
                RELOAD_TIMEOUT, interval=0.02)
            self.assertTrue(unbound.process.running(), "%s: Unbound exited (%s):\n%s" % (
                context, unbound.process.returncode(), rs.log_tail(unbound, 80)))
            self.assertTrue(ok, "%s: status does not answer after %ss:\n%s" % (
                context, RELOAD_TIMEOUT, rs.log_tail(unbound)))
            result.reload_seconds.append(time.monotonic() - begin)
            if module:
                self.assertGreater(len(rs.matches(unbound, rs.INIT_LOAD)), loads,
                                   "%s: the module's init did not run again:\n%s" % (
                                       context, rs.log_tail(unbound)))
                self.check_answers(unbound, under_a, context, result.failures)
            if i == 0:
                time.sleep(1)  # let the first reload settle under load
                result.rss_first = rs.proc_status_kb(pid, "VmRSS")
            if (i + 1) % 25 == 0:
                result.rss_samples.append((i + 1, rs.proc_status_kb(pid, "VmRSS")))
        result.seconds = time.monotonic() - started
        time.sleep(1)
        result.rss_last = rs.proc_status_kb(pid, "VmRSS")
        result.hwm = rs.proc_status_kb(pid, "VmHWM")
        result.perf = perf.stop()
        return result

    def check_answers(self, unbound, under_a, context, failures):
        """The answers of the feed now in force; a wrong one is noted."""
        listed, other = ("a", "b") if under_a else ("b", "a")
        got_listed = unbound.query(name(listed), "A").rdata("A")
        got_other = unbound.query(name(other), "A").rdata("A")
        opted = "o" + listed
        got_opted_out = rs.query_from(unbound, name(opted), "A", OPTED_OUT).rdata("A")
        got_after = unbound.query(name(opted), "A").rdata("A")
        if got_listed != [SINKHOLE_A] or got_other != [REAL[other]] or \
                got_opted_out != [REAL[opted]] or got_after != [SINKHOLE_A]:
            failures.append("%s: %s -> %s, %s -> %s, %s from %s -> %s then -> %s" % (
                context, name(listed), got_listed, name(other), got_other,
                name(opted), OPTED_OUT, got_opted_out, got_after))

    def test_reload_loop_under_load(self):
        nsd, unbound = harness.start_stack(
            self.addCleanup, "reloadloop", ZONES, SETTINGS, feed_a(1),
            extra=["num-threads: 2"])
        result = self.run_loop(unbound)
        sys.stderr.write(result.report("dnsfilter"))
        self.assertTrue(unbound.process.running(), rs.log_tail(unbound, 80))
        # A clean stop.
        stop = unbound.control("stop")
        code = unbound.wait_exit(15)
        log = unbound.output()
        self.assertEqual(result.failures, [], "wrong answers after %d of %d reloads:\n%s" % (
            len(result.failures), RELOADS, "\n".join(result.failures[:20])))
        self.assertEqual(len(rs.matches(unbound, rs.INIT_LOAD)), RELOADS + 1)
        self.assertGreater(result.perf.get("completed", 0), 0, result.perf["text"])
        for bad in ("fatal error", "assertion", "Segmentation", "out of memory"):
            self.assertNotIn(bad, log)
        self.assertEqual(stop.returncode, 0, stop.stdout)
        self.assertEqual(code, 0, rs.log_tail(unbound))
        if harness.SANITIZED:
            # ASan's quarantine keeps freed memory (stock Unbound grows 6x
            # too): RSS says nothing there; leaks are LeakSanitizer's job.
            print("  RSS check skipped: the module runs under AddressSanitizer",
                  file=sys.stderr)
            return
        self.assertLessEqual(
            abs(result.rss_last - result.rss_first), RSS_TOLERANCE * result.rss_first,
            "RSS after the first reload %d kB, after %d reloads %d kB (%+.1f %%); "
            "by reloads done: %s" % (
                result.rss_first, RELOADS, result.rss_last,
                100.0 * (result.rss_last - result.rss_first) / result.rss_first,
                " ".join("%d:%d" % sample for sample in result.rss_samples)))


class StockReloadLoopBaseline(unittest.TestCase):
    """The same loop and load on Unbound without the module, for
    comparison of the RSS figures (printed; only a crash fails it)."""

    def test_stock_unbound_reload_loop_baseline(self):
        workdir = harness.WorkDir("reloadstock")
        self.addCleanup(workdir.cleanup)
        nsd = harness.Nsd(workdir, ZONES)
        self.addCleanup(nsd.stop)
        nsd.start()
        unbound = harness.Unbound(workdir, {ZONE: nsd.port}, module=False,
                                  feed=feed_a(1), extra=["num-threads: 2"])
        self.addCleanup(unbound.stop)
        unbound.start()
        result = ReloadLoopTest.run_loop(self, unbound, module=False)
        sys.stderr.write(result.report("stock"))
        self.assertTrue(unbound.process.running(), rs.log_tail(unbound, 80))


if __name__ == "__main__":
    unittest.main()
