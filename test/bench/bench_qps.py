#!/usr/bin/env python3
"""Cache-hit and cache-miss QPS of Unbound with and without the module, in
one run (a benchmark, not a test: it prints figures).

NSD serves a wildcard zone (*.wild.bench.test A 198.51.100.7, TTL one
day). Two Unbounds run side by side, each num-threads 1 pinned to CPU 0:
"validator iterator" (Unbound alone) and "dynlib validator iterator" with a
feed of --listed names elsewhere (so every query of the run passes the
module). dnsperf (-T 1 -c 2, CPU 1) asks:

  cache hit   --hit-names names, asked once before (cached), then for
              --seconds at the highest rate;
  cache miss  names never asked before (a fresh label each), so each one is
              resolved: Unbound -> NSD (also on CPU 1) -> answer.

The cases alternate within each of --reps rounds, so a change in the
machine's load hits both; the table gives the median and the ratio
module / Unbound alone. On a shared machine QPS moves by +-10 % between
runs: read a few per cent here as noise (bench_cachehit.py counts
instructions instead).

Usage: test/bench/bench_qps.py [--seconds S] [--reps R] [--listed N]
Needs nsd, dnsperf, taskset; the module (build/cmake/dnsfilter.so or
$DNSFILTER_MODULE); Unbound from scripts/unbound-version's build. Only
127.0.0.1 is used.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402

ZONE = "wild.bench.test"


def dnsperf(port, path, seconds, once=False):
    """One dnsperf run; returns its queries per second (0 when it printed none)."""
    argv = ["taskset", "-c", "1", harness.tool("dnsperf"), "-s", harness.LOOPBACK,
            "-p", str(port), "-d", path, "-T", "1", "-c", "2", "-l", str(seconds),
            "-t", "5"]
    if once:
        argv += ["-n", "1"]
    out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, timeout=seconds + 60).stdout
    match = re.search(r"Queries per second:\s+([0-9.]+)", out)
    lost = re.search(r"Queries lost:\s+(\d+)", out)
    if lost and int(lost.group(1)):
        print("  (%s queries lost)" % lost.group(1), file=sys.stderr)
    return float(match.group(1)) if match else 0.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--listed", type=int, default=100000)
    parser.add_argument("--hit-names", type=int, default=1000)
    parser.add_argument("--module", default=os.environ.get(
        "DNSFILTER_MODULE", os.path.join(HERE, "..", "..", "build", "cmake", "dnsfilter.so")))
    args = parser.parse_args()
    harness.MODULE = os.path.abspath(args.module)

    workdir = harness.WorkDir("qps")
    running = []
    try:
        nsd = harness.Nsd(workdir, {ZONE: harness.zone_text(ZONE, ["* A 198.51.100.7"],
                                                              ttl=86400)},
                          extra=["rrl-ratelimit: 0"])
        running.append(nsd)
        nsd.start()
        listed = [harness.entry("L-%d" % i, ["c2-%d.listed.test" % j
                                              for j in range(i, min(i + 10, args.listed))])
                  for i in range(0, args.listed, 10)]
        settings = {"feed": "feed.json", "sinkhole": {"a": "192.0.2.1"}, "watch-interval": 0,
                    "limits": {"feed-names": args.listed + 1000,
                               "feed-entries": args.listed + 1000}}
        cases = []
        for label, module in (("Unbound alone", False), ("with the module", True)):
            unbound = harness.Unbound(
                workdir, {ZONE: nsd.port}, settings=settings if module else None,
                feed=harness.feed(listed) if module else None, module=module,
                name="unbound-module" if module else "unbound", prefix=["taskset", "-c", "0"],
                extra=["verbosity: 0", "msg-cache-size: 256m", "rrset-cache-size: 512m"])
            running.append(unbound)
            unbound.start(timeout=120)  # a 100k-name feed
            cases.append((label, unbound))
        hit = workdir.write("hit.queries", "".join(
            "h%d.%s A\n" % (i, ZONE) for i in range(args.hit_names)))
        for _, unbound in cases:
            dnsperf(unbound.port, hit, 30, once=True)  # cached
        results = {label: {"hit": [], "miss": []} for label, _ in cases}
        for rep in range(args.reps):
            for label, unbound in cases:
                qps = dnsperf(unbound.port, hit, args.seconds)
                results[label]["hit"].append(qps)
                print("round %d, %s: cache hit %.0f qps" % (rep + 1, label, qps),
                      file=sys.stderr)
            for n, (label, unbound) in enumerate(cases):
                # more fresh names than a run can ask: none repeats
                miss = workdir.write("miss-%d-%d.queries" % (rep, n), "".join(
                    "m%d-%d-%d.%s A\n" % (rep, n, i, ZONE) for i in range(400000)))
                qps = dnsperf(unbound.port, miss, args.seconds, once=True)
                results[label]["miss"].append(qps)
                print("round %d, %s: cache miss %.0f qps" % (rep + 1, label, qps),
                      file=sys.stderr)
        base = results[cases[0][0]]
        print("| QPS, median of %d runs of %d s (num-threads 1) | cache hit | cache miss |"
              % (args.reps, args.seconds))
        print("|---|---:|---:|")
        for label, _ in cases:
            row = results[label]
            hit_qps, miss_qps = statistics.median(row["hit"]), statistics.median(row["miss"])
            cells = ["{:,.0f}".format(hit_qps), "{:,.0f}".format(miss_qps)]
            if row is not base:
                cells = ["%s (%.2f)" % (cell, value / statistics.median(base[kind]))
                         for cell, value, kind in zip(cells, (hit_qps, miss_qps),
                                                      ("hit", "miss"))]
            print("| %s | %s |" % (label if row is base else
                                   "%s (%d listed names; module / alone)" % (label, args.listed),
                                   " | ".join(cells)))
    finally:
        for server in reversed(running):
            server.stop()
        workdir.cleanup()


if __name__ == "__main__":
    main()
