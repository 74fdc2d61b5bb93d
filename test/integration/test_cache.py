"""The module and Unbound's caches (issue 4), end to end: feed changes with
unbound-control reload_keep_cache, serve-expired, CNAME chains, monitor,
time windows that open and close with no reload, prefetch.

The rule under test (SPEC section 6): no client gets a cached real answer
of a name the feed blocks now; a sinkhole answer is never cached; at a load
the module removes cached answers of the names the feed now blocks (or
monitors) and logs 'dnsfilter: cache purge: N cached answers examined, M
removed, X ms'.

Every wait is bounded; waits for time to pass are in whole seconds because
Unbound's cache clock and the feed's time windows are.
"""

import math
import re
import time
import unittest

import harness
from harness import entry, feed, rfc3339

ZONE = "cache.test"
SINKHOLE_A = "192.0.2.1"
TTL = 42


def name(label):
    return "%s.%s" % (label, ZONE)


def fqdn(label):
    return name(label) + "."


def real_address(label):
    """Each test name has its own real address in NSD."""
    return "198.51.100.%d" % (sum(label.encode()) % 200 + 10)


LABELS = ["www", "soon", "gone", "stale", "ctl", "c2", "a", "b", "c3", "mon",
          "later", "ending", "starting", "pf", "pfstart", "pfctl"]


def zone(ttl):
    records = ["%s A %s" % (label, real_address(label)) for label in LABELS
               if label not in ("a", "b")]
    records += ["a CNAME c2", "b CNAME c3"]
    return {ZONE: harness.zone_text(ZONE, records, ttl=ttl)}


def settings(**overrides):
    # watch-interval 0: no hot refresh of the rewritten feed by the module's
    # watcher, so each feed change here takes effect at the
    # reload_keep_cache, through the purge at the module's load.
    value = {"feed": "feed.json", "sinkhole": {"a": SINKHOLE_A}, "ttl": TTL,
             "watch-interval": 0}
    value.update(overrides)
    return value




def sleep_until(wall_time, limit=30):
    """Sleep until time.time() >= wall_time (at most limit seconds)."""
    delay = wall_time - time.time()
    if delay > limit:
        raise AssertionError("refusing to wait %.1f s" % delay)
    if delay > 0:
        time.sleep(delay)


class CacheTestCase(unittest.TestCase):
    def start(self, label, feed_document, ttl=3600, extra=(), **overrides):
        self.nsd, self.unbound = harness.start_stack(
            self.addCleanup, label, zone(ttl), settings(**overrides), feed_document,
            extra=list(extra))
        return self.unbound

    def query(self, label, qtype="A", **kwargs):
        return self.unbound.query(name(label), qtype, **kwargs)

    def assertSinkhole(self, answer, label):
        self.assertEqual(answer.rcode, "NOERROR", answer)
        self.assertEqual([(rr.owner.lower(), rr.type, rr.rdata, rr.ttl) for rr in answer.answer],
                         [(fqdn(label), "A", SINKHOLE_A, TTL)], answer)

    def assertReal(self, answer, label):
        self.assertEqual(answer.rcode, "NOERROR", answer)
        self.assertEqual(answer.rdata("A"), [real_address(label)], answer)

    def assertCached(self, label, dump=None):
        dump = dump or self.unbound.dump_cache()
        self.assertTrue(dump.has_message(name(label), "A"),
                        "%s A not in the message cache:\n%s" % (name(label), dump.text))

    def assertNotCached(self, label, dump=None):
        """No message cache entry for label (any type), and no rrset with
        its real address."""
        dump = dump or self.unbound.dump_cache()
        self.assertFalse(dump.has_message(name(label)),
                         "%s still in the message cache:\n%s" % (name(label), dump.text))
        self.assertNotIn(real_address(label), [rr.rdata for rr in dump.rrsets_of(name(label))],
                         "%s: real address in the rrset cache:\n%s" % (name(label), dump.text))

    def assertNoMessage(self, label, dump=None):
        dump = dump or self.unbound.dump_cache()
        self.assertFalse(dump.has_message(name(label)),
                         "%s still in the message cache:\n%s" % (name(label), dump.text))

    def lines(self, pattern, count, timeout=3):
        harness.wait_until(lambda: len(self.unbound.log_lines(pattern)) >= count, timeout)
        return self.unbound.log_lines(pattern)

    def reload(self, document):
        """Rewrite the feed, reload_keep_cache; return the figures
        (examined, removed, ms) of the purge at this load (the first purge
        line after the module's load line)."""
        mark = self.unbound.log_size()
        self.unbound.reload_feed(document)
        text = self.unbound.log_since(mark)
        load = re.search(r"dnsfilter: .*: feed .*: \d+ entries.*\n", text)
        self.assertIsNotNone(load, "no module load at the reload:\n" + text[-3000:])
        found = self.unbound.purges(text[load.end():])
        self.assertTrue(found, "no cache purge line at the reload:\n" + text[-3000:])
        return found[0]


