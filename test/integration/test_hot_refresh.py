"""Hot refresh of the feed (SPEC section 7): the module's watcher notices a
new feed file - replaced by rename or rewritten in place - within
watch-interval, loads it off the query path and switches to it; a feed
that fails validation leaves the loaded one in force and the next good file
is picked up; a real answer cached before a name was listed is never served
after the new feed is in force (the name itself, a name below a newly
listed wildcard, an alias whose target is newly listed), while the purge
looks only under the names that changed and skips a feed that newly lists
nothing; no query is lost while feeds are swapped.

Each test has its own NSD + Unbound (watch-interval 1). Every name a feed
lists also has a real record in NSD, so a miss shows as the real address.
"""

import os
import sys
import time
import unittest

import harness
import refresh_support as rs
from harness import entry, feed

ZONE = "hot.test"
RECORDS = [
    "www A 192.0.2.80",
    "old A 198.51.100.1",
    "new A 198.51.100.2",
    "third A 198.51.100.3",
    "cached A 198.51.100.4",
    "alias CNAME cnc",
    "cnc A 198.51.100.5",
    "deep.wild A 198.51.100.6",
]
REAL = {"old": "198.51.100.1", "new": "198.51.100.2", "third": "198.51.100.3",
        "cached": "198.51.100.4", "www": "192.0.2.80", "alias": "198.51.100.5",
        "cnc": "198.51.100.5", "deep.wild": "198.51.100.6"}
ZONES = {ZONE: harness.zone_text(ZONE, RECORDS)}
SINKHOLE_A = "192.0.2.1"
WATCH = 1
# A new feed must be in force within this long of its installation: the
# watch interval plus a generous allowance for a loaded test machine.
PICKUP = WATCH + 5


def name(label):
    return "%s.%s" % (label, ZONE)


def feed_listing(serial, *labels):
    return feed([entry("T-%d-%d" % (serial, i), [name(label)])
                 for i, label in enumerate(labels)], serial=serial)


def settings(watch=WATCH):
    return {"feed": "feed.json", "sinkhole": {"a": SINKHOLE_A},
            "watch-interval": watch}


