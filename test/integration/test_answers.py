"""The wire answers of the module (issue 4), end to end: a real Unbound 1.17.1
with dnsfilter.so, resolving from a real NSD, queried with kdig.

Every listed name also has real records in NSD, so a query the module fails
to catch gets a visibly different (real) answer. Each test asserts on the
wire answer, the log or dump_cache.
"""

import re
import unittest

import harness
from harness import entry, feed

ZONE = "ans.test"
SINKHOLE_A = "192.0.2.1"
SINKHOLE_AAAA = "2001:db8::1"
TTL = 42
SERIAL = 2024063001
REAL_C2_A = "198.51.100.1"
REAL_C2_AAAA = "2001:db8:bad::1"

RECORDS = [
    "www A 192.0.2.80",
    "www AAAA 2001:db8::80",
    "c2 A " + REAL_C2_A,
    "c2 AAAA " + REAL_C2_AAAA,
    "c2 MX 10 www",
    'c2 TXT "real txt"',
    "c2 HTTPS 1 . alpn=h2",
    "w A 198.51.100.50",
    "x.w A 198.51.100.51",
    "x.w MX 10 www",
    "ok.w A 198.51.100.52",
    "cls A 198.51.100.60",
    "mon A 198.51.100.70",
    # alias is not listed, its target is.
    "alias CNAME c2",
    # alias2's target is below a listed wildcard but in the allow list.
    "alias2 CNAME ok.w",
]
ZONES = {ZONE: harness.zone_text(ZONE, RECORDS)}


def name(label, zone=ZONE):
    return "%s.%s" % (label, zone)


def fqdn(label, zone=ZONE):
    return name(label, zone) + "."


FEED = feed([
    entry("T-0001", [name("c2"), name("cls")]),
    entry("T-0002", ["*.w." + ZONE], behavior="backdoor"),
    entry("T-0003", [name("mon")], action="monitor"),
], allow=[name("ok.w")], serial=SERIAL)

SOA_RDATA = "localhost. nobody.invalid. %d 3600 600 86400 %d" % (SERIAL, TTL)

# Unbound's own options: EDE on, and non-recursive (RD=0) queries allowed
# through the resolver (otherwise Unbound refuses them before any module:
# "refused nonrec (cache snoop) query").
SERVER_OPTIONS = ["ede: yes", "access-control: 127.0.0.0/8 allow_snoop"]


def settings(**overrides):
    value = {"feed": "feed.json",
             "sinkhole": {"a": SINKHOLE_A, "aaaa": SINKHOLE_AAAA},
             "ttl": TTL}
    value.update(overrides)
    return value


class AnswerAssertions:
    """Assertions shared by the test classes (a mixin)."""

    def assertSinkhole(self, answer, qname, expected):
        """NOERROR, the answer section exactly expected [(type, rdata)],
        owned by qname with the settings' TTL, AA and AD clear, QR and RA
        set, nothing in authority."""
        self.assertEqual(answer.rcode, "NOERROR", answer)
        got = sorted((rr.type, rr.rdata) for rr in answer.answer)
        self.assertEqual(got, sorted(expected), answer)
        for rr in answer.answer:
            self.assertEqual(rr.owner.lower(), qname.lower() + ".", answer)
            self.assertEqual(rr.rrclass, "IN", answer)
            self.assertEqual(rr.ttl, TTL, answer)
        self.assertTrue({"qr", "ra"} <= answer.flags, answer)
        self.assertNotIn("aa", answer.flags, answer)
        self.assertNotIn("ad", answer.flags, answer)
        self.assertEqual(answer.authority, [], answer)

    def assertNegative(self, answer, rcode, soa_owner):
        """rcode, empty answer, exactly one SOA in authority: owner
        soa_owner, TTL ttl, rdata with the feed's serial and ttl."""
        self.assertEqual(answer.rcode, rcode, answer)
        self.assertEqual(answer.answer, [], answer)
        self.assertEqual(len(answer.authority), 1, answer)
        soa = answer.authority[0]
        self.assertEqual((soa.owner.lower(), soa.rrclass, soa.type),
                         (soa_owner, "IN", "SOA"), answer)
        self.assertEqual(soa.ttl, TTL, answer)
        self.assertEqual(" ".join(soa.rdata.split()), SOA_RDATA, answer)
        self.assertTrue({"qr", "ra"} <= answer.flags, answer)
        self.assertNotIn("aa", answer.flags, answer)

    def assertNoSinkhole(self, answer):
        for rdata in answer.rdata():
            self.assertNotIn(rdata, (SINKHOLE_A, SINKHOLE_AAAA), answer)

    def wait_lines(self, unbound, pattern, count, timeout=3):
        """The log lines matching pattern, once there are count of them
        (bounded wait: the log is written as queries are answered)."""
        harness.wait_until(lambda: len(unbound.log_lines(pattern)) >= count, timeout)
        return unbound.log_lines(pattern)


