"""Opt-out behind a load balancer (SPEC sections 3 and 5): with Unbound's
proxy-protocol-port, the client address the module judges is the PROXYv2
source, not the load balancer's address.

The client here plays the load balancer: it sends each DNS query over UDP
with a PROXYv2 header naming the original client (kdig cannot write that
header). The load balancer itself (127.0.0.1) is not opted out; the
original client 127.0.0.2 is.
"""

import socket
import struct
import unittest

import harness
from harness import entry, feed

ZONE = "pp.test"
ZONES = {ZONE: harness.zone_text(ZONE, ["c2 A 198.51.100.1", "www A 192.0.2.80"])}
FEED = feed([entry("T-0001", ["c2." + ZONE])])
SINKHOLE = "192.0.2.1"
REAL = "198.51.100.1"
PROXY_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def proxied_query(port, client, name, query_id=0x1234):
    """Send "name A" to 127.0.0.1:port over UDP as a PROXYv2 load balancer
    would for client; return (rcode, [A addresses])."""
    addresses = socket.inet_aton(client) + socket.inet_aton("127.0.0.1")
    header = (PROXY_SIGNATURE + bytes([0x21, 0x12]) +  # v2 PROXY, IPv4 over UDP
              struct.pack("!H", 12) + addresses + struct.pack("!HH", 40000, port))
    question = b"".join(bytes([len(label)]) + label.encode() for label in name.split("."))
    message = (struct.pack("!HHHHHH", query_id, 0x0100, 1, 0, 0, 0) +
               question + b"\x00" + struct.pack("!HH", 1, 1))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(header + message, ("127.0.0.1", port))
        reply, _ = sock.recvfrom(65535)
    return harness.a_answers(reply, query_id)




class ProxyProtocolTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.proxy_port = harness.free_port()
        settings = {"feed": "feed.json", "sinkhole": {"a": SINKHOLE},
                    "watch-interval": 0, "optout": {"networks": ["127.0.0.2/32"]}}
        cls.nsd, cls.unbound = harness.start_stack(
            cls.addClassCleanup, "proxy", ZONES, settings, FEED,
            extra=["interface: 127.0.0.1@%d" % cls.proxy_port,
                   "proxy-protocol-port: %d" % cls.proxy_port])

    def test_opted_out_original_client_gets_the_real_answer(self):
        rcode, addresses = proxied_query(self.proxy_port, "127.0.0.2", "c2." + ZONE)
        self.assertEqual((rcode, addresses), (0, [REAL]))

    def test_filtered_original_client_gets_the_sinkhole(self):
        # the load balancer's own address (127.0.0.1) is the same, only the
        # PROXYv2 source differs from the opted-out case
        rcode, addresses = proxied_query(self.proxy_port, "127.0.0.9", "c2." + ZONE)
        self.assertEqual((rcode, addresses), (0, [SINKHOLE]))

    def test_direct_client_on_the_plain_port_is_filtered(self):
        answer = self.unbound.query("c2." + ZONE, "A")
        self.assertEqual(answer.rdata("A"), [SINKHOLE])


if __name__ == "__main__":
    unittest.main()