class PurgeAtLoadTest(CacheTestCase):
    """1. A cached name that a new feed lists is purged at reload_keep_cache."""

    def test_newly_listed_cached_name_gets_sinkhole_and_leaves_cache(self):
        self.start("purge", feed([entry("T-0001", [name("c2")])]))
        self.assertReal(self.query("soon"), "soon")
        self.assertReal(self.query("www"), "www")
        self.assertCached("soon")
        self.assertCached("www")

        examined, removed, ms = self.reload(feed([entry("T-0001", [name("c2")]),
                                                  entry("T-0002", [name("soon")])], serial=2))
        self.assertGreaterEqual(examined, 2)
        self.assertEqual(removed, 1, "only soon A is listed and cached")
        self.assertGreaterEqual(ms, 0)

        dump = self.unbound.dump_cache()
        # The cache was kept (reload_keep_cache) ...
        self.assertCached("www", dump)
        # ... but not the newly listed name's answer.
        self.assertNoMessage("soon", dump)
        self.assertSinkhole(self.query("soon"), "soon")
        self.assertEqual(len(self.lines(r"dnsfilter: block %s A T-0002$"
                                        % re.escape(fqdn("soon")), 1)), 1)
        self.assertNoMessage("soon")

    def test_expired_answer_kept_by_serve_expired_is_purged(self):
        # client-timeout 0: the expired answer at once (since 1.22 the default
        # waits 1.8 s for a fresh one first)
        self.start("serveexp", feed([entry("T-0001", [name("c2")])]), ttl=2,
                   extra=["serve-expired: yes", "serve-expired-reply-ttl: 77",
                          "serve-expired-client-timeout: 0"])
        self.assertReal(self.query("stale"), "stale")
        self.assertReal(self.query("ctl"), "ctl")
        self.assertCached("stale")
        cached_at = time.time()
        sleep_until(math.floor(cached_at) + 3.5)
        # Expired (dump_cache leaves expired entries out), and the
        # authoritative server gone: only serve-expired can answer now.
        dump = self.unbound.dump_cache()
        self.assertFalse(dump.has_message(name("stale")), dump.text)
        self.nsd.stop()
        ctl = self.query("ctl")
        self.assertReal(ctl, "ctl")  # served expired (TTL 77, or 2 where capped: 1.26)

        examined, removed, ms = self.reload(feed([entry("T-0001", [name("c2")]),
                                                  entry("T-0002", [name("stale")])], serial=2))
        self.assertGreaterEqual(removed, 1, "the expired stale A was not removed")
        self.assertSinkhole(self.query("stale"), "stale")

        # Unlisted again: had the expired answer stayed in the cache,
        # serve-expired would hand it out now; with no server, nothing else can.
        self.reload(feed([entry("T-0001", [name("c2")])], serial=3))
        try:
            answer = self.query("stale")
        except harness.QueryError:
            return  # no answer in time (the server is gone): nothing stale served
        self.assertNotEqual(answer.rdata("A"), [real_address("stale")],
                            "the expired real answer survived the purge: %r" % answer)