class BlockedAnswerTest(AnswerAssertions, unittest.TestCase):
    """Default settings (other-types nodata, ede, match-cname) and Unbound
    with ede: yes; one stack for all."""

    @classmethod
    def setUpClass(cls):
        cls.nsd, cls.unbound = harness.start_stack(
            cls.addClassCleanup, "answers", ZONES, settings(), FEED,
            extra=SERVER_OPTIONS)

    def query(self, label, qtype="A", *options, **kwargs):
        return self.unbound.query(name(label), qtype, options=options, **kwargs)

    # -- A, AAAA, ANY ---------------------------------------------------

    def test_a_gets_sinkhole_a(self):
        self.assertSinkhole(self.query("c2", "A"), name("c2"), [("A", SINKHOLE_A)])

    def test_aaaa_gets_sinkhole_aaaa(self):
        self.assertSinkhole(self.query("c2", "AAAA"), name("c2"),
                            [("AAAA", SINKHOLE_AAAA)])

    def test_any_gets_both_sinkhole_addresses(self):
        self.assertSinkhole(self.query("c2", "ANY"), name("c2"),
                            [("A", SINKHOLE_A), ("AAAA", SINKHOLE_AAAA)])

    def test_wildcard_entry_a_and_aaaa(self):
        self.assertSinkhole(self.query("x.w", "A"), name("x.w"), [("A", SINKHOLE_A)])
        self.assertSinkhole(self.query("x.w", "AAAA"), name("x.w"),
                            [("AAAA", SINKHOLE_AAAA)])

    # -- header flags ---------------------------------------------------

    def test_rd_set_in_query_is_copied(self):
        answer = self.query("c2", "A", "+rd")
        self.assertSinkhole(answer, name("c2"), [("A", SINKHOLE_A)])
        self.assertIn("rd", answer.flags, answer)

    def test_rd_clear_in_query_is_copied(self):
        # Needs allow_snoop (SERVER_OPTIONS): else REFUSED by Unbound itself.
        answer = self.query("c2", "A", "+nord")
        self.assertSinkhole(answer, name("c2"), [("A", SINKHOLE_A)])
        self.assertNotIn("rd", answer.flags, answer)

    def test_cd_set_in_query_is_copied(self):
        answer = self.query("c2", "A", "+cd")
        self.assertSinkhole(answer, name("c2"), [("A", SINKHOLE_A)])
        self.assertIn("cd", answer.flags, answer)

    def test_cd_clear_in_query_is_not_set(self):
        answer = self.query("c2", "A", "+nocd")
        self.assertSinkhole(answer, name("c2"), [("A", SINKHOLE_A)])
        self.assertNotIn("cd", answer.flags, answer)

    def test_flags_over_tcp(self):
        answer = self.query("c2", "AAAA", "+nord", "+cd", tcp=True)
        self.assertSinkhole(answer, name("c2"), [("AAAA", SINKHOLE_AAAA)])
        self.assertEqual(answer.flags, {"qr", "ra", "cd"}, answer)

    # -- other qtypes: NODATA with SOA -----------------------------------

    def test_other_qtypes_get_nodata_with_soa_of_listed_name(self):
        for qtype in ("MX", "TXT", "HTTPS"):
            with self.subTest(qtype=qtype):
                self.assertNegative(self.query("c2", qtype), "NOERROR", fqdn("c2"))

    def test_wildcard_nodata_soa_owner_is_the_base_name(self):
        # *.w.ans.test matched: the SOA is owned by w.ans.test.
        self.assertNegative(self.query("x.w", "MX"), "NOERROR", fqdn("w"))
        self.assertNegative(self.query("deep.x.w", "TXT"), "NOERROR", fqdn("w"))

    # -- qclass ---------------------------------------------------------

    def test_non_in_class_is_not_sinkholed(self):
        before = len(self.unbound.block_lines(name("cls"), "A", "T-0001"))
        for qclass in ("CH", "CLASS3", "CLASS4", "CLASS254"):
            with self.subTest(qclass=qclass):
                answer = self.unbound.query(name("cls"), "A", options=["-c", qclass])
                self.assertNoSinkhole(answer)
                self.assertNotEqual(answer.question[1], "IN", answer)
        # The same name in IN is listed (so the pass above is the class).
        self.assertSinkhole(self.query("cls", "A"), name("cls"), [("A", SINKHOLE_A)])
        lines = self.wait_lines(self.unbound, r"dnsfilter: block %s A " % re.escape(fqdn("cls")),
                                before + 1)
        self.assertEqual(len(lines), before + 1, lines)

    # -- EDE -----------------------------------------------------------

    def test_ede_blocked_with_entry_id(self):
        for label, qtype, entry_id in (("c2", "A", "T-0001"), ("c2", "MX", "T-0001"),
                                       ("x.w", "AAAA", "T-0002")):
            with self.subTest(name=label, qtype=qtype):
                answer = self.query(label, qtype, "+edns")
                self.assertIn((15, entry_id), answer.ede, answer)

    def test_no_ede_on_real_answers(self):
        answer = self.query("www", "A", "+edns")
        self.assertEqual(answer.rdata("A"), ["192.0.2.80"], answer)
        self.assertEqual(answer.ede, [], answer)

    # -- match-cname ---------------------------------------------------

    def test_cname_to_listed_name_gets_sinkhole_for_original_name(self):
        qname = name("alias")
        before = len(self.unbound.log_lines(
            r"dnsfilter: block %s A T-0001 via cname$" % re.escape(qname + ".")))
        answer = self.unbound.query(qname, "A")
        # Only the sinkhole A, owned by alias: no CNAME, no real address.
        self.assertSinkhole(answer, qname, [("A", SINKHOLE_A)])
        lines = self.wait_lines(
            self.unbound, r"dnsfilter: block %s A T-0001 via cname$" % re.escape(qname + "."),
            before + 1)
        self.assertEqual(len(lines), before + 1, self.unbound.output()[-2000:])

    def test_cname_to_allowed_name_is_not_filtered(self):
        answer = self.query("alias2", "A")
        self.assertEqual(answer.rcode, "NOERROR", answer)
        self.assertEqual(answer.rdata("CNAME"), [fqdn("ok.w")], answer)
        self.assertEqual(answer.rdata("A"), ["198.51.100.52"], answer)
        self.assertEqual(self.unbound.log_lines(
            r"dnsfilter: .*(%s|%s)" % (re.escape(fqdn("alias2")), re.escape(fqdn("ok.w")))), [])

    def test_allowed_name_below_wildcard_is_not_filtered(self):
        answer = self.query("ok.w", "A")
        self.assertEqual(answer.rdata("A"), ["198.51.100.52"], answer)

    # -- monitor entry ---------------------------------------------------

    def test_monitor_entry_passes_real_answer_and_logs_each_query(self):
        qname = name("mon")
        pattern = r"dnsfilter: monitor %s A T-0003$" % re.escape(qname + ".")
        before = len(self.unbound.log_lines(pattern))
        for i in range(2):
            answer = self.unbound.query(qname, "A", options=["+edns"])
            self.assertEqual(answer.rcode, "NOERROR", answer)
            self.assertEqual(answer.rdata("A"), ["198.51.100.70"], answer)
            self.assertLessEqual(answer.answer[0].ttl, 300, answer)
            self.assertEqual(answer.ede, [], answer)
            lines = self.wait_lines(self.unbound, pattern, before + i + 1)
            self.assertEqual(len(lines), before + i + 1,
                             "query %d not logged:\n%s" % (i + 1, self.unbound.output()[-2000:]))
        dump = self.unbound.dump_cache()
        self.assertFalse(dump.has_message(qname), dump.text)
        self.assertEqual(dump.rrsets_of(qname), [], dump.text)