class HotRefreshTest(unittest.TestCase):

    def setUp(self):
        self.nsd, self.unbound = harness.start_stack(
            self.addCleanup, "hot", ZONES, settings(), feed_listing(1, "old"))
        self.feed_path = self.unbound.workdir.file("feed.json")

    # -- assertions -------------------------------------------------------

    def assertSinkholed(self, label, source=harness.LOOPBACK):
        answer = rs.query_from(self.unbound, name(label), "A", source)
        self.assertEqual(answer.rcode, "NOERROR", answer)
        self.assertEqual(answer.rdata("A"), [SINKHOLE_A],
                         "%s not sinkholed:\n%s\n--- log ---\n%s" % (
                             name(label), answer.text, rs.log_tail(self.unbound)))

    def assertReal(self, label):
        answer = rs.query_from(self.unbound, name(label), "A")
        self.assertEqual(answer.rcode, "NOERROR", answer)
        self.assertEqual(answer.rdata("A"), [REAL[label]],
                         "%s: not the real answer:\n%s\n--- log ---\n%s" % (
                             name(label), answer.text, rs.log_tail(self.unbound)))

    def wait_new_feed(self, serial, installed_at):
        """Wait for 'new feed in force: serial N'; return (match, seconds
        from installation to the line being seen)."""
        found = []

        def seen():
            found[:] = [m for m in rs.matches(self.unbound, rs.NEW_FEED)
                        if int(m.group("serial")) == serial]
            return found

        harness.wait_until(seen, PICKUP, interval=0.02)
        elapsed = time.monotonic() - installed_at
        self.assertTrue(found, "no 'new feed in force: serial %d' within %ss; "
                        "dnsfilter lines:\n%s" % (serial, PICKUP,
                                                  "\n".join(rs.dnsfilter_lines(self.unbound))))
        return found[-1], elapsed

    # -- tests ------------------------------------------------------------

    def test_feed_replaced_by_rename_is_picked_up(self):
        self.assertSinkholed("old")
        self.assertReal("new")
        installed = time.monotonic()
        rs.replace_by_rename(self.feed_path, feed_listing(2, "new", "third"))
        line, elapsed = self.wait_new_feed(2, installed)
        sys.stderr.write("\n  rename -> new feed in force: %.2f s (%s)\n" % (
            elapsed, line.group(0)))
        self.assertEqual(os.path.realpath(line.group("path")),
                         os.path.realpath(self.feed_path))
        self.assertEqual(int(line.group("entries")), 2, line.group(0))
        self.assertEqual(int(line.group("names")), 2, line.group(0))
        self.assertSinkholed("new")
        self.assertSinkholed("third")
        self.assertReal("old")

    def test_feed_rewritten_in_place_is_picked_up(self):
        inode = os.stat(self.feed_path).st_ino
        installed = time.monotonic()
        rs.rewrite_in_place(self.feed_path, feed_listing(2, "new"))
        self.assertEqual(os.stat(self.feed_path).st_ino, inode, "not rewritten in place")
        self.wait_new_feed(2, installed)
        self.assertSinkholed("new")
        self.assertReal("old")
        # And once more, in place again.
        installed = time.monotonic()
        rs.rewrite_in_place(self.feed_path, feed_listing(3, "third"))
        self.wait_new_feed(3, installed)
        self.assertSinkholed("third")
        self.assertReal("new")

    def test_rejected_feed_leaves_loaded_one_and_next_good_is_picked_up(self):
        bad_name = "bad name!." + ZONE
        bad = feed([entry("T-2-0", [name("new")]), entry("T-2-BAD", [bad_name])], serial=2)
        installed = time.monotonic()
        rs.replace_by_rename(self.feed_path, bad)
        rejected = rs.wait_for_count(self.unbound, rs.FEED_REJECTED, 1, PICKUP)
        stays = rs.wait_for_count(self.unbound, rs.FEED_STAYS, 1, 2)
        lines = "\n".join(rs.dnsfilter_lines(self.unbound))
        self.assertTrue(rejected, "no 'feed rejected' line:\n" + lines)
        self.assertTrue(stays, "no 'the loaded feed stays in force' line:\n" + lines)
        self.assertGreaterEqual(int(rejected[0].group("errors")), 1, lines)
        self.assertIn(bad_name, lines, "the bad name is not named in the log")
        self.assertEqual([m for m in rs.matches(self.unbound, rs.NEW_FEED)], [], lines)
        # The loaded feed (serial 1) still acts; the rejected one does not.
        self.assertSinkholed("old")
        self.assertReal("new")
        # A truncated feed (invalid JSON), this time rewritten in place.
        with open(self.feed_path, encoding="utf-8") as f:
            text = f.read()
        rs.rewrite_in_place(self.feed_path, text[:len(text) // 2])
        rs.wait_for_count(self.unbound, rs.FEED_REJECTED, 2, PICKUP)
        stays = rs.wait_for_count(self.unbound, rs.FEED_STAYS, 2, 2)
        self.assertEqual(len(stays), 2, "\n".join(rs.dnsfilter_lines(self.unbound)))
        self.assertSinkholed("old")
        # The next good file is picked up.
        installed = time.monotonic()
        rs.replace_by_rename(self.feed_path, feed_listing(3, "third"))
        self.wait_new_feed(3, installed)
        self.assertSinkholed("third")
        self.assertReal("old")
        self.assertReal("new")

    def test_cached_answer_of_newly_listed_name_is_not_served(self):
        # The real answer is fetched and cached while the name is not listed.
        self.assertReal("cached")
        self.assertReal("cached")
        dump = self.unbound.control("dump_cache", timeout=30).stdout.lower()
        self.assertIn("msg %s. in a" % name("cached"), dump,
                      "the real answer is not in the message cache to begin with")
        installed = time.monotonic()
        rs.replace_by_rename(self.feed_path, feed_listing(2, "old", "cached"))
        line, _ = self.wait_new_feed(2, installed)
        # the line comes once the purge is done: from then on no path
        # serves the real answer cached before
        self.assertIsNotNone(line.group("purge_ms"), line.group(0))
        for qname in (name("cached"), name("cached").upper(), name("CacHed")):
            answer = self.unbound.query(qname, "A")
            self.assertEqual(answer.rdata("A"), [SINKHOLE_A],
                             "cached real answer served after the feed listed it:\n%s"
                             % answer.text)
        # Nor by TCP.
        answer = self.unbound.query(name("cached"), "A", tcp=True)
        self.assertEqual(answer.rdata("A"), [SINKHOLE_A], answer.text)

    def cache_real(self, *labels):
        for label in labels:
            self.assertReal(label)
        dump = self.unbound.control("dump_cache", timeout=30).stdout.lower()
        for label in labels:
            self.assertIn("msg %s. in a" % name(label), dump,
                          "%s: the real answer is not cached to begin with" % label)

    def cached_messages(self):
        dump = self.unbound.control("dump_cache", timeout=30).stdout.lower()
        return {line.split()[1] for line in dump.splitlines() if line.startswith("msg ")}

    def test_cached_alias_and_wildcard_answers_of_newly_listed_names_are_not_served(self):
        # an alias whose target the new feed lists (match-cname), and a name
        # below a wildcard it lists: neither is a changed name itself
        self.cache_real("alias", "deep.wild", "www")
        installed = time.monotonic()
        rs.replace_by_rename(self.feed_path, feed([
            entry("T-2-0", [name("old")]), entry("T-2-1", [name("cnc")]),
            entry("T-2-2", ["*.wild." + ZONE])], serial=2))
        line, _ = self.wait_new_feed(2, installed)
        self.assertIsNotNone(line.group("purge_ms"), line.group(0))
        self.assertIn("(2 changed names found", line.group(0))
        for label in ("alias", "deep.wild"):
            answer = self.unbound.query(name(label), "A")
            self.assertEqual(answer.rdata("A"), [SINKHOLE_A],
                             "%s: cached real answer served after the feed listed it:\n%s"
                             % (label, answer.text))
        purge = [l for l in rs.dnsfilter_lines(self.unbound) if "cache purge:" in l][-1]
        self.assertIn("under the 2 changed names checked", purge)
        # what the change does not touch stays cached
        self.assertIn(name("www") + ".", self.cached_messages(), purge)
        self.assertReal("www")

    def test_a_feed_that_newly_lists_nothing_needs_no_purge(self):
        self.cache_real("cached", "www")
        purges = len(self.unbound.purges())
        # other serial, other ids, another order, the same rules; then one
        # name dropped: nothing is newly listed either time
        installed = time.monotonic()
        rs.replace_by_rename(self.feed_path, feed([
            entry("X-1", [name("third")], start="2030-01-01"),
            entry("X-2", [name("old")])], serial=2))
        line, _ = self.wait_new_feed(2, installed)
        self.assertIn("(1 changed names found", line.group(0))
        installed = time.monotonic()
        rs.replace_by_rename(self.feed_path, feed([
            entry("Y-1", [name("old")]), entry("Y-2", [name("third")], start="2030-01-01")],
            serial=3))
        line, _ = self.wait_new_feed(3, installed)
        self.assertIn("no cache purge needed (no name newly listed)", line.group(0))
        installed = time.monotonic()
        rs.replace_by_rename(self.feed_path, feed_listing(4, "old"))
        line, _ = self.wait_new_feed(4, installed)
        self.assertIn("no cache purge needed", line.group(0))
        self.assertEqual(len(self.unbound.purges()), purges + 1,
                         "\n".join(rs.dnsfilter_lines(self.unbound)))
        self.assertTrue({name("cached") + ".", name("www") + "."} <= self.cached_messages())
        self.assertSinkholed("old")
        self.assertReal("cached")

    def test_no_query_lost_while_feeds_are_swapped(self):
        queries = [(name(label), "A") for label in ("old", "new", "third", "www")]
        perf = rs.Dnsperf(self.unbound.workdir, self.unbound.port, queries,
                          clients=2, rate=2000, limit=9, timeout=3, label="swap")
        self.addCleanup(perf.process.stop)
        time.sleep(1)
        for serial in range(2, 6):
            installed = time.monotonic()
            labels = ("new",) if serial % 2 == 0 else ("old", "third")
            rs.replace_by_rename(self.feed_path, feed_listing(serial, *labels))
            self.wait_new_feed(serial, installed)
            time.sleep(0.5)
        summary = perf.wait(30)
        sys.stderr.write("\n  dnsperf during 4 swaps: sent %s, completed %s, lost %s, "
                         "avg latency %s s, max %s s\n" % (
                             summary.get("sent"), summary.get("completed"),
                             summary.get("lost"), summary.get("latency_avg"),
                             summary.get("latency_max")))
        self.assertIn("lost", summary, summary["text"])
        self.assertGreater(summary["completed"], 5000, summary["text"])
        self.assertEqual(summary["lost"], 0, summary["text"])
        self.assertEqual(set(summary["rcodes"]), {"NOERROR"}, summary["text"])
        self.assertTrue(self.unbound.process.running(), rs.log_tail(self.unbound))
        # Serial 5 (old, third) is in force at the end.
        self.assertSinkholed("old")
        self.assertSinkholed("third")
        self.assertReal("new")


class WatchIntervalZeroTest(unittest.TestCase):
    """watch-interval 0: the feed file is read only at (re)load."""

    def test_no_watcher_only_reload_reads_the_feed(self):
        nsd, unbound = harness.start_stack(
            self.addCleanup, "nowatch", ZONES, settings(watch=0), feed_listing(1, "old"))
        feed_path = unbound.workdir.file("feed.json")
        rs.replace_by_rename(feed_path, feed_listing(2, "new"))
        time.sleep(3)
        self.assertEqual(rs.matches(unbound, rs.NEW_FEED), [],
                         "\n".join(rs.dnsfilter_lines(unbound)))
        self.assertEqual(unbound.query(name("new")).rdata("A"), [REAL["new"]])
        self.assertEqual(unbound.query(name("old")).rdata("A"), [SINKHOLE_A])
        loads = len(rs.matches(unbound, rs.INIT_LOAD))
        result = unbound.control("reload_keep_cache")
        self.assertEqual(result.returncode, 0, result.stdout)
        self.assertTrue(harness.wait_until(lambda: rs.status_ok(unbound), 15))
        self.assertTrue(rs.wait_for_count(unbound, rs.INIT_LOAD, loads + 1, 10))
        self.assertEqual(unbound.query(name("new")).rdata("A"), [SINKHOLE_A])
        self.assertEqual(unbound.query(name("old")).rdata("A"), [REAL["old"]])


if __name__ == "__main__":
    unittest.main()
