"""The module's foundation, end to end: a real Unbound loading dnsfilter.so
through dynlib, resolving dnsf.test. from a real NSD, queried with kdig.

Every name the feed lists also has a real record in NSD, so a query the
module fails to catch gets a visibly different (real) answer.
"""

import os
import re
import subprocess
import unittest

import harness
from harness import entry, feed

ZONE = "dnsf.test"
RECORDS = [
    "www A 192.0.2.80",
    "www AAAA 2001:db8::80",
    "evil A 198.51.100.100",
    "c2.evil A 198.51.100.1",
    "c2.evil AAAA 2001:db8:bad::1",
    "c2.evil MX 10 www",
    "again.evil A 198.51.100.7",
    "w A 198.51.100.50",
    "x.w A 198.51.100.51",
    "y.x.w A 198.51.100.52",
]
ZONES = {ZONE: harness.zone_text(ZONE, RECORDS)}
FEED = feed([
    entry("T-0001", ["c2.evil." + ZONE, "again.evil." + ZONE]),
    entry("T-0002", ["*.w." + ZONE], behavior="backdoor"),
])
# Non-default values, to prove the module uses the settings.
SINKHOLE_A = "192.0.2.1"
SINKHOLE_AAAA = "2001:db8::1"
TTL = 42


def settings(**overrides):
    value = {"feed": "feed.json",
             "sinkhole": {"a": SINKHOLE_A, "aaaa": SINKHOLE_AAAA},
             "ttl": TTL, "other-types": "nodata"}
    value.update(overrides)
    return value


def name(label):
    return "%s.%s" % (label, ZONE)


class SinkholeTest(unittest.TestCase):
    """One Unbound with dnsfilter (other-types nodata) for all tests."""

    @classmethod
    def setUpClass(cls):
        cls.nsd, cls.unbound = harness.start_stack(
            cls.addClassCleanup, "foundation", ZONES, settings(), FEED)

    def assertSinkhole(self, answer, qname, qtype, address):
        self.assertEqual(answer.rcode, "NOERROR", answer)
        self.assertEqual(len(answer.answer), 1, answer)
        rr = answer.answer[0]
        self.assertEqual(rr.owner.lower(), qname.lower() + ".", answer)
        self.assertEqual((rr.rrclass, rr.type, rr.rdata), ("IN", qtype, address), answer)
        self.assertEqual(rr.ttl, TTL, answer)

    def assertReal(self, answer, address):
        self.assertEqual(answer.rcode, "NOERROR", answer)
        self.assertEqual(answer.rdata("A"), [address], answer)

    def test_listed_name_a_gets_sinkhole_a_with_settings_ttl(self):
        self.assertSinkhole(self.unbound.query(name("c2.evil"), "A"),
                            name("c2.evil"), "A", SINKHOLE_A)

    def test_listed_name_aaaa_gets_sinkhole_aaaa(self):
        self.assertSinkhole(self.unbound.query(name("c2.evil"), "AAAA"),
                            name("c2.evil"), "AAAA", SINKHOLE_AAAA)

    def test_sinkhole_answer_has_qr_ra_and_no_aa(self):
        answer = self.unbound.query(name("c2.evil"), "A")
        self.assertTrue({"qr", "ra", "rd"} <= answer.flags, answer)
        self.assertNotIn("aa", answer.flags, answer)

    def test_listed_name_other_qtype_gets_nodata(self):
        answer = self.unbound.query(name("c2.evil"), "MX")
        self.assertEqual(answer.rcode, "NOERROR", answer)
        self.assertEqual(answer.answer, [], answer)

    def test_wildcard_matches_names_below(self):
        for label in ("x.w", "y.x.w"):
            with self.subTest(name=name(label)):
                self.assertSinkhole(self.unbound.query(name(label), "A"),
                                    name(label), "A", SINKHOLE_A)

    def test_wildcard_does_not_match_apex(self):
        self.assertReal(self.unbound.query(name("w"), "A"), "198.51.100.50")

    def test_mixed_case_query_is_sinkholed_and_question_case_kept(self):
        qname = "C2.EvIl." + ZONE
        answer = self.unbound.query(qname, "A")
        self.assertEqual(answer.question, (qname + ".", "IN", "A"), answer)
        self.assertSinkhole(answer, qname, "A", SINKHOLE_A)

    def test_unlisted_name_gets_real_answer(self):
        self.assertReal(self.unbound.query(name("www"), "A"), "192.0.2.80")
        answer = self.unbound.query(name("www"), "AAAA")
        self.assertEqual(answer.rdata("AAAA"), ["2001:db8::80"], answer)

    def test_parent_of_listed_name_gets_real_answer(self):
        self.assertReal(self.unbound.query(name("evil"), "A"), "198.51.100.100")

    def test_repeated_query_is_answered_by_module_not_cache(self):
        qname = name("again.evil")
        queries = 3
        for _ in range(queries):
            self.assertSinkhole(self.unbound.query(qname, "A"), qname, "A", SINKHOLE_A)
        # The log is written as queries are answered; allow it a moment.
        harness.wait_until(
            lambda: len(self.unbound.block_lines(qname, "A", "T-0001")) >= queries, 3)
        lines = self.unbound.block_lines(qname, "A", "T-0001")
        self.assertEqual(len(lines), queries,
                         "block log lines: %r\n%s" % (lines, self.unbound.output()[-3000:]))
        # A real answer is cached (so dump_cache shows what it holds) ...
        self.unbound.query(name("www"), "A")
        dump = self.unbound.control("dump_cache")
        self.assertEqual(dump.returncode, 0, dump.stdout)
        self.assertIn("www.%s." % ZONE, dump.stdout.lower())
        # ... but the sinkholed name is nowhere in it.
        self.assertNotRegex(dump.stdout.lower(), re.escape(qname.lower() + "."))