class RemovedEntryTest(CacheTestCase):
    """2. An entry removed from the feed stops acting at once."""

    def test_unlisted_name_resolves_at_once(self):
        self.start("removed", feed([entry("T-0001", [name("c2")]),
                                    entry("T-0002", [name("gone")])]))
        self.assertReal(self.query("www"), "www")
        for _ in range(2):
            self.assertSinkhole(self.query("gone"), "gone")
        self.assertNoMessage("gone")

        self.reload(feed([entry("T-0001", [name("c2")])], serial=2))
        self.assertCached("www")
        self.assertReal(self.query("gone"), "gone")
        self.assertSinkhole(self.query("c2"), "c2")


class CnameChainTest(CacheTestCase):
    """3. a CNAME c2, c2 listed: the chain's real answer is never served."""

    def test_alias_of_listed_name_is_sinkholed_every_time(self):
        self.start("cname", feed([entry("T-0001", [name("c2")])]))
        pattern = r"dnsfilter: block %s A T-0001 via cname$" % re.escape(fqdn("a"))
        for i in range(3):
            self.assertSinkhole(self.query("a"), "a")
            self.assertEqual(len(self.lines(pattern, i + 1)), i + 1,
                             "query %d of a not seen by the module:\n%s"
                             % (i + 1, self.unbound.output()[-3000:]))
            dump = self.unbound.dump_cache()
            self.assertNoMessage("a", dump)
            self.assertNoMessage("c2", dump)

    def test_cached_alias_purged_when_its_target_is_listed(self):
        self.start("cnamepurge", feed([entry("T-0001", [name("c2")])]))
        answer = self.query("b")
        self.assertEqual(answer.rdata("CNAME"), [fqdn("c3")], answer)
        self.assertEqual(answer.rdata("A"), [real_address("c3")], answer)
        self.assertCached("b")

        examined, removed, ms = self.reload(feed([entry("T-0001", [name("c2")]),
                                                  entry("T-0003", [name("c3")])], serial=2))
        self.assertGreaterEqual(removed, 1)
        self.assertNoMessage("b")
        self.assertSinkhole(self.query("b"), "b")
        self.assertEqual(len(self.lines(r"dnsfilter: block %s A T-0003 via cname$"
                                        % re.escape(fqdn("b")), 1)), 1)
        self.assertSinkhole(self.query("b"), "b")


class MonitorCacheTest(CacheTestCase):
    """4. A monitored name's real answer is not cached: every query is seen."""

    def check_logged_each_time(self, label, entry_id, resolved_before=False):
        """Three queries, three log lines, no cached answer. A name resolved
        before it was listed keeps its A rrset in the rrset cache (the purge
        removes messages, which is what clients are answered from)."""
        pattern = r"dnsfilter: monitor %s A %s$" % (re.escape(fqdn(label)), entry_id)
        before = len(self.unbound.log_lines(pattern))
        for i in range(3):
            self.assertReal(self.query(label), label)
            self.assertEqual(len(self.lines(pattern, before + i + 1)), before + i + 1,
                             "query %d of %s served without the module:\n%s"
                             % (i + 1, label, self.unbound.output()[-3000:]))
        if resolved_before:
            self.assertNoMessage(label)
        else:
            self.assertNotCached(label)

    def test_monitor_entry(self):
        self.start("monentry", feed([entry("T-0004", [name("mon")], action="monitor")]))
        self.check_logged_each_time("mon", "T-0004")

    def test_global_monitor_mode(self):
        self.start("monmode", feed([entry("T-0001", [name("c2")])]), mode="monitor")
        self.check_logged_each_time("c2", "T-0001")

    def test_cached_name_newly_monitored(self):
        self.start("monlater", feed([entry("T-0004", [name("mon")], action="monitor")]))
        self.assertReal(self.query("later"), "later")
        self.assertCached("later")
        examined, removed, ms = self.reload(feed([
            entry("T-0004", [name("mon")], action="monitor"),
            entry("T-0005", [name("later")], action="monitor")], serial=2))
        self.assertEqual(removed, 1)
        self.assertNoMessage("later")
        self.check_logged_each_time("later", "T-0005", resolved_before=True)


