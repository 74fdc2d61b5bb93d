"""Opt-out (SPEC sections 3, 5, 6): clients in optout.networks or in the
optout.file get real answers for listed names, are never logged, and their
real answer is not cached; the opt-out file is re-read on change (a bad
file keeps the networks in force, a later good one is picked up) and a bad
line at startup stops Unbound from starting.

Fail-safe merge: Unbound joins identical in-flight queries of several
clients into one resolution. A DelayProxy (refresh_support) between
Unbound's stub-zone and NSD holds back the answer for one name for about
2 s, so an opted-out client's query for that listed name stays in flight
while a filtered client asks the same; the filtered client must get the
sinkhole.

Clients: kdig from 127.0.0.1 (filtered) and, with -b, from other
127.0.0.0/8 addresses (all local on Linux).
"""

import json
import re
import sys
import threading
import time
import unittest

import harness
import refresh_support as rs
from harness import entry, feed

ZONE = "opt.test"
RECORDS = [
    "www A 192.0.2.80",
    "c2 A 198.51.100.1",
    "c2 AAAA 2001:db8:bad::1",
    "slow A 198.51.100.9",
    "slow2 A 198.51.100.10",
    "slow3 A 198.51.100.11",
    "slow4 A 198.51.100.12",
]
REAL = {"c2": "198.51.100.1", "slow": "198.51.100.9", "slow2": "198.51.100.10",
        "slow3": "198.51.100.11", "slow4": "198.51.100.12", "www": "192.0.2.80"}
ZONES = {ZONE: harness.zone_text(ZONE, RECORDS)}
FEED = feed([entry("T-0001", ["c2." + ZONE]),
             entry("T-0002", ["slow." + ZONE, "slow2." + ZONE, "slow3." + ZONE]),
             entry("T-0003", ["slow4." + ZONE], action="monitor")])
SINKHOLE_A = "192.0.2.1"
SINKHOLE_AAAA = "2001:db8::1"
FILTERED = "127.0.0.1"
OPTED_OUT = "127.0.0.2"        # optout.networks
OPTED_OUT_FILE = "127.0.0.3"   # optout.txt, a /32
OPTED_OUT_FILE_NET = "127.0.1.7"  # optout.txt, in a /24
NOT_OPTED_OUT = "127.0.0.4"
OPTOUT_FILE = """\
# opted-out customers, written by the portal
127.0.0.3/32    # one customer

127.0.1.0/24
"""
DELAY = 2.0
# Unbound settings for the slowed stub: without them Unbound itself gets in
# the way of a 2 s authoritative delay. discard-timeout (default 1900 ms,
# in Debian's 1.17.1) drops client replies older than that; with
# qname-minimisation the retransmissions after timeouts switch the query to
# the "skip minimisation" state and the answer is asked for a second time.
SLOW_STUB = ["discard-timeout: 0", "qname-minimisation: no"]
WATCH = 1
PICKUP = WATCH + 5


def name(label):
    return "%s.%s" % (label, ZONE)


def settings(networks=(OPTED_OUT + "/32",), optout_file="optout.txt"):
    value = {"feed": "feed.json", "sinkhole": {"a": SINKHOLE_A, "aaaa": SINKHOLE_AAAA},
             "watch-interval": WATCH, "optout": {"networks": list(networks)}}
    if optout_file:
        value["optout"]["file"] = optout_file
    return value


class Stack:
    """NSD, the DelayProxy in front of it, and Unbound (stub to the proxy)
    with dnsfilter and an opt-out file."""

    def __init__(self, test, label, settings_document=None, optout_text=OPTOUT_FILE):
        self.workdir = harness.WorkDir(label)
        test.addCleanup(self.workdir.cleanup)
        self.optout_path = self.workdir.write("optout.txt", optout_text)
        self.nsd = harness.Nsd(self.workdir, ZONES)
        test.addCleanup(self.nsd.stop)
        self.nsd.start()
        self.proxy = rs.DelayProxy(self.nsd.port, slow=[name("slow"), name("slow2"),
                                                        name("slow3"), name("slow4")],
                                   delay=DELAY)
        test.addCleanup(self.proxy.stop)
        self.proxy.start()
        self.unbound = harness.Unbound(
            self.workdir, {ZONE: self.proxy.port},
            settings=settings_document if settings_document is not None else settings(),
            feed=FEED, extra=SLOW_STUB)
        test.addCleanup(self.unbound.stop)

    def start(self):
        self.unbound.start()
        return self