class OtherTypesNxdomainTest(unittest.TestCase):
    """other-types: nxdomain, in an Unbound of its own."""

    @classmethod
    def setUpClass(cls):
        cls.nsd, cls.unbound = harness.start_stack(
            cls.addClassCleanup, "nxdomain", ZONES,
            settings(**{"other-types": "nxdomain"}), FEED)

    def test_listed_name_other_qtype_gets_nxdomain(self):
        answer = self.unbound.query(name("c2.evil"), "MX")
        self.assertEqual(answer.rcode, "NXDOMAIN", answer)
        self.assertEqual(answer.answer, [], answer)

    def test_listed_name_a_still_gets_sinkhole(self):
        answer = self.unbound.query(name("c2.evil"), "A")
        self.assertEqual(answer.rcode, "NOERROR", answer)
        self.assertEqual(answer.rdata("A"), [SINKHOLE_A], answer)


class SettingsLocationTest(unittest.TestCase):
    def test_settings_found_in_unbound_directory_without_env(self):
        nsd, unbound = harness.start_stack(
            self.addCleanup, "directory", ZONES, settings(), FEED, conf_env=False)
        answer = unbound.query(name("c2.evil"), "A")
        self.assertEqual(answer.rdata("A"), [SINKHOLE_A], answer)


