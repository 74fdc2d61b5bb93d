"""The harness itself, without the module: NSD + Unbound ("validator
iterator") start, answer through the stub-zone, parse and stop cleanly.
If these fail, the dnsfilter tests' failures say nothing about the module."""

import ipaddress
import os
import time
import unittest

import harness

ZONE = "harness.test"


class HarnessTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.workdir = harness.WorkDir("harness")
        cls.addClassCleanup(cls.workdir.cleanup)
        cls.nsd = harness.Nsd(cls.workdir, {ZONE: harness.zone_text(ZONE, [
            "www A 192.0.2.80",
            "www AAAA 2001:db8::80",
            "alias CNAME www",
            'txt TXT "two words"',
            "@ MX 10 www",
        ])})
        cls.addClassCleanup(cls.nsd.stop)
        cls.nsd.start()
        cls.unbound = harness.Unbound(cls.workdir, {ZONE: cls.nsd.port}, module=False)
        cls.addClassCleanup(cls.unbound.stop)
        cls.unbound.start()

    def test_nsd_answers_authoritatively(self):
        answer = self.nsd.query("www." + ZONE)
        self.assertEqual(answer.rcode, "NOERROR")
        self.assertIn("aa", answer.flags)
        self.assertEqual(answer.rdata("A"), ["192.0.2.80"])

    def test_unbound_resolves_through_stub(self):
        answer = self.unbound.query("www." + ZONE, "AAAA")
        self.assertEqual(answer.rcode, "NOERROR")
        self.assertTrue({"qr", "rd", "ra"} <= answer.flags, answer)
        self.assertNotIn("aa", answer.flags)
        self.assertEqual(answer.answer[0].owner, "www.%s." % ZONE)
        self.assertEqual(answer.answer[0].type, "AAAA")
        self.assertEqual(answer.rdata("AAAA"), ["2001:db8::80"])
        self.assertLessEqual(answer.answer[0].ttl, 300)

    def test_parser_reads_cname_chain_txt_and_authority(self):
        answer = self.unbound.query("alias." + ZONE)
        self.assertEqual([rr.type for rr in answer.answer], ["CNAME", "A"])
        self.assertEqual(answer.rdata("TXT"), [])
        self.assertEqual(self.unbound.query("txt." + ZONE, "TXT").rdata("TXT"),
                         ['"two words"'])
        nodata = self.unbound.query("www." + ZONE, "MX")
        self.assertEqual((nodata.rcode, nodata.answer), ("NOERROR", []))
        self.assertEqual([rr.type for rr in nodata.authority], ["SOA"])
        nx = self.unbound.query("nope." + ZONE)
        self.assertEqual(nx.rcode, "NXDOMAIN")

    def test_question_case_is_echoed(self):
        answer = self.unbound.query("WwW.%s" % ZONE.upper())
        self.assertEqual(answer.question, ("WwW.%s." % ZONE.upper(), "IN", "A"))

    def test_edns_section_is_parsed(self):
        answer = self.unbound.query("www." + ZONE, dnssec=True)
        self.assertTrue(any("flags: do" in line for line in answer.edns), answer)

    def test_unbound_control_works(self):
        self.unbound.query("www." + ZONE)
        result = self.unbound.control("dump_cache")
        self.assertEqual(result.returncode, 0, result.stdout)
        self.assertIn("www.%s." % ZONE, result.stdout)

    def test_names_outside_the_stub_zones_never_leave_loopback(self):
        # The root hints name one server, a.root.invalid. on a loopback
        # address that Unbound may not query: a name outside the stub zones
        # fails at once, without a packet. The log shows the priming used
        # those hints, and the infrastructure cache (every server Unbound
        # has sent to) holds loopback addresses only.
        with open(self.unbound.conf) as conf:
            text = conf.read()
        self.assertIn('root-hints: "%s"' % self.workdir.file("root.hints"), text)
        self.assertIn("do-not-query-address: %s" % harness.ROOT_HINT_ADDRESS, text)
        mark = self.unbound.log_size()
        started = time.monotonic()
        answer = self.unbound.query("www.example.com", timeout=10)
        elapsed = time.monotonic() - started
        self.assertEqual(answer.rcode, "SERVFAIL", answer)
        self.assertLess(elapsed, 2, "a failure that slow went looking somewhere")
        log = self.unbound.log_since(mark)
        self.assertIn("priming . IN NS", log)
        self.assertIn("a.root.invalid.", log)
        self.assertNotIn("root-servers.net", log)
        infra = self.unbound.control("dump_infra")
        self.assertEqual(infra.returncode, 0, infra.stdout)
        servers = {line.split()[0].split("@")[0] for line in infra.stdout.splitlines()
                   if line.strip()}
        self.assertTrue(all(ipaddress.ip_address(server).is_loopback for server in servers),
                        infra.stdout)

    def test_no_answer_raises_query_error(self):
        with self.assertRaises(harness.QueryError):
            harness.kdig(harness.free_port(), "www." + ZONE, timeout=1)


class HarnessStopTest(unittest.TestCase):
    def test_stop_leaves_no_process(self):
        workdir = harness.WorkDir("stop")
        self.addCleanup(workdir.cleanup)
        nsd = harness.Nsd(workdir, {ZONE: harness.zone_text(ZONE, [])}).start()
        self.addCleanup(nsd.stop)
        unbound = harness.Unbound(workdir, {ZONE: nsd.port}, module=False).start()
        self.addCleanup(unbound.stop)
        pids = [nsd.process.pid, unbound.process.pid]
        unbound.stop()
        nsd.stop()
        for pid in pids:
            with self.assertRaises(ProcessLookupError):
                os.kill(pid, 0)
        with self.assertRaises(harness.QueryError):
            harness.kdig(unbound.port, ZONE, "SOA", timeout=1)

    def test_failed_start_is_reported_with_log(self):
        workdir = harness.WorkDir("badstart")
        self.addCleanup(workdir.cleanup)
        unbound = harness.Unbound(workdir, {ZONE: harness.free_port()}, module=False,
                                  extra=["no-such-option: yes"])
        self.addCleanup(unbound.stop)
        with self.assertRaises(harness.StartError) as caught:
            unbound.start()
        self.assertIn("no-such-option", str(caught.exception))


if __name__ == "__main__":
    unittest.main()