def match_lines(unbound, label):
    """The module's block/monitor lines for a name (any type)."""
    return unbound.log_lines(r"dnsfilter: (block|monitor) %s\. " % re.escape(name(label)))


class OptoutTest(unittest.TestCase):

    def setUp(self):
        self.stack = Stack(self, "optout").start()
        self.unbound = self.stack.unbound

    def ask(self, label, source, qtype="A", **kwargs):
        return rs.query_from(self.unbound, name(label), qtype, source, **kwargs)

    def assertSinkholed(self, label, source, qtype="A", **kwargs):
        answer = self.ask(label, source, qtype, **kwargs)
        expected = SINKHOLE_A if qtype == "A" else SINKHOLE_AAAA
        self.assertEqual(answer.rdata(qtype), [expected],
                         "%s %s from %s: not the sinkhole:\n%s\n--- log ---\n%s" % (
                             name(label), qtype, source, answer.text,
                             rs.log_tail(self.unbound)))

    def assertReal(self, label, source, **kwargs):
        answer = self.ask(label, source, **kwargs)
        self.assertEqual(answer.rcode, "NOERROR", answer)
        self.assertEqual(answer.rdata("A"), [REAL[label]],
                         "%s from %s: not the real answer:\n%s\n--- log ---\n%s" % (
                             name(label), source, answer.text, rs.log_tail(self.unbound)))

    def assertNotCached(self, label):
        dump = self.unbound.control("dump_cache", timeout=30)
        self.assertEqual(dump.returncode, 0, dump.stdout)
        self.assertNotIn("msg %s. in a " % name(label), dump.stdout.lower(),
                         "the real answer of listed %s is in the message cache" % name(label))
        return dump.stdout

    def wait_optout(self, count):
        found = rs.wait_for_count(self.unbound, rs.OPTOUT_NEW, count, PICKUP)
        self.assertGreaterEqual(len(found), count, "\n".join(rs.dnsfilter_lines(self.unbound)))
        return found[count - 1]

    # -- opted-out clients ------------------------------------------------

    def test_opted_out_network_gets_real_answer_unlogged_uncached(self):
        self.assertReal("c2", OPTED_OUT)
        answer = self.ask("c2", OPTED_OUT, "AAAA")
        self.assertEqual(answer.rdata("AAAA"), ["2001:db8:bad::1"], answer)
        self.assertReal("c2", OPTED_OUT, tcp=True)
        time.sleep(0.3)
        self.assertEqual(match_lines(self.unbound, "c2"), [],
                         "an opted-out client's query was logged")
        dump = self.assertNotCached("c2")
        rrsets = [line for line in dump.splitlines()
                  if line.lower().startswith(name("c2") + ".")]
        if rrsets:
            sys.stderr.write("\n  note: rrset cache holds %r\n" % rrsets)
        # The filtered client right after: the sinkhole, and logged.
        self.assertSinkholed("c2", FILTERED)
        self.assertSinkholed("c2", FILTERED, "AAAA")
        self.assertSinkholed("c2", NOT_OPTED_OUT)
        self.assertTrue(harness.wait_until(
            lambda: len(match_lines(self.unbound, "c2")) == 3, 3),
            match_lines(self.unbound, "c2"))
        # And the opted-out client still gets the real answer after that.
        self.assertReal("c2", OPTED_OUT)
        time.sleep(0.3)
        self.assertEqual(len(match_lines(self.unbound, "c2")), 3)

    def test_opted_out_networks_from_file(self):
        self.assertReal("c2", OPTED_OUT_FILE)
        self.assertReal("c2", OPTED_OUT_FILE_NET)
        self.assertSinkholed("c2", NOT_OPTED_OUT)
        self.assertSinkholed("c2", "127.0.2.1")
        time.sleep(0.3)
        self.assertEqual(len(match_lines(self.unbound, "c2")), 2,
                         match_lines(self.unbound, "c2"))

    def test_cached_real_answer_of_unlisted_name_is_shared(self):
        # Opt-out changes nothing for names the feed does not list.
        self.assertReal("www", OPTED_OUT)
        self.assertReal("www", FILTERED)
        dump = self.unbound.control("dump_cache", timeout=30).stdout.lower()
        self.assertIn("msg %s. in a " % name("www"), dump)

    # -- refresh of the opt-out file ----------------------------------------

    def test_optout_file_refresh_bad_file_keeps_set_good_file_picked_up(self):
        self.assertSinkholed("c2", NOT_OPTED_OUT)
        # Add 127.0.0.4 by rename.
        rs.replace_by_rename(self.stack.optout_path, OPTOUT_FILE + "127.0.0.4/32\n")
        line = self.wait_optout(1)
        sys.stderr.write("\n  %s\n" % line.group(0))
        self.assertEqual(line.group("path").rsplit("/", 1)[-1], "optout.txt")
        self.assertReal("c2", NOT_OPTED_OUT)
        # A bad file (host bits set on line 2): the set in force stays.
        rs.replace_by_rename(self.stack.optout_path, "127.0.0.5/32\n127.0.0.1/8\n")
        stays = rs.wait_for_count(self.unbound, rs.OPTOUT_STAYS, 1, PICKUP)
        lines = "\n".join(rs.dnsfilter_lines(self.unbound))
        self.assertTrue(stays, "no 'the opt-out networks in force stay' line:\n" + lines)
        self.assertRegex(lines, r"optout\.txt: line 2: .*127\.0\.0\.1/8",
                         "the bad line is not named")
        self.assertReal("c2", NOT_OPTED_OUT)
        self.assertReal("c2", OPTED_OUT_FILE)
        self.assertSinkholed("c2", "127.0.0.5")
        # Garbage, rewritten in place: still the same set.
        rs.rewrite_in_place(self.stack.optout_path, "# portal\n127.0.0.6/32\nnot-a-network\n")
        stays = rs.wait_for_count(self.unbound, rs.OPTOUT_STAYS, 2, PICKUP)
        self.assertEqual(len(stays), 2, "\n".join(rs.dnsfilter_lines(self.unbound)))
        self.assertRegex("\n".join(rs.dnsfilter_lines(self.unbound)),
                         r"optout\.txt: line 3: .*not-a-network")
        self.assertReal("c2", NOT_OPTED_OUT)
        self.assertSinkholed("c2", "127.0.0.6")
        # The next good file: only 127.0.0.6 (and the networks setting).
        rs.rewrite_in_place(self.stack.optout_path, "127.0.0.6/32\n")
        line = self.wait_optout(2)
        sys.stderr.write("  %s\n" % line.group(0))
        self.assertReal("c2", "127.0.0.6")
        self.assertReal("c2", OPTED_OUT)  # optout.networks is kept
        self.assertSinkholed("c2", NOT_OPTED_OUT)
        self.assertSinkholed("c2", OPTED_OUT_FILE)
        self.assertTrue(self.unbound.process.running())

    # -- fail-safe merge --------------------------------------------------

    def merge(self, label, filtered_qname):
        """The opted-out client's query for a slowed listed name, and
        0.3 s later the filtered client's; return (opted-out answer,
        seconds, filtered answer, seconds)."""
        results = {}

        def opted_out_query():
            start = time.monotonic()
            try:
                results["opted_out"] = rs.query_from(
                    self.unbound, name(label), "A", OPTED_OUT, timeout=8)
            except harness.QueryError as e:
                results["opted_out"] = e
            results["opted_out_s"] = time.monotonic() - start

        thread = threading.Thread(target=opted_out_query)
        thread.start()
        time.sleep(0.3)
        start = time.monotonic()
        filtered = rs.query_from(self.unbound, filtered_qname, "A", FILTERED, timeout=8)
        filtered_s = time.monotonic() - start
        thread.join(15)
        return results.get("opted_out"), results.get("opted_out_s"), filtered, filtered_s

    def check_merge(self, label, filtered_qname):
        opted_out, opted_out_s, filtered, filtered_s = self.merge(label, filtered_qname)
        seen = self.stack.proxy.queries_for(name(label))
        report = ("opted-out client (%s) got %s after %.2f s; filtered client (%s, "
                  "qname %s) got %s after %.2f s; the authoritative side saw %d "
                  "queries for the name" % (
                      OPTED_OUT,
                      opted_out.rdata("A") if isinstance(opted_out, harness.Answer)
                      else repr(opted_out), opted_out_s or -1, FILTERED,
                      filtered_qname, filtered.rdata("A"), filtered_s, len(seen)))
        sys.stderr.write("\n  merge: %s\n" % report)
        self.assertTrue(seen, "the query never reached the authoritative side")
        # The filtered query must have joined the opted-out client's
        # resolution (answered when the slow answer came, not at once);
        # otherwise this test did not test the merge.
        self.assertGreater(filtered_s, 1.0,
                           "the filtered query was answered at once; Unbound did not "
                           "join it to the in-flight resolution: " + report)
        self.assertEqual(filtered.rdata("A"), [SINKHOLE_A],
                         "FAIL-SAFE BROKEN: %s\n%s\n--- log ---\n%s" % (
                             report, filtered.text, rs.log_tail(self.unbound)))
        # Afterwards a filtered client never gets the real address.
        self.assertSinkholed(label, FILTERED)
        self.assertNotCached(label)
        self.assertSinkholed(label, NOT_OPTED_OUT)
        return opted_out

    def test_fail_safe_merge_filtered_client_joins_opted_out_resolution(self):
        opted_out = self.check_merge("slow", name("slow"))
        self.assertIsInstance(opted_out, harness.Answer, opted_out)

    def test_fail_safe_merge_other_case(self):
        # The same question in another case is the same resolution.
        self.check_merge("slow2", name("slow2").upper())

    def test_fail_safe_merge_over_tcp_clients(self):
        # Clients over TCP are joined the same way.
        results = {}

        def opted_out_query():
            results["answer"] = rs.query_from(self.unbound, name("slow3"), "A", OPTED_OUT,
                                              timeout=8, tcp=True)

        thread = threading.Thread(target=opted_out_query)
        thread.start()
        time.sleep(0.3)
        start = time.monotonic()
        filtered = rs.query_from(self.unbound, name("slow3"), "A", FILTERED, timeout=8,
                                 tcp=True)
        elapsed = time.monotonic() - start
        thread.join(15)
        sys.stderr.write("\n  merge over TCP: opted-out got %s, filtered got %s after "
                         "%.2f s\n" % (results["answer"].rdata("A") if "answer" in results
                                       else None, filtered.rdata("A"), elapsed))
        self.assertGreater(elapsed, 1.0, "not joined")
        self.assertEqual(filtered.rdata("A"), [SINKHOLE_A], filtered.text)
        self.assertSinkholed("slow3", FILTERED)
        self.assertNotCached("slow3")