class DnssecTest(AnswerAssertions, unittest.TestCase):
    """A signed zone with a trust anchor and no domain-insecure: the
    validator really validates it. The sinkhole answer is neither AD nor
    SERVFAIL."""

    ZONE = "sec.test"

    @classmethod
    def setUpClass(cls):
        keys = harness.WorkDir("keys")
        cls.addClassCleanup(keys.cleanup)
        records = ["www A 192.0.2.80", "c2 A 198.51.100.1", "c2 AAAA 2001:db8:bad::1",
                   "c2 MX 10 www", "x.w A 198.51.100.51"]
        signed, ds = harness.sign_zone(keys, cls.ZONE, harness.zone_text(cls.ZONE, records))
        document = feed([entry("T-0001", [name("c2", cls.ZONE)]),
                         entry("T-0002", ["*.w." + cls.ZONE])], serial=SERIAL)
        cls.nsd, cls.unbound = harness.start_stack(
            cls.addClassCleanup, "dnssec", {cls.ZONE: signed}, settings(), document,
            extra=['trust-anchor: "%s"' % ds], domain_insecure=False)

    def test_validation_is_active(self):
        answer = self.unbound.query(name("www", self.ZONE), "A", dnssec=True)
        self.assertEqual(answer.rcode, "NOERROR", answer)
        self.assertEqual(answer.rdata("A"), ["192.0.2.80"], answer)
        self.assertIn("ad", answer.flags, answer)
        self.assertTrue(answer.rdata("RRSIG"), answer)

    def test_listed_name_gets_sinkhole_without_ad_or_servfail(self):
        cases = [("c2", "A", [("A", SINKHOLE_A)]),
                 ("c2", "AAAA", [("AAAA", SINKHOLE_AAAA)]),
                 ("x.w", "A", [("A", SINKHOLE_A)])]
        variants = [((), False), (("+dnssec",), True), (("+cd",), False),
                    (("+dnssec", "+cd"), True), (("+adflag",), False)]
        for label, qtype, expected in cases:
            for options, do in variants:
                with self.subTest(name=label, qtype=qtype, options=options):
                    answer = self.unbound.query(name(label, self.ZONE), qtype,
                                                options=options)
                    self.assertSinkhole(answer, name(label, self.ZONE), expected)
                    self.assertEqual("cd" in answer.flags, "+cd" in options, answer)
                    self.assertEqual(answer.rdata("RRSIG"), [], answer)
                    if do:
                        self.assertTrue(any("flags: do" in line for line in answer.edns),
                                        answer)

    def test_listed_name_other_type_nodata_without_ad_or_servfail(self):
        for options in ((), ("+dnssec",), ("+dnssec", "+cd")):
            with self.subTest(options=options):
                answer = self.unbound.query(name("c2", self.ZONE), "MX", options=options)
                self.assertNegative(answer, "NOERROR", fqdn("c2", self.ZONE))
                self.assertNotIn("ad", answer.flags, answer)


