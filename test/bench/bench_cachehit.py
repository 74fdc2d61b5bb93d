#!/usr/bin/env python3
"""Instructions per cache hit, counted by valgrind's callgrind, for Unbound
without the module and with it (with and without its counters), in one run.

QPS on a shared machine moves by +-10 % between runs and cannot show a
cost of a few percent; instructions can. Each case starts NSD and Unbound
(num-threads 1) under callgrind, collecting only inside
comm_point_udp_callback (receive, answer, send of a UDP query), asks the
name once so it is cached, zeroes the counters (callgrind_control -z),
asks it N times more, dumps (callgrind_control -d) and divides the
instructions by N.

With --miss each query asks a new name (an NSD wildcard): instructions
per cache miss, the whole resolution (client query, the query to NSD,
its answer: all of them go through comm_point_udp_callback).

With --blocked it counts instructions per answer for a listed name
instead: the module's sinkhole answer (no cache: every one runs the mesh
and the module) beside Unbound's own local-zone redirect with the same
address, the peer's fastest way to block a name.

Usage: test/bench/bench_cachehit.py [--queries N] [--threads T] [--module PATH] [--label TEXT]
                                    [--blocked | --miss]
  BENCH_KEEP=DIR keeps each case's callgrind dump there (callgrind_annotate).
  --module   the dnsfilter.so to measure (default build/cmake/dnsfilter.so,
             or $DNSFILTER_MODULE): give an older build to compare versions.
Prints a markdown table and the ratio to Unbound without the module.
"""

import argparse
import glob
import os
import socket
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402

NAME = "www.bench.test"


def query_packet(name, qid):
    header = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    wire = b"".join(bytes([len(label)]) + label.encode() for label in name.split("."))
    return header + wire + b"\0" + struct.pack("!HH", 1, 1)


def ask(port, count, name=NAME, first=0):
    """count queries for name, one at a time; each must get an answer. A
    name with %d in it is a new name each time (first, first + 1, ...)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(10)
    try:
        for i in range(count):
            qname = name % (first + i) if "%d" in name else name
            sock.sendto(query_packet(qname, i & 0xFFFF), (harness.LOOPBACK, port))
            reply, _ = sock.recvfrom(4096)
            if len(reply) < 12 or (reply[3] & 0x0F) != 0:
                raise RuntimeError("bad answer to query %d" % i)
    finally:
        sock.close()


def callgrind_control(*args):
    return subprocess.run(["callgrind_control"] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)


def total_instructions(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise RuntimeError("no totals in %s" % path)


def measure(label, modules, settings, queries, module, threads, name=NAME, extra=()):
    workdir = harness.WorkDir("cachehit")
    nsd = None
    unbound = None
    try:
        nsd = harness.Nsd(workdir, {"bench.test": harness.zone_text(
            "bench.test", ["www A 198.51.100.1", "*.miss A 198.51.100.2"], ttl=86400)},
            extra=["rrl-ratelimit: 0"]).start()
        out = workdir.file("callgrind.out")
        prefix = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out + ".%p",
                  "--toggle-collect=comm_point_udp_callback"]
        if module:
            harness.MODULE = module
        unbound = harness.Unbound(workdir, {"bench.test": nsd.port}, settings=settings,
                                  feed=harness.feed([harness.entry("B-1", ["c2.bench.test"])]),
                                  module="dynlib" in modules, modules=modules, prefix=prefix,
                                  extra=["verbosity: 0"] + list(extra), threads=threads)
        unbound.start(timeout=120)  # under callgrind or with big feeds
        ask(unbound.port, 20, name)  # cached, and the code paths warm
        pid = str(unbound.process.pid)
        callgrind_control("-z", pid)
        ask(unbound.port, queries, name, first=20)
        callgrind_control("-d", pid)
        dumps = sorted(glob.glob(out + ".%s.*" % pid), key=os.path.getmtime)
        if not dumps:
            raise RuntimeError("no callgrind dump:\n" + unbound.output()[-2000:])
        keep = os.environ.get("BENCH_KEEP")
        if keep:  # for callgrind_annotate
            os.makedirs(keep, exist_ok=True)
            subprocess.run(["cp", dumps[-1], os.path.join(keep, label.replace(" ", "_")
                                                           .replace(",", "") + ".out")])
        return total_instructions(dumps[-1]) / queries
    finally:
        if unbound:
            unbound.stop()
        if nsd:
            nsd.stop()
        workdir.cleanup()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--module", default=os.environ.get(
        "DNSFILTER_MODULE", os.path.join(HERE, "..", "..", "build", "cmake", "dnsfilter.so")))
    parser.add_argument("--label", default="module")
    parser.add_argument("--blocked", action="store_true",
                        help="a listed name: the sinkhole beside local-zone redirect")
    parser.add_argument("--miss", action="store_true",
                        help="a new name each time (a wildcard at NSD): instructions per "
                        "cache miss, the whole resolution")
    parser.add_argument("--threads", type=int, default=1,
                        help="num-threads (with 1, Unbound alone is single-threaded and "
                        "glibc takes its cheaper single-thread paths; the module's "
                        "threads end that)")
    args = parser.parse_args()
    module = os.path.abspath(args.module)
    base = {"feed": "feed.json", "sinkhole": {"a": "192.0.2.1"}, "watch-interval": 0}
    counted = dict(base, stats={"path": "stats.jsonl", "interval": 60})
    # (label, module-config, settings, the case it is compared with)
    cases = [
        ("Unbound, validator iterator", "validator iterator", None, 0),
        ("%s, no counters" % args.label, "dynlib validator iterator", base, 0),
        ("%s, counters on" % args.label, "dynlib validator iterator", counted, 0),
        ("Unbound, iterator", "iterator", None, 3),
        ("%s, iterator, no counters" % args.label, "dynlib iterator", base, 3),
    ]
    extras = [()] * len(cases)
    name, what = NAME, "cache hit"
    if args.blocked:
        name, what = "c2.bench.test", "blocked answer"
        local = ['local-zone: "c2.bench.test." redirect',
                 'local-data: "c2.bench.test. 60 IN A 192.0.2.1"']
        cases = [
            ("Unbound, local-zone redirect", "validator iterator", None, 0),
            ("%s sinkhole, no counters" % args.label, "dynlib validator iterator", base, 0),
            ("%s sinkhole, counters on" % args.label, "dynlib validator iterator", counted, 0),
        ]
        extras = [local, (), ()]
    if args.miss:
        name, what = "m%d.miss.bench.test", "cache miss"
        cases = cases[:3]
        extras = extras[:3]
    values = []
    for (label, modules, settings, _), extra in zip(cases, extras):
        values.append(measure(label, modules, settings, args.queries, module,
                              args.threads, name, extra))
        print("%-45s %10.1f instructions per %s" % (label, values[-1], what), file=sys.stderr)
    print("| case (%d queries, each a %s; num-threads %d; callgrind) | instructions per answer "
          "| vs the first |" % (args.queries, what, args.threads))
    print("|---|---|---|")
    for (label, _, _, reference), value in zip(cases, values):
        print("| %s | %.0f | %+.2f %% |" % (label, value, (value / values[reference] - 1) * 100))

if __name__ == "__main__":
    main()
