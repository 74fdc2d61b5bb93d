"""No bypass (SPEC section 6): once a feed version, or an entry's start, is
in force, no filtered client gets the real answer of a name it blocks,
whatever anyone asked before.

Unbound answers from its message cache before any module runs, and its
iterator stores answers under names the module never decided on. Each test
here makes Unbound fetch a listed name's real data by a path that does not
start at the module, then asks for the listed name every way a client can
(RD=1, CD=1, DO, RD=0, CD=1 with RD=0; A and AAAA) and looks into the cache
with unbound-control dump_cache:

- names below a listed name (qname minimisation asks for the listed name);
- an allow-listed alias whose target is listed, an alias inside the listed
  name's zone, and any alias when match-cname is off;
- the name server of a zone whose host name is listed (the iterator's own
  sub-query, which never passes the module);
- a resolution in flight across a hot swap, and across an entry's start;
- data cached before the name was listed (the purge takes the rrsets too).

Every path runs with "dynlib validator iterator" and "dynlib iterator",
qname minimisation on and off, match-cname on and off, two threads,
serve-expired, prefetch, and RD=0 allowed (allow_snoop). NSD serves every
zone on 127.0.0.1; the NS host name resolves to 127.0.0.1 and is given with
its port (stub-host), so no query leaves the machine.
"""

import threading
import time
import unittest

import harness
import refresh_support as rs
from harness import entry, feed, rfc3339

SINKHOLE_A = "192.0.2.1"
SINKHOLE_AAAA = "2001:db8::1"
REAL = {
    "c2.evil.test": "203.0.113.66",
    "c2b.evil.test": "203.0.113.67",
    "c2c.evil.test": "203.0.113.68",
    "c2d.evil.test": "203.0.113.69",
    "nshost.evil.test": "127.0.0.1",
    "late.evil.test": "203.0.113.77",
    "starting.evil.test": "203.0.113.78",
    "www.victim.test": "198.51.100.5",
    "cn.evil.test": "198.51.100.9",  # cn CNAME target.ok.test
}
REAL_AAAA = "2001:db8:bad::66"
LISTED = ["c2.evil.test", "c2b.evil.test", "c2c.evil.test", "c2d.evil.test",
          "nshost.evil.test"]


def zones():
    evil = ["%s A %s" % (name[:-len(".evil.test")], address)
            for name, address in REAL.items()
            if name.endswith(".evil.test") and name != "cn.evil.test"]
    evil += ["c2 AAAA %s" % REAL_AAAA, "samezone CNAME c2d", "cn CNAME target.ok.test."]
    return {
        "evil.test": harness.zone_text("evil.test", evil),
        "ok.test": harness.zone_text("ok.test", [
            "allowed CNAME c2b.evil.test.", "alias CNAME c2c.evil.test.",
            "target A %s" % REAL["cn.evil.test"]]),
        "victim.test": harness.zone_text("victim.test", [
            "www A %s" % REAL["www.victim.test"]]),
    }


FEED = feed([entry("T-0001", LISTED)], allow=["allowed.ok.test"])
UNBOUND_EXTRA = [
    "access-control: 127.0.0.0/8 allow_snoop",
    "serve-expired: yes",
    "prefetch: yes",
]
# Ways a client asks: (label, kdig options, DO bit).
VARIANTS = [
    ("RD=1", (), False),
    ("CD=1", ("+cdflag",), False),
    ("DO", (), True),
    ("RD=0", ("+norecurse",), False),
    ("RD=0 CD=1", ("+norecurse", "+cdflag"), False),
]


def settings(match_cname=True, watch=0):
    return {"feed": "feed.json", "sinkhole": {"a": SINKHOLE_A, "aaaa": SINKHOLE_AAAA},
            "match-cname": match_cname, "watch-interval": watch}


class NoBypassCase(unittest.TestCase):
    """Asserts shared by the path tests."""

    unbound = None

    def assertNotServed(self, name):
        """No way of asking gets name's real data, and the caches hold
        none of it."""
        dump = self.unbound.dump_cache()
        self.assertFalse(dump.has_message(name),
                         "%s: a message of the listed name is cached:\n%s" % (
                             name, [m for m in dump.messages if name in m[0]]))
        self.assertEqual(dump.rrsets_of(name), [],
                         "%s: rrsets of the listed name are cached" % name)
        for label, options, dnssec in VARIANTS:
            for qtype, sinkhole in (("A", SINKHOLE_A), ("AAAA", SINKHOLE_AAAA)):
                answer = self.unbound.query(name, qtype, options=options, dnssec=dnssec)
                self.assertEqual(answer.rdata(qtype), [sinkhole],
                                 "%s %s asked with %s: not the sinkhole:\n%s" % (
                                     name, qtype, label, answer.text))
                for section in ("answer", "authority", "additional"):
                    self.assertNotIn(REAL[name], answer.rdata("A", section), answer.text)