class EdeOffTest(AnswerAssertions, unittest.TestCase):
    """No EDE unless both Unbound's ede and the module's ede are on."""

    def start(self, label, module_ede, unbound_ede):
        extra = ["ede: yes"] if unbound_ede else []
        overrides = {} if module_ede is None else {"ede": module_ede}
        return harness.start_stack(self.addCleanup, label, ZONES, settings(**overrides),
                                   FEED, extra=extra)[1]

    def test_absent_when_unbound_ede_off(self):
        unbound = self.start("edeoff", None, False)
        answer = unbound.query(name("c2"), "A", options=["+edns"])
        self.assertSinkhole(answer, name("c2"), [("A", SINKHOLE_A)])
        self.assertEqual(answer.ede, [], answer)

    def test_absent_when_settings_ede_false(self):
        unbound = self.start("edefalse", False, True)
        for qtype in ("A", "MX"):
            answer = unbound.query(name("c2"), qtype, options=["+edns"])
            self.assertEqual(answer.rcode, "NOERROR", answer)
            self.assertEqual(answer.ede, [], answer)
        self.assertEqual(unbound.query(name("c2"), "A").rdata("A"), [SINKHOLE_A])


class MatchCnameOffTest(AnswerAssertions, unittest.TestCase):
    def test_alias_gets_real_chain(self):
        nsd, unbound = harness.start_stack(
            self.addCleanup, "nocname", ZONES, settings(**{"match-cname": False}), FEED)
        answer = unbound.query(name("alias"), "A")
        self.assertEqual(answer.rcode, "NOERROR", answer)
        self.assertEqual(answer.rdata("CNAME"), [fqdn("c2")], answer)
        self.assertEqual(answer.rdata("A"), [REAL_C2_A], answer)
        self.assertEqual(unbound.log_lines("via cname"), [])
        # The listed name itself is still sinkholed.
        self.assertSinkhole(unbound.query(name("c2"), "A"), name("c2"), [("A", SINKHOLE_A)])