class RefusedStartTest(unittest.TestCase):
    """A broken feed or settings file: Unbound exits non-zero at start, and
    its log says why in a line from the module."""

    def launch(self, label, settings_document, feed_document):
        workdir = harness.WorkDir(label)
        self.addCleanup(workdir.cleanup)
        # No NSD needed: Unbound must not get as far as resolving.
        unbound = harness.Unbound(workdir, {ZONE: harness.free_port()},
                                  settings=settings_document, feed=feed_document)
        self.addCleanup(unbound.stop)
        unbound.launch()
        return unbound

    def assertRefused(self, unbound, problem):
        code = unbound.wait_exit(harness.START_TIMEOUT)
        log = unbound.output()
        self.assertIsNotNone(code, "Unbound still running after %ss:\n%s"
                             % (harness.START_TIMEOUT, log[-3000:]))
        self.assertNotEqual(code, 0, log[-3000:])
        lines = [line for line in log.splitlines() if "dnsfilter:" in line]
        self.assertTrue(lines, "no 'dnsfilter:' line in the log:\n" + log[-3000:])
        self.assertRegex("\n".join(lines), problem, log[-3000:])

    def test_invalid_json_feed_refuses_start(self):
        broken = '{"format": "dnsfilter-feed/1", "serial": 1, "entries": [{"id": '
        unbound = self.launch("badjson", settings(), broken)
        self.assertRefused(unbound, r"(?i)json")

    def test_bad_name_in_feed_refuses_start(self):
        bad = "c2 evil!." + ZONE
        document = feed([entry("T-0001", [name("c2.evil")]), entry("T-BAD", [bad])])
        unbound = self.launch("badname", settings(), document)
        self.assertRefused(unbound, re.escape(bad))

    def test_missing_feed_file_refuses_start(self):
        unbound = self.launch("nofeed", settings(feed="no-such-feed.json"), None)
        self.assertRefused(unbound, r"no-such-feed\.json")

    def test_unknown_settings_key_refuses_start(self):
        unbound = self.launch("badkey", settings(colour="blue"), FEED)
        self.assertRefused(unbound, r"colour")

    def test_feed_text_cannot_forge_a_log_line(self):
        # A name, an id and a key holding a newline and the start of a
        # line of Unbound's log: each is quoted escaped, on its own line.
        forged = "error: dnsfilter: FORGED"
        document = feed([entry("T-0001\n" + forged + " id", [name("c2.evil")], start="x"),
                         entry("T-BAD", ["bad\n" + forged + " name." + ZONE])])
        document["x\n" + forged + " key"] = 1
        unbound = self.launch("forged", settings(), document)
        self.assertRefused(unbound, re.escape(r'"bad\n' + forged + ' name.'))
        log = unbound.output()
        for line in log.splitlines():
            if "FORGED" in line:
                self.assertRegex(line, r"\\n" + re.escape(forged),
                                 "a line of the log starts with feed text:\n" + log[-3000:])
        self.assertEqual(len([l for l in log.splitlines() if "FORGED" in l]), 3, log[-3000:])


class HostCheckTest(unittest.TestCase):
    """The module refuses an Unbound of another version, or of the same
    version configured with other layout-relevant options: a copy of the
    real binary with its version string or its configure line changed."""

    def patched_unbound(self, workdir, old, new):
        self.assertEqual(len(old), len(new))
        with open(harness.tool("unbound"), "rb") as f:
            binary = f.read()
        self.assertTrue(old in binary, "%r not in %s" % (old, harness.tool("unbound")))
        path = workdir.file("unbound-patched")
        with open(path, "wb") as f:
            f.write(binary.replace(old, new))
        os.chmod(path, 0o755)
        return path

    def launch(self, old, new):
        workdir = harness.WorkDir("hostcheck")
        self.addCleanup(workdir.cleanup)
        unbound = harness.Unbound(workdir, {ZONE: harness.free_port()},
                                  settings=settings(), feed=FEED,
                                  executable=self.patched_unbound(workdir, old, new))
        self.addCleanup(unbound.stop)
        unbound.launch()
        code = unbound.wait_exit(harness.START_TIMEOUT)
        self.assertIsNotNone(code, "Unbound runs with the module:\n" + unbound.output()[-2000:])
        self.assertNotEqual(code, 0)
        return unbound.output()

    def test_other_version_is_refused(self):
        # the running binary's version (the tree's may be another: see
        # scripts/test's runs per version)
        shown = subprocess.run([harness.tool("unbound"), "-V"], stdout=subprocess.PIPE,
                               universal_newlines=True).stdout
        version = re.search(r"Version (\S+)", shown).group(1).encode()
        other = version[:-1] + (b"8" if version[-1:] != b"8" else b"9")
        log = self.launch(b"unbound " + version + b"\0", b"unbound " + other + b"\0")
        self.assertRegex(log, r"dnsfilter: this module was built for unbound %s and cannot "
                              r"run inside another Unbound version" % re.escape(
                                  version.decode()))

    def test_other_layout_options_are_refused(self):
        # The tree is configured --enable-subnet (CLIENT_SUBNET moves fields
        # of module_qstate); the patched binary's configure line lacks it.
        log = self.launch(b"--enable-subnet", b"--enable-subnex")
        self.assertRegex(log, r"dnsfilter: the running Unbound was configured without "
                              r"--enable-subnet, the tree this module was built against "
                              r"with it")


if __name__ == "__main__":
    unittest.main()