class PathsBase(NoBypassCase):
    MODULES = "dynlib validator iterator"
    QMIN = True
    MATCH_CNAME = True

    @classmethod
    def setUpClass(cls):
        label = "bypass-%s-%s-%s" % (
            cls.MODULES.split()[1], "qmin" if cls.QMIN else "noqmin",
            "cname" if cls.MATCH_CNAME else "nocname")
        workdir = harness.WorkDir(label)
        cls.addClassCleanup(workdir.cleanup)
        cls.nsd = harness.Nsd(workdir, zones())
        cls.addClassCleanup(cls.nsd.stop)
        cls.nsd.start()
        extra = UNBOUND_EXTRA + ["qname-minimisation: %s" % ("yes" if cls.QMIN else "no")]
        cls.unbound = harness.Unbound(
            workdir, {"evil.test": cls.nsd.port, "ok.test": cls.nsd.port},
            stub_hosts={"victim.test": "nshost.evil.test@%d" % cls.nsd.port},
            settings=settings(cls.MATCH_CNAME), feed=FEED, extra=extra,
            modules=cls.MODULES, threads=2)
        cls.addClassCleanup(cls.unbound.stop)
        cls.unbound.start()

    def test_names_below_a_listed_name(self):
        # With qname minimisation the iterator asks for c2.evil.test A on
        # the way to the name below it.
        answer = self.unbound.query("zz.c2.evil.test", "A")
        self.assertIn(answer.rcode, ("NXDOMAIN", "NOERROR"), answer.text)
        answer = self.unbound.query("zz.c2.evil.test", "AAAA", options=("+cdflag",))
        self.assertIn(answer.rcode, ("NXDOMAIN", "NOERROR"), answer.text)
        self.assertNotServed("c2.evil.test")

    def test_allow_listed_alias_to_a_listed_name(self):
        # The alias is allowed, so it resolves to the real address ...
        answer = self.unbound.query("allowed.ok.test", "A")
        self.assertIn(REAL["c2b.evil.test"], answer.rdata("A"), answer.text)
        # ... but the target asked directly is still blocked.
        self.assertNotServed("c2b.evil.test")

    def test_alias_to_a_listed_name(self):
        # match-cname on: the alias is blocked; off: it resolves.
        answer = self.unbound.query("alias.ok.test", "A")
        if self.MATCH_CNAME:
            self.assertEqual(answer.rdata("A"), [SINKHOLE_A], answer.text)
        else:
            self.assertIn(REAL["c2c.evil.test"], answer.rdata("A"), answer.text)
        self.assertNotServed("c2c.evil.test")

    def test_alias_in_the_listed_names_zone(self):
        # One response carries the alias and the listed target's address.
        answer = self.unbound.query("samezone.evil.test", "A")
        if self.MATCH_CNAME:
            self.assertEqual(answer.rdata("A"), [SINKHOLE_A], answer.text)
        else:
            self.assertIn(REAL["c2d.evil.test"], answer.rdata("A"), answer.text)
        self.assertNotServed("c2d.evil.test")

    def test_listed_name_server_host(self):
        # victim.test's server is found by resolving nshost.evil.test in a
        # sub-query of the iterator; the zone still resolves through it.
        answer = self.unbound.query("www.victim.test", "A")
        self.assertEqual(answer.rdata("A"), [REAL["www.victim.test"]], answer.text)
        self.assertNotServed("nshost.evil.test")


class PathsValidatorQmin(PathsBase):
    MODULES, QMIN, MATCH_CNAME = "dynlib validator iterator", True, True


class PathsValidatorNoQmin(PathsBase):
    MODULES, QMIN, MATCH_CNAME = "dynlib validator iterator", False, True


class PathsValidatorNoMatchCname(PathsBase):
    MODULES, QMIN, MATCH_CNAME = "dynlib validator iterator", True, False


class PathsIteratorQmin(PathsBase):
    MODULES, QMIN, MATCH_CNAME = "dynlib iterator", True, True


class PathsIteratorNoQmin(PathsBase):
    MODULES, QMIN, MATCH_CNAME = "dynlib iterator", False, True


class PathsIteratorNoMatchCname(PathsBase):
    MODULES, QMIN, MATCH_CNAME = "dynlib iterator", True, False


del PathsBase  # only its subclasses run

# seconds the proxy holds the slow names' answers, and from the start of
# Unbound to the start of an entry (longer under valgrind)
DELAY = 4.0 * (3 if harness.VALGRIND else 1)
START_GAP = 3 * (4 if harness.VALGRIND else 1)
WATCH = 1