class OtherTypesTest(AnswerAssertions, unittest.TestCase):
    def test_nxdomain_with_soa(self):
        nsd, unbound = harness.start_stack(
            self.addCleanup, "nxdomain", ZONES, settings(**{"other-types": "nxdomain"}), FEED)
        for qtype in ("MX", "TXT", "HTTPS"):
            with self.subTest(qtype=qtype):
                self.assertNegative(unbound.query(name("c2"), qtype), "NXDOMAIN", fqdn("c2"))
        self.assertNegative(unbound.query(name("x.w"), "MX"), "NXDOMAIN", fqdn("w"))
        self.assertSinkhole(unbound.query(name("c2"), "A"), name("c2"), [("A", SINKHOLE_A)])

    def test_pass_gives_real_answer_for_other_types_only(self):
        nsd, unbound = harness.start_stack(
            self.addCleanup, "pass", ZONES, settings(**{"other-types": "pass"}), FEED)
        answer = unbound.query(name("c2"), "MX")
        self.assertEqual(answer.rcode, "NOERROR", answer)
        self.assertEqual(answer.rdata("MX"), ["10 " + fqdn("www")], answer)
        answer = unbound.query(name("c2"), "TXT")
        self.assertEqual(answer.rdata("TXT"), ['"real txt"'], answer)
        self.assertSinkhole(unbound.query(name("c2"), "A"), name("c2"), [("A", SINKHOLE_A)])
        self.assertSinkhole(unbound.query(name("c2"), "AAAA"), name("c2"),
                            [("AAAA", SINKHOLE_AAAA)])
        self.assertSinkhole(unbound.query(name("c2"), "ANY"), name("c2"),
                            [("A", SINKHOLE_A), ("AAAA", SINKHOLE_AAAA)])
        # A second MX is the real answer again (not turned into a sinkhole).
        self.assertEqual(unbound.query(name("c2"), "MX").rdata("MX"), ["10 " + fqdn("www")])


class MonitorModeTest(AnswerAssertions, unittest.TestCase):
    """Global mode monitor: block entries act as monitor."""

    @classmethod
    def setUpClass(cls):
        cls.nsd, cls.unbound = harness.start_stack(
            cls.addClassCleanup, "monitor", ZONES, settings(mode="monitor"), FEED,
            extra=SERVER_OPTIONS)

    def test_real_answer_and_log_for_each_query(self):
        qname = name("c2")
        for qtype, real in (("A", REAL_C2_A), ("AAAA", REAL_C2_AAAA)):
            pattern = r"dnsfilter: monitor %s %s T-0001$" % (re.escape(qname + "."), qtype)
            before = len(self.unbound.log_lines(pattern))
            for i in range(2):
                answer = self.unbound.query(qname, qtype, options=["+edns"])
                self.assertEqual(answer.rcode, "NOERROR", answer)
                self.assertEqual(answer.rdata(qtype), [real], answer)
                self.assertEqual(answer.ede, [], answer)
                lines = self.wait_lines(self.unbound, pattern, before + i + 1)
                self.assertEqual(len(lines), before + i + 1, self.unbound.output()[-2000:])
            dump = self.unbound.dump_cache()
            self.assertFalse(dump.has_message(qname, qtype), dump.text)
        self.assertEqual(self.unbound.log_lines(r"dnsfilter: block "), [])

    def test_wildcard_and_other_types_pass(self):
        self.assertEqual(self.unbound.query(name("x.w"), "A").rdata("A"), ["198.51.100.51"])
        self.assertEqual(self.unbound.query(name("x.w"), "MX").rdata("MX"),
                         ["10 " + fqdn("www")])

    def test_cname_chain_is_monitored_not_sinkholed(self):
        qname = name("alias")
        answer = self.unbound.query(qname, "A")
        self.assertEqual(answer.rdata("CNAME"), [fqdn("c2")], answer)
        self.assertEqual(answer.rdata("A"), [REAL_C2_A], answer)
        lines = self.wait_lines(
            self.unbound, r"dnsfilter: monitor %s A T-0001 via cname$" % re.escape(qname + "."),
            1)
        self.assertTrue(lines, self.unbound.output()[-2000:])


if __name__ == "__main__":
    unittest.main()
