#!/usr/bin/env python3
"""Benchmark of the cache purge at feed load (not a pass/fail test).

Fills Unbound's message cache with N distinct answers (default 100,000:
names nNNNNNN.bulk.bench.test. under an NSD wildcard *.bulk.bench.test A
192.0.2.9, queried once each with dnsperf), then runs
unbound-control reload_keep_cache twice:

  1. with a feed that lists none of them: the walk alone (N examined, 0 removed);
  2. with a feed listing *.bulk.bench.test: the walk plus N removals.

and prints the module's 'dnsfilter: cache purge: N cached answers examined,
M removed, X ms' figures for each, the wall time of the reload command, and
Unbound's msg/rrset cache counts before and after. Then, with a second
Unbound (watch-interval 1) filled the same way:

  3.-6. hot swaps (renamed into place) from a feed listing N other names:
     half of them change (N/2 cached names newly listed), one more cached
     name listed, the same rules in another order (no purge needed), and
     *.bulk.bench.test. The purge runs in a resolver thread, only under the
     names that changed, a slice of at most 0.5 ms at a time (the log's
     slices and the longest, wall and CPU), while a client asks a cached
     name every millisecond: the slowest of those answers shows how long
     the thread stopped answering.

Usage: test/bench/bench_purge.py [--names N] [--qps Q] [--keep]
Needs: a built module (build/cmake/dnsfilter.so), Unbound 1.17.1
(build/unbound-1.17.1/sbin), nsd, kdig, dnsperf; runs on 127.0.0.1 only.
"""

import argparse
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

import harness  # noqa: E402
from harness import entry, feed  # noqa: E402

ZONE = "bench.test"
BULK_ADDRESS = "192.0.2.9"
SINKHOLE_A = "192.0.2.1"


def stats(unbound):
    """Unbound's counters as a dict (stats_noreset)."""
    result = unbound.control("stats_noreset", timeout=30)
    values = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip()
    return values


def cache_counts(unbound):
    values = stats(unbound)
    return int(values.get("msg.cache.count", -1)), int(values.get("rrset.cache.count", -1))


