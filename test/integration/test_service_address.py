"""Opt-out by service address (optout.service-addresses): one Unbound serves
a filtered address (127.0.0.1) and an unfiltered one (127.0.0.2). A query
that arrives at the unfiltered address is treated exactly as an opted-out
client's: the real answer, not cached, never logged, counted only as
opted out. The client is the same (kdig from 127.0.0.1) for both
addresses: only where the query arrives differs.

Each way Unbound 1.17.1 knows where a query arrived is tested: an
interface: line (the socket's address) over UDP and TCP,
interface-automatic (UDP: the packet's destination from IP_PKTINFO; TCP:
the accepted connection's own address), and the PROXYv2 port (the address
the proxy sent to; Unbound drops the proxied destination). A resolution
shared by clients at both addresses (held in flight by the DelayProxy of
refresh_support) still gives the filtered client the sinkhole. Unbound
refuses to start when a service address is one it does not listen on, or
listens on only through a wildcard where the arrival address is unknown.
"""

import json
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest

import harness
import refresh_support as rs
from harness import entry, feed

ZONE = "svc.test"
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
SLOW = ["slow", "slow2", "slow3", "slow4"]
FEED = feed([entry("T-0001", ["c2." + ZONE]),
             entry("T-0002", ["%s.%s" % (label, ZONE) for label in SLOW])])
SINKHOLE_A = "192.0.2.1"
SINKHOLE_AAAA = "2001:db8::1"
FILTERED = "127.0.0.1"    # the address of the filtered service
UNFILTERED = "127.0.0.2"  # the service address (opted out)
DELAY = 2.0
# As in test_optout: without these Unbound gets in the way of a 2 s
# authoritative delay (discard-timeout drops the client replies, qname
# minimisation retransmits).
SLOW_STUB = ["discard-timeout: 0", "qname-minimisation: no"]
PROXY_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def name(label):
    return "%s.%s" % (label, ZONE)


def settings(addresses=(UNFILTERED,)):
    return {"feed": "feed.json", "sinkhole": {"a": SINKHOLE_A, "aaaa": SINKHOLE_AAAA},
            "watch-interval": 0, "optout": {"service-addresses": list(addresses)},
            "log": {"path": "events.jsonl"}, "metrics": {"path": "metrics.prom"},
            "stats": {"path": "stats.jsonl", "interval": 1}}


def ask(server, port, qname, qtype="A", tcp=False, timeout=harness.QUERY_TIMEOUT):
    """kdig to server:port (harness.kdig always asks 127.0.0.1)."""
    argv = [harness.tool("kdig"), "@%s" % server, "-p", str(port), "+time=%d" % timeout,
            "+retry=0", "+noidn", "-q", qname, "-t", qtype]
    if tcp:
        argv.append("+tcp")
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=timeout + 5)
    text = proc.stdout.decode("utf-8", "replace")
    if "->>HEADER<<-" not in text:
        raise harness.QueryError("%s: no response\n%s" % (" ".join(argv), text))
    return harness.Answer(text)


def metrics(unbound):
    """The metrics file as {sample: value}."""
    values = {}
    try:
        with open(unbound.workdir.file("metrics.prom"), encoding="utf-8") as f:
            for line in f:
                if line and not line.startswith("#"):
                    sample, value = line.rsplit(None, 1)
                    values[sample] = float(value)
    except OSError:
        pass
    return values