class SharedResolutionEventsTest(unittest.TestCase):
    """Events and counts of one resolution that an opted-out client began
    and filtered clients joined: each filtered client gets its event and is
    counted, for a blocked name and for a monitored one; the opted-out
    client gets neither (it is counted as opted out only)."""

    def setUp(self):
        document = settings()
        document["log"] = {"path": "events.jsonl"}
        document["stats"] = {"path": "stats.jsonl", "interval": 1}
        self.stack = Stack(self, "optevents", document).start()
        self.unbound = self.stack.unbound

    def shared(self, label):
        """The opted-out client asks for a slowed name, and 0.3 s later two
        filtered clients ask the same; {client: (answer, seconds)}."""
        results = {}

        def ask(source):
            start = time.monotonic()
            answer = rs.query_from(self.unbound, name(label), "A", source, timeout=8)
            results[source] = (answer, time.monotonic() - start)

        threads = [threading.Thread(target=ask, args=(OPTED_OUT,))]
        threads[0].start()
        time.sleep(0.3)
        for source in (FILTERED, NOT_OPTED_OUT):
            threads.append(threading.Thread(target=ask, args=(source,)))
            threads[-1].start()
        for thread in threads:
            thread.join(15)
        for source in (FILTERED, NOT_OPTED_OUT):
            # joined to the opted-out client's resolution, or not a test of it
            self.assertGreater(results[source][1], 1.0, "not joined: %r" % (results,))
        return results

    def lines(self, file_name):
        path = self.stack.workdir.file(file_name)
        try:
            with open(path, encoding="utf-8") as f:
                return [json.loads(line) for line in f.read().splitlines()]
        except FileNotFoundError:
            return []

    def events_for(self, label):
        return [event for event in self.lines("events.jsonl")
                if event["qname"] == name(label)]

    def check(self, label, entry_id, action, expected_answer):
        results = self.shared(label)
        for source, (answer, _) in results.items():
            self.assertEqual(answer.rdata("A"), [expected_answer],
                             "%s got %s" % (source, answer.text))
        self.assertTrue(harness.wait_until(lambda: len(self.events_for(label)) >= 2, 3),
                        self.lines("events.jsonl"))
        time.sleep(0.3)
        events = self.events_for(label)
        self.assertEqual(sorted(event["client"] for event in events),
                         [FILTERED, NOT_OPTED_OUT], events)
        self.assertEqual({(event["id"], event["action"]) for event in events},
                         {(entry_id, action)})
        self.unbound.stop()  # the last counter line
        totals = {"blocked": 0, "monitored": 0, "by_id": 0}
        for line in self.lines("stats.jsonl"):
            totals["blocked"] += line["blocked"]
            totals["monitored"] += line["monitored"]
            totals["by_id"] += line["by_id"].get(entry_id, 0)
        self.assertEqual(totals, {"blocked": 2 if action == "block" else 0,
                                  "monitored": 2 if action == "monitor" else 0, "by_id": 2})

    def test_monitored_name_each_filtered_client_gets_an_event(self):
        # the real answer for all; a monitor event for each filtered client
        self.check("slow4", "T-0003", "monitor", REAL["slow4"])

    def test_blocked_name_each_filtered_client_gets_an_event(self):
        # the sinkhole for all (fail safe); a block event for each filtered one
        self.check("slow", "T-0002", "block", SINKHOLE_A)