class TimeWindowTest(CacheTestCase):
    """5. Entries that end and start by the clock, with no reload."""

    def test_end_and_start_without_reload(self):
        at = math.floor(time.time()) + 4
        self.start("window", feed([
            entry("T-END", [name("ending")], end=rfc3339(at)),
            entry("T-START", [name("starting")], start=rfc3339(at)),
        ]))
        # Before: ending is blocked; starting resolves and is cached.
        self.assertSinkhole(self.query("ending"), "ending")
        answer = self.query("starting")
        self.assertLess(time.time(), at, "the stack took too long to start")
        self.assertReal(answer, "starting")
        self.assertGreater(answer.answer[0].ttl, 3000, answer)
        self.assertCached("starting")

        sleep_until(at)
        # After: starting gets the sinkhole although its real answer was
        # cached with TTL 3600. The module's watcher purges the cache when
        # an entry starts, within about a second (it sleeps in whole
        # seconds); allow 2.5 s.
        def sinkholed():
            answer = self.query("starting")
            return answer if answer.rdata("A") == [SINKHOLE_A] else None
        answer = harness.wait_until(sinkholed, 2.5, interval=0.1)
        delay = time.time() - at
        self.assertIsNotNone(answer, "cached real answer of starting still served "
                             "%.1f s after its start" % delay)
        self.assertSinkhole(answer, "starting")
        self.assertNoMessage("starting")
        # ending gets NSD's answer.
        self.assertReal(self.query("ending"), "ending")
        self.assertEqual(len(self.lines(r"dnsfilter: block %s A T-START$"
                                        % re.escape(fqdn("starting")), 1)), 1)
        self.assertSinkhole(self.query("starting"), "starting")
        self.assertEqual(len(self.lines(r"dnsfilter: block %s A T-START$"
                                        % re.escape(fqdn("starting")), 2)), 2)


class PrefetchTest(CacheTestCase):
    """6. prefetch: yes never refreshes a listed name into the cache."""

    def test_listed_name_is_not_prefetched(self):
        start = math.floor(time.time()) + 4
        base = [entry("T-START", [name("pfstart")], start=rfc3339(start))]
        self.start("prefetch", feed(base), ttl=10, extra=["prefetch: yes"])
        for label in ("pf", "pfstart", "pfctl"):
            self.assertReal(self.query(label), label)
        cached_at = math.floor(time.time())
        self.assertLess(time.time(), start, "the stack took too long to start")
        for label in ("pf", "pfstart", "pfctl"):
            self.assertCached(label)

        # pf becomes listed through the feed, pfstart by the clock.
        self.reload(feed(base + [entry("T-PF", [name("pf")])], serial=2))
        self.assertNoMessage("pf")

        # The last 10 % of the 10 s TTL: a cache hit there triggers prefetch.
        sleep_until(cached_at + 9.3)
        window = []
        for label in ("pf", "pfstart", "pfctl"):
            window.append((label, self.query(label)))
        self.assertLess(time.time(), cached_at + 10, "missed the prefetch window")
        for label, answer in window:
            with self.subTest(label=label, when="prefetch window"):
                if label == "pfctl":
                    self.assertReal(answer, label)
                else:
                    self.assertSinkhole(answer, label)

        # After the original TTL: pfctl was refreshed by prefetch (proof
        # that prefetch works here), the listed names were not.
        sleep_until(cached_at + 11.5)
        dump = self.unbound.dump_cache()
        self.assertCached("pfctl", dump)
        for label in ("pf", "pfstart"):
            with self.subTest(label=label, when="after the TTL"):
                self.assertNotCached(label, dump)
                self.assertSinkhole(self.query(label), label)
                self.assertNotCached(label)


if __name__ == "__main__":
    unittest.main()