def fill(unbound, names, qps, workdir):
    """Query every bulk name once with dnsperf (a few passes, since UDP
    queries can be lost at high rates; answered names come from the cache
    in later passes). Return (seconds, msg cache count)."""
    path = workdir.file("queries.txt")
    with open(path, "w", encoding="ascii") as f:
        for i in range(names):
            f.write("n%06d.bulk.%s A\n" % (i, ZONE))
    started = time.monotonic()
    for attempt in range(3):
        proc = subprocess.run(
            [harness.tool("dnsperf"), "-s", harness.LOOPBACK, "-p", str(unbound.port),
             "-d", path, "-c", "2", "-Q", str(qps), "-q", "200", "-n", "1", "-t", "5"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
            timeout=600)
        summary = [line.strip() for line in proc.stdout.splitlines()
                   if re.search(r"Queries (sent|completed|lost)|Queries per second", line)]
        print("  dnsperf pass %d: %s" % (attempt + 1, "; ".join(summary)))
        msgs, _ = cache_counts(unbound)
        if msgs >= names:
            break
    return time.monotonic() - started, cache_counts(unbound)[0]


def reload_and_measure(unbound, document, label):
    before = cache_counts(unbound)
    mark = unbound.log_size()
    started = time.monotonic()
    unbound.reload_feed(document)
    wall = time.monotonic() - started
    text = unbound.log_since(mark)
    load = re.search(r"dnsfilter: .*: feed .*: \d+ entries.*\n", text)
    purges = unbound.purges(text[load.end():] if load else text)
    if not purges:
        raise RuntimeError("no purge line after the reload:\n" + text[-2000:])
    examined, removed, ms = purges[0]
    after = cache_counts(unbound)
    print("%s:\n  dnsfilter: cache purge: %d cached answers examined, %d removed, %.1f ms\n"
          "  reload_keep_cache until answering again ~%.0f ms (polled every 100 ms);\n"
          "  msg/rrset cache %d/%d before, %d/%d after"
          % (label, examined, removed, ms, wall * 1e3, before[0], before[1],
             after[0], after[1]))
    return examined, removed, ms


def probe(port, name, stop, latencies):
    """Ask name (cached) about every millisecond until stop is set; keep
    each answer's latency in seconds (a lost one counts as 1 s)."""
    import socket
    import struct
    wire = b"".join(bytes([len(label)]) + label.encode() for label in name.split("."))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(1.0)
    qid = 0
    while not stop.is_set():
        qid = (qid + 1) & 0xffff
        packet = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + wire + b"\0\0\1\0\1"
        started = time.monotonic()
        sock.sendto(packet, (harness.LOOPBACK, port))
        try:
            while True:
                data = sock.recv(512)
                if data[:2] == packet[:2]:
                    break
            latencies.append(time.monotonic() - started)
        except OSError:
            latencies.append(1.0)
        time.sleep(0.001)
    sock.close()


def bulk_names(first, count):
    return ["n%06d.bulk.%s" % (i, ZONE) for i in range(first, first + count)]


def listing(serial, names, *extra):
    """A feed: c2, the names in entries of 1000, and extra entries."""
    entries = [entry("B-0001", ["c2." + ZONE])]
    for i in range(0, len(names), 1000):
        entries.append(entry("L-%06d" % i, names[i:i + 1000]))
    return feed(entries + list(extra), serial=serial)


def swap_and_probe(unbound, document, label):
    """Rename a feed into place while a client asks a cached name every
    millisecond; print the purge line and the probe's latencies."""
    import threading
    stop, latencies = threading.Event(), []
    thread = threading.Thread(target=probe, args=(unbound.port, "www." + ZONE, stop, latencies))
    thread.start()
    time.sleep(1)
    before = len(latencies)
    mark = unbound.log_size()
    path = unbound.workdir.file("feed.json")
    aside = unbound.workdir.write("feed.json.next", document)
    os.replace(aside, path)
    line = purge = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not line:
        time.sleep(0.2)
        text = unbound.log_since(mark)
        line = re.search(r"dnsfilter: \S+: new feed in force: .*", text)
        purge = re.search(r"dnsfilter: cache purge: .*", text)
    time.sleep(0.5)
    stop.set()
    thread.join()
    during = sorted(latencies[before:])
    print("%s:\n  %s\n  %s" % (label, line.group(0) if line else "no new feed within 120 s",
                               purge.group(0) if purge else "(no purge)"))
    if during:
        print("  client probe (a cached name every ms) over the swap: %d answers, median "
              "%.2f ms, p99 %.2f ms, slowest %.2f ms" % (
                  len(during), during[len(during) // 2] * 1e3,
                  during[len(during) * 99 // 100] * 1e3, during[-1] * 1e3))


def hot_swap(args, workdir, nsd, cleanups):
    n, half = args.names, args.names // 2
    listed = bulk_names(n + 1, n)  # N listed names, none of them cached
    settings = {"feed": "feed.json", "sinkhole": {"a": SINKHOLE_A}, "ttl": 60,
                "watch-interval": 1}
    unbound = harness.Unbound(
        workdir, {ZONE: nsd.port}, settings=settings, feed=listing(1, listed),
        name="unbound-hot",
        extra=["verbosity: 1", "msg-cache-size: 256m", "rrset-cache-size: 256m",
               "num-queries-per-thread: 4096"])
    cleanups.append(unbound.stop)
    unbound.start()
    print("hot swap: a second Unbound, %d names listed, filled with %d other names"
          % (n, n))
    fill(unbound, n, args.qps, workdir)
    unbound.query("www." + ZONE, "A")
    # 3. half the listed names change: the second half stays, the first
    # half of the cached names comes in their place
    swap_and_probe(unbound, listing(2, listed[half:] + bulk_names(1, half)),
                   "3. hot swap, half of the %d listed names change (to %d cached names)"
                   % (n, half))
    # 4. one more cached name listed
    swap_and_probe(unbound, listing(3, listed[half:] + bulk_names(1, half + 1)),
                   "4. hot swap, one more (cached) name listed")
    # 5. the same rules again (another serial, other ids)
    swap_and_probe(unbound, listing(4, bulk_names(1, half + 1) + listed[half:]),
                   "5. hot swap, the same names in another order (nothing newly listed)")
    # 6. every cached name (a wildcard)
    swap_and_probe(unbound, listing(5, listed[half:] + bulk_names(1, half + 1),
                                    entry("B-0002", ["*.bulk." + ZONE])),
                   "6. hot swap, *.bulk.%s listed (the rest of the cached names)" % ZONE)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--names", type=int, default=100000)
    parser.add_argument("--qps", type=int, default=20000)
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    args = parser.parse_args()

    cleanups = []
    workdir = harness.WorkDir("bench-purge")
    if not args.keep:
        cleanups.append(workdir.cleanup)
    else:
        print("work dir:", workdir.path)
    try:
        zone = harness.zone_text(ZONE, ["*.bulk A " + BULK_ADDRESS, "www A 192.0.2.80"],
                                 ttl=3600)
        nsd = harness.Nsd(workdir, {ZONE: zone}, extra=["rrl-ratelimit: 0"])
        cleanups.append(nsd.stop)
        nsd.start()
        # watch-interval 0: the feed changes take effect at the reloads
        # only (not by the module's hot refresh), so the purge measured is
        # the one at the load.
        settings = {"feed": "feed.json", "sinkhole": {"a": SINKHOLE_A}, "ttl": 60,
                    "watch-interval": 0}
        unrelated = feed([entry("B-0001", ["c2." + ZONE])])
        unbound = harness.Unbound(
            workdir, {ZONE: nsd.port}, settings=settings, feed=unrelated,
            extra=["verbosity: 1", "extended-statistics: yes", "msg-cache-size: 256m",
                   "rrset-cache-size: 256m", "num-queries-per-thread: 4096"])
        cleanups.append(unbound.stop)
        unbound.start()

        print("filling the cache with %d names (dnsperf, %d qps)" % (args.names, args.qps))
        seconds, msgs = fill(unbound, args.names, args.qps, workdir)
        print("  %.1f s; msg cache count %d, rrset cache count %d"
              % (seconds, msgs, cache_counts(unbound)[1]))

        reload_and_measure(unbound, feed([entry("B-0001", ["c2." + ZONE])], serial=2),
                           "reload 1, feed lists none of them (walk only)")
        reload_and_measure(unbound, feed([entry("B-0001", ["c2." + ZONE]),
                                          entry("B-0002", ["*.bulk." + ZONE])], serial=3),
                           "reload 2, feed lists *.bulk.%s" % ZONE)

        answer = unbound.query("n000001.bulk." + ZONE, "A")
        print("check: n000001.bulk.%s A -> %s" % (ZONE, answer.rdata("A")))
        if answer.rdata("A") != [SINKHOLE_A]:
            print("  (expected the sinkhole %s)" % SINKHOLE_A)
        unbound.stop()
        hot_swap(args, workdir, nsd, cleanups)
    finally:
        for cleanup in reversed(cleanups):
            cleanup()


if __name__ == "__main__":
    main()