def events(unbound):
    try:
        with open(unbound.workdir.file("events.jsonl"), encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except OSError:
        return []


class Stack:
    """NSD, the DelayProxy in front of it for the slow names, and Unbound
    (stub to the proxy) on 127.0.0.1 and 127.0.0.2 (extra server: lines)."""

    def __init__(self, test, label, extra, settings_document=None):
        self.workdir = harness.WorkDir(label)
        test.addCleanup(self.workdir.cleanup)
        self.nsd = harness.Nsd(self.workdir, ZONES)
        test.addCleanup(self.nsd.stop)
        self.nsd.start()
        self.proxy = rs.DelayProxy(self.nsd.port, slow=[name(label) for label in SLOW],
                                   delay=DELAY)
        test.addCleanup(self.proxy.stop)
        self.proxy.start()
        self.unbound = harness.Unbound(
            self.workdir, {ZONE: self.proxy.port},
            settings=settings_document if settings_document is not None else settings(),
            feed=FEED, extra=SLOW_STUB + list(extra))
        test.addCleanup(self.unbound.stop)


class ServiceAddressChecks:
    """The behaviour every way of listening must show (mixed into the
    TestCases below, which start an Unbound in setUp)."""

    def ask(self, server, label, qtype="A", **kwargs):
        return ask(server, self.unbound.port, name(label), qtype, **kwargs)

    def assertReal(self, server, label, **kwargs):
        answer = self.ask(server, label, **kwargs)
        self.assertEqual(answer.rdata("A"), [REAL[label]],
                         "%s at %s: not the real answer:\n%s\n--- log ---\n%s" % (
                             name(label), server, answer.text, rs.log_tail(self.unbound)))

    def assertSinkholed(self, server, label, **kwargs):
        answer = self.ask(server, label, **kwargs)
        self.assertEqual(answer.rdata("A"), [SINKHOLE_A],
                         "%s at %s: not the sinkhole:\n%s\n--- log ---\n%s" % (
                             name(label), server, answer.text, rs.log_tail(self.unbound)))

    def assertNotCached(self, label):
        dump = self.unbound.dump_cache()
        self.assertFalse(dump.has_message(name(label), "A"),
                         "the real answer of listed %s is in the message cache" % name(label))

    def settle_metrics(self):
        """The metrics once two rewrites agree (nothing in flight)."""
        previous = None
        for _ in range(50):
            now = metrics(self.unbound)
            if now and now == previous:
                return now
            previous = now
            time.sleep(1.1)
        self.fail("the metrics did not settle")

    def check_unfiltered(self, tcp):
        before = self.settle_metrics()
        events_before = len(events(self.unbound))
        self.assertReal(UNFILTERED, "c2", tcp=tcp)
        answer = self.ask(UNFILTERED, "c2", "AAAA", tcp=tcp)
        self.assertEqual(answer.rdata("AAAA"), ["2001:db8:bad::1"], answer.text)
        self.assertReal(UNFILTERED, "c2", tcp=tcp)
        self.assertNotCached("c2")
        # the same client at the filtered address: the sinkhole, logged
        self.assertSinkholed(FILTERED, "c2", tcp=tcp)
        self.assertReal(UNFILTERED, "c2", tcp=tcp)
        after = self.settle_metrics()
        delta = {key: after.get(key, 0) - before.get(key, 0)
                 for key in ("dnsfilter_optout_queries_total", "dnsfilter_queries_total",
                             "dnsfilter_blocked_total", "dnsfilter_monitored_total")}
        self.assertEqual(delta, {"dnsfilter_optout_queries_total": 4,
                                 "dnsfilter_queries_total": 1,
                                 "dnsfilter_blocked_total": 1,
                                 "dnsfilter_monitored_total": 0}, delta)
        logged = events(self.unbound)[events_before:]
        self.assertEqual([(e["qname"], e["action"]) for e in logged], [(name("c2"), "block")],
                         logged)
        self.assertEqual(len(self.unbound.block_lines(name("c2"), "A", "T-0001")), 1,
                         rs.dnsfilter_lines(self.unbound))

    def test_udp_at_the_service_address_is_real_unlogged_uncached_counted_as_optout(self):
        self.check_unfiltered(tcp=False)

    def test_tcp_at_the_service_address_is_real_unlogged_uncached_counted_as_optout(self):
        self.check_unfiltered(tcp=True)

    def test_unlisted_names_are_cached_and_shared_as_usual(self):
        self.assertReal(UNFILTERED, "www")
        self.assertTrue(self.unbound.dump_cache().has_message(name("www"), "A"))
        self.assertReal(FILTERED, "www")

    def shared(self, label, tcp):
        """The unfiltered address asks for a slowed listed name and 0.3 s
        later the filtered one asks the same; return ({server: answer},
        {server: seconds})."""
        answers, seconds = {}, {}

        def one(server):
            start = time.monotonic()
            try:
                answers[server] = self.ask(server, label, tcp=tcp, timeout=8)
            except harness.QueryError as e:
                answers[server] = e
            seconds[server] = time.monotonic() - start

        first = threading.Thread(target=one, args=(UNFILTERED,))
        first.start()
        time.sleep(0.3)
        one(FILTERED)
        first.join(15)
        return answers, seconds

    def check_shared(self, label, tcp=False):
        answers, seconds = self.shared(label, tcp)
        report = "; ".join("%s got %s after %.2f s" % (
            server, answer.rdata("A") if isinstance(answer, harness.Answer) else repr(answer),
            seconds[server]) for server, answer in answers.items())
        sys.stderr.write("\n  shared %s resolution: %s\n" % ("TCP" if tcp else "UDP", report))
        self.assertTrue(self.stack.proxy.queries_for(name(label)),
                        "the query never reached the authoritative side")
        # joined to the unfiltered address's resolution, not answered at once
        self.assertGreater(seconds[FILTERED], 1.0, "not joined: " + report)
        self.assertEqual(answers[FILTERED].rdata("A"), [SINKHOLE_A],
                         "FAIL-SAFE BROKEN: %s\n--- log ---\n%s" % (
                             report, rs.log_tail(self.unbound)))
        self.assertNotCached(label)
        self.assertSinkholed(FILTERED, label)
        self.assertReal(UNFILTERED, label, timeout=8)  # slowed again: not cached

    def test_shared_resolution_with_the_service_address_still_sinkholes_the_filtered_client(self):
        self.check_shared("slow")

    def test_shared_resolution_over_tcp(self):
        self.check_shared("slow2", tcp=True)


class InterfaceLineTest(ServiceAddressChecks, unittest.TestCase):
    """interface: 127.0.0.2 beside the harness's 127.0.0.1: the socket's
    own address says where a query arrived."""

    def setUp(self):
        self.stack = Stack(self, "svcif", ["interface: %s" % UNFILTERED])
        self.unbound = self.stack.unbound
        self.unbound.start()


class InterfaceAutomaticTest(ServiceAddressChecks, unittest.TestCase):
    """interface-automatic: yes: Unbound listens on 0.0.0.0; UDP says the
    packet's destination (IP_PKTINFO), TCP the connection's address."""

    def setUp(self):
        self.stack = Stack(self, "svcauto", ["interface-automatic: yes"])
        self.unbound = self.stack.unbound
        self.unbound.start()

    def test_an_address_not_on_this_host_is_accepted_with_a_warning(self):
        # A floating address may come later; interface-automatic serves it then.
        stack = Stack(self, "svcautofloat", ["interface-automatic: yes"],
                      settings((UNFILTERED, "192.0.2.53")))
        stack.unbound.start()
        self.assertTrue(stack.unbound.log_lines(
            r"optout\.service-addresses: 192\.0\.2\.53 is not an address of this host now"),
            rs.dnsfilter_lines(stack.unbound))
        self.assertEqual(ask(UNFILTERED, stack.unbound.port, name("c2")).rdata("A"),
                         [REAL["c2"]])


# ---------------------------------------------------------------------------
# PROXYv2


def proxied_query(server, port, client, destination, qname, tcp=False, query_id=0x4242):
    """Ask "qname A" at server:port as a PROXYv2 load balancer would for a
    client that sent it to destination; return the A addresses."""
    family_protocol = 0x11 if tcp else 0x12  # IPv4 over TCP / UDP
    header = (PROXY_SIGNATURE + bytes([0x21, family_protocol]) + struct.pack("!H", 12) +
              socket.inet_aton(client) + socket.inet_aton(destination) +
              struct.pack("!HH", 40000, 53))
    question = b"".join(bytes([len(label)]) + label.encode() for label in qname.split("."))
    message = (struct.pack("!HHHHHH", query_id, 0x0100, 1, 0, 0, 0) + question + b"\x00" +
               struct.pack("!HH", 1, 1))
    if tcp:
        with socket.create_connection((server, port), timeout=5) as sock:
            sock.sendall(header + struct.pack("!H", len(message)) + message)
            length = struct.unpack("!H", rs._recv_exact(sock, 2))[0]
            reply = rs._recv_exact(sock, length)
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(5)
            sock.sendto(header + message, (server, port))
            reply, _ = sock.recvfrom(65535)
    return harness.a_answers(reply, query_id)[1]




class ProxyProtocolTest(unittest.TestCase):
    """proxy-protocol-port on both addresses: the load balancer sends
    unfiltered customers' queries to 127.0.0.2 and the others' to
    127.0.0.1. The original client (the PROXYv2 source, 127.0.0.77, which
    the access control allows) is filtered."""

    @classmethod
    def setUpClass(cls):
        cls.proxy_port = harness.free_port()
        cls.nsd, cls.unbound = harness.start_stack(
            cls.addClassCleanup, "svcproxy", ZONES, settings(), FEED,
            extra=["interface: %s@%d" % (FILTERED, cls.proxy_port),
                   "interface: %s@%d" % (UNFILTERED, cls.proxy_port),
                   "proxy-protocol-port: %d" % cls.proxy_port])

    def query(self, server, destination, tcp):
        return proxied_query(server, self.proxy_port, "127.0.0.77", destination,
                             name("c2"), tcp=tcp)

    def test_udp_sent_to_the_service_address_is_real(self):
        self.assertEqual(self.query(UNFILTERED, UNFILTERED, False), [REAL["c2"]])

    def test_tcp_sent_to_the_service_address_is_real(self):
        self.assertEqual(self.query(UNFILTERED, UNFILTERED, True), [REAL["c2"]])

    def test_sent_to_the_filtered_address_is_sinkholed(self):
        self.assertEqual(self.query(FILTERED, FILTERED, False), [SINKHOLE_A])
        self.assertEqual(self.query(FILTERED, FILTERED, True), [SINKHOLE_A])

    def test_the_proxied_destination_is_not_what_counts(self):
        # Unbound 1.17.1 drops the PROXYv2 destination (consume_pp2_header):
        # what counts is the address the load balancer sent the query to.
        self.assertEqual(self.query(FILTERED, UNFILTERED, False), [SINKHOLE_A])
        self.assertEqual(self.query(UNFILTERED, FILTERED, True), [REAL["c2"]])


# ---------------------------------------------------------------------------
# The check at load


class ServiceAddressStartTest(unittest.TestCase):
    """A service address Unbound does not listen on (so that the address a
    query arrived at is known) refuses the start, naming it."""

    def launch(self, label, extra, addresses):
        stack = Stack(self, label, extra, settings(addresses))
        stack.unbound.launch()
        code = stack.unbound.wait_exit(harness.START_TIMEOUT)
        log = stack.unbound.output()
        self.assertIsNotNone(code, "Unbound still running:\n" + log[-3000:])
        self.assertNotEqual(code, 0, log[-3000:])
        lines = "\n".join(line for line in log.splitlines() if "dnsfilter:" in line)
        self.assertRegex(lines, r"settings rejected; not starting", lines)
        return lines

    def test_an_address_unbound_does_not_listen_on_refuses_the_start(self):
        lines = self.launch("svcnotlistened", ["interface: %s" % UNFILTERED],
                            [UNFILTERED, "127.0.0.9"])
        self.assertRegex(lines, r"optout\.service-addresses: 127\.0\.0\.9: Unbound does not "
                                r"listen on it \(interface: 127\.0\.0\.1, 127\.0\.0\.2\)")
        self.assertNotRegex(lines, r"service-addresses: 127\.0\.0\.2:")

    def test_an_address_reached_only_through_a_wildcard_refuses_the_start(self):
        # UDP on 0.0.0.0 without interface-automatic carries no packet info:
        # which address a query was sent to is unknown.
        lines = self.launch("svcwildcard", ["interface: 0.0.0.0"], [UNFILTERED])
        self.assertRegex(lines, r"optout\.service-addresses: 127\.0\.0\.2: Unbound reaches it "
                                r"only through a wildcard interface")

    def test_an_ipv6_address_with_do_ip6_no_refuses_the_start(self):
        lines = self.launch("svcnoip6", [], ["::1"])
        self.assertRegex(lines, r"optout\.service-addresses: ::1: Unbound does not listen on "
                                r"IPv6 \(do-ip6: no\)")


if __name__ == "__main__":
    unittest.main()