class InFlightBase(NoBypassCase):
    """A resolution that starts before a name is listed and ends after: the
    proxy in front of NSD holds the answer while the feed changes."""

    MODULES = "dynlib validator iterator"
    MATCH_CNAME = True

    def setUp(self):
        workdir = harness.WorkDir("inflight-" + self.MODULES.split()[1])
        self.addCleanup(workdir.cleanup)
        self.nsd = harness.Nsd(workdir, zones())
        self.addCleanup(self.nsd.stop)
        self.nsd.start()
        self.proxy = rs.DelayProxy(self.nsd.port, delay=DELAY,
                                   slow=["late.evil.test", "starting.evil.test"])
        self.addCleanup(self.proxy.stop)
        self.proxy.start()
        self.start_at = int(time.time()) + START_GAP
        self.first_feed = feed([entry("T-0001", LISTED),
                                entry("T-0003", ["starting.evil.test"],
                                      start=rfc3339(self.start_at))], serial=1)
        # discard-timeout 0 and no qname minimisation: Unbound keeps the
        # client waiting through the proxy's delay (see test_optout.py).
        extra = UNBOUND_EXTRA + ["discard-timeout: 0", "qname-minimisation: no"]
        self.unbound = harness.Unbound(
            workdir, {"evil.test": self.proxy.port, "ok.test": self.nsd.port},
            settings=settings(self.MATCH_CNAME, watch=WATCH),
            feed=self.first_feed, extra=extra, modules=self.MODULES, threads=2)
        self.addCleanup(self.unbound.stop)
        self.unbound.start()

    def ask_in_background(self, name):
        result = {}

        def ask():
            try:
                result["answer"] = self.unbound.query(name, "A", timeout=int(DELAY) + 6)
            except harness.QueryError as error:
                result["error"] = error

        thread = threading.Thread(target=ask, daemon=True)
        thread.start()
        self.assertTrue(harness.wait_until(lambda: self.proxy.queries_for(name), 5),
                        "%s never reached the proxy" % name)
        return thread, result

    def finish(self, thread, result, name):
        thread.join(DELAY + 10)
        self.assertFalse(thread.is_alive())
        self.assertIn("answer", result, result)
        self.assertEqual(result["answer"].rdata("A"), [SINKHOLE_A],
                         "%s: the answer that came back after the name was listed is "
                         "not the sinkhole:\n%s" % (name, result["answer"].text))

    def swap_listing(self, names, within):
        """Hot swap to a feed that also lists names; wait for it and its
        purge."""
        loads = len(self.unbound.log_lines("new feed in force"))
        purges = len(self.unbound.purges())
        self.unbound.write_feed(feed([entry("T-0001", LISTED),
                                      entry("T-0002", names),
                                      entry("T-0003", ["starting.evil.test"],
                                            start=rfc3339(self.start_at))], serial=2))
        self.assertTrue(harness.wait_until(
            lambda: len(self.unbound.log_lines("new feed in force")) > loads
            and len(self.unbound.purges()) > purges, within),
            "the new feed was not in force (and purged) within %s s" % within)

    def test_resolution_in_flight_across_a_hot_swap(self):
        thread, result = self.ask_in_background("late.evil.test")
        self.swap_listing(["late.evil.test"], DELAY - 1)
        self.assertTrue(thread.is_alive(), "the answer came back before the swap")
        self.finish(thread, result, "late.evil.test")
        self.assertNotServed("late.evil.test")

    def test_cached_before_it_was_listed(self):
        # The alias and its target are cached (message and rrsets); once
        # the alias is listed, not even RD=0 may read its CNAME rrset.
        answer = self.unbound.query("cn.evil.test", "A")
        self.assertIn(REAL["cn.evil.test"], answer.rdata("A"), answer.text)
        self.assertTrue(self.unbound.dump_cache().rrsets_of("cn.evil.test", "CNAME"))
        self.swap_listing(["cn.evil.test"], WATCH + 10)
        self.assertNotServed("cn.evil.test")

    def test_resolution_in_flight_across_an_entry_start(self):
        self.assertLess(time.time(), self.start_at, "started too late to test")
        thread, result = self.ask_in_background("starting.evil.test")
        self.assertTrue(thread.is_alive())
        self.finish(thread, result, "starting.evil.test")
        self.assertNotServed("starting.evil.test")


class InFlightValidator(InFlightBase):
    MODULES, MATCH_CNAME = "dynlib validator iterator", True


class InFlightValidatorNoMatchCname(InFlightBase):
    MODULES, MATCH_CNAME = "dynlib validator iterator", False


class InFlightIterator(InFlightBase):
    MODULES, MATCH_CNAME = "dynlib iterator", True


class InFlightIteratorNoMatchCname(InFlightBase):
    MODULES, MATCH_CNAME = "dynlib iterator", False


del InFlightBase


if __name__ == "__main__":
    unittest.main()