class OptoutStartTest(unittest.TestCase):
    """Bad opt-out networks at startup: Unbound refuses to start and the log
    names the file and line (or the setting)."""

    def launch(self, label, settings_document, optout_text):
        stack = Stack(self, label, settings_document, optout_text)
        stack.unbound.launch()
        code = stack.unbound.wait_exit(harness.START_TIMEOUT)
        log = stack.unbound.output()
        self.assertIsNotNone(code, "Unbound still running:\n" + log[-3000:])
        self.assertNotEqual(code, 0, log[-3000:])
        return "\n".join(line for line in log.splitlines() if "dnsfilter:" in line)

    def test_bad_line_in_file_refuses_start(self):
        lines = self.launch("optbadline", settings(),
                            "# portal\n127.0.0.3/32\n127.0.0.300/32\n")
        self.assertRegex(lines, r"optout\.txt: line 3: .*127\.0\.0\.300/32", lines)

    def test_host_bits_in_file_refuse_start(self):
        lines = self.launch("opthostbits", settings(), "127.0.0.3/32\n\n127.0.0.1/8\n")
        self.assertRegex(lines, r"optout\.txt: line 3: .*127\.0\.0\.1/8", lines)

    def test_host_bits_in_networks_refuse_start(self):
        lines = self.launch("optnethostbits", settings(networks=["127.0.0.1/8"]),
                            OPTOUT_FILE)
        self.assertRegex(lines, r"optout\.networks.*127\.0\.0\.1/8", lines)

    def test_missing_file_refuses_start(self):
        lines = self.launch("optnofile", settings(optout_file="no-such-optout.txt"),
                            OPTOUT_FILE)
        self.assertRegex(lines, r"no-such-optout\.txt", lines)


if __name__ == "__main__":
    unittest.main()
