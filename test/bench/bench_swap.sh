#!/bin/bash
# bench_swap.sh - hot feed swaps under load, against a reload of stock
# Unbound with the same names as local-zones. Not a test: it prints figures.
#
# 1. Generates two feeds of 1,000,000 names each (n<i>.bench.test; feed 1:
#    i < 1,000,000, feed 2: 500,000 <= i < 1,500,000), a query file mixing
#    names listed by both feeds, by one of them, and unlisted names, and a
#    zone bench.test whose wildcard answers every name (NSD).
# 2. dnsfilter: Unbound + module with feed 1 (watch-interval 1); one
#    warm-up pass of dnsperf over the query file; then dnsperf at RATE qps
#    from 2 clients for DURATION s with stats every 1 s. Run twice: without
#    swaps (baseline) and with the feed replaced by rename SWAPS times during
#    the load, alternating the two feeds.
#    Printed: queries sent/completed/lost, latency (dnsperf's average, min,
#    max, stddev, and percentiles from its per-query -v lines), the time from
#    each rename to the module's "new feed in force" line, the longest gap
#    between answers of a probe querying every 10 ms, and peak RSS (VmHWM,
#    reset after the warm-up) against RSS with one feed loaded.
#    A third time with each feed's index image compiled once
#    (dnsfilter-check --compile) and put in the state directory before its
#    rename, as a fleet host receives it: the module maps it.
# 3. stock: Unbound with module-config "iterator" and feed 1's names as
#    local-zone redirect + local-data A 0.0.0.0; the same dnsperf load, and
#    one `unbound-control reload` during it. Printed: the same, with the
#    outage of the reload (from the reload command to the log's "start of
#    service", and the longest gap between probe answers).
# 4. A table of the three runs.
#
# The machine's other load shows in the latencies: compare the columns of
# one run of the script, not figures of different runs.
#
# Usage: test/bench/bench_swap.sh [--names N] [--rate QPS] [--duration S]
#            [--swaps K] [--threads T] [--keep] [--skip-stock]
# Environment: DNSFILTER_UNBOUND (sbin dir), DNSFILTER_MODULE (the .so),
#   DNSFILTER_CHECK (dnsfilter-check; default beside the module).
# Run as root (NSD with username ""). Only 127.0.0.1 is used.

DNSFILTER_REPO=$(cd "$(dirname "$0")/../.." && pwd) exec python3 - "$@" <<'PY'
import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.environ["DNSFILTER_REPO"]
sys.path.insert(0, os.path.join(REPO, "test", "integration"))
import harness  # noqa: E402 (ports)
SBIN = os.environ.get("DNSFILTER_UNBOUND", os.path.join(
    REPO, "build", "unbound-" + open(os.path.join(REPO, "scripts", "unbound-version")).read().strip(), "sbin"))
MODULE = os.environ.get("DNSFILTER_MODULE", os.path.join(REPO, "build", "cmake", "dnsfilter.so"))
CHECK = os.environ.get("DNSFILTER_CHECK", os.path.join(os.path.dirname(MODULE), "dnsfilter-check"))
ZONE = "bench.test"

parser = argparse.ArgumentParser(prog="bench_swap.sh")
parser.add_argument("--names", type=int, default=1000000, help="names per feed")
parser.add_argument("--rate", type=int, default=20000, help="dnsperf queries per second")
parser.add_argument("--duration", type=int, default=60, help="seconds of load per run")
parser.add_argument("--swaps", type=int, default=10, help="feed replacements")
parser.add_argument("--threads", type=int, default=1, help="Unbound num-threads")
parser.add_argument("--timeout", type=int, default=2, help="dnsperf query timeout, s")
parser.add_argument("--keep", action="store_true", help="keep the work dir")
parser.add_argument("--skip-stock", action="store_true", help="only the dnsfilter run")
args = parser.parse_args()

running = []


def log(text):
    sys.stdout.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), text))
    sys.stdout.flush()


def free_ports(count):
    return [harness.free_port() for _ in range(count)]


def start(argv, out, env=None):
    f = open(out, "wb")
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                         env=env)
    running.append(p)
    return p


def stop(p, sig=signal.SIGTERM, wait=10):
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(wait)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
    if p in running:
        running.remove(p)


def status_kb(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_hwm(pid):
    """Reset VmHWM to the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def query_packet(name, qid):
    wire = b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".")) + b"\0"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + wire + struct.pack("!HH", 1, 1)


def answers(port, name, timeout=1.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        qid = random.randrange(65536)
        s.sendto(query_packet(name, qid), ("127.0.0.1", port))
        data = s.recv(4096)
        return len(data) >= 12 and struct.unpack("!H", data[:2])[0] == qid
    except OSError:
        return False
    finally:
        s.close()


def wait_answering(port, name, timeout, process):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if answers(port, name, 0.5):
            return True
        time.sleep(0.2)
    return False


class Probe(threading.Thread):
    """A query every 10 ms (timeout 1 s) for an unlisted, cached name;
    records when answers came, to measure the longest gap (outage)."""

    def __init__(self, port, name):
        super().__init__(daemon=True)
        self.port, self.name = port, name
        self.ok_times = []
        self.failures = 0
        self.stopping = threading.Event()

    def run(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(1.0)
        qid = 0
        while not self.stopping.is_set():
            qid = (qid + 1) & 0xFFFF
            sent = time.monotonic()
            try:
                s.sendto(query_packet(self.name, qid), ("127.0.0.1", self.port))
                while True:
                    data = s.recv(4096)
                    if struct.unpack("!H", data[:2])[0] == qid:
                        break
                self.ok_times.append(time.monotonic())
            except OSError:
                self.failures += 1
            left = 0.01 - (time.monotonic() - sent)
            if left > 0:
                time.sleep(left)
        s.close()

    def longest_gap(self):
        times = self.ok_times
        if len(times) < 2:
            return None, None
        gap, at = max((b - a, a) for a, b in zip(times, times[1:]))
        return gap, at


class LogWatcher(threading.Thread):
    """Follows a log file; records (monotonic time seen, line) of lines
    matching a regex."""

    def __init__(self, path, regex):
        super().__init__(daemon=True)
        self.path, self.regex = path, re.compile(regex)
        self.seen = []
        self.stopping = threading.Event()

    def run(self):
        offset = 0
        buffer = b""
        while not self.stopping.is_set():
            try:
                with open(self.path, "rb") as f:
                    f.seek(offset)
                    data = f.read()
            except OSError:
                data = b""
            if data:
                now = time.monotonic()
                offset += len(data)
                buffer += data
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    text = line.decode("utf-8", "replace")
                    if self.regex.search(text):
                        self.seen.append((now, text))
            time.sleep(0.005)


def parse_dnsperf(text):
    r = {}
    for key, pattern in (("sent", r"Queries sent:\s+(\d+)"),
                         ("completed", r"Queries completed:\s+(\d+)"),
                         ("lost", r"Queries lost:\s+(\d+)"),
                         ("qps", r"Queries per second:\s+([0-9.]+)"),
                         ("avg", r"Average Latency \(s\):\s+([0-9.]+)"),
                         ("min", r"Average Latency \(s\):\s+[0-9.]+ \(min ([0-9.]+)"),
                         ("max", r"Average Latency \(s\):.*max ([0-9.]+)\)"),
                         ("stddev", r"Latency StdDev \(s\):\s+([0-9.]+)")):
        m = re.search(pattern, text)
        if m:
            r[key] = float(m.group(1))
    m = re.search(r"Response codes:\s+(.*)", text)
    r["rcodes"] = m.group(1).strip() if m else ""
    # -v: "> RCODE name type latency"; T = timed out.
    latencies = []
    timeouts = 0
    for line in text.splitlines():
        if line.startswith("> "):
            fields = line.split()
            if fields[1] == "T":
                timeouts += 1
            else:
                try:
                    latencies.append(float(fields[-1]))
                except ValueError:
                    pass
    latencies.sort()
    r["percentiles"] = {}
    for p in (50, 90, 99, 99.9, 99.99):
        if latencies:
            r["percentiles"][p] = latencies[min(len(latencies) - 1,
                                                int(len(latencies) * p / 100.0))]
    # -S 1 lines: "<unix time>: <qps>" in dnsperf 2.10 ("[Status]..." no).
    intervals = []
    for line in text.splitlines():
        m = re.match(r"^\s*(\d+\.\d+):\s+([0-9.]+)\s*$", line)
        if m:
            intervals.append((float(m.group(1)), float(m.group(2))))
    r["intervals"] = intervals
    r["verbose_timeouts"] = timeouts
    return r


# ---------------------------------------------------------------------------
# Work dir, data

work = tempfile.mkdtemp(prefix="dnsfilter-bench-")
log("work dir %s" % work)
N = args.names
HALF = N // 2


def path(name):
    return os.path.join(work, name)


def root_hints():
    with open(path("root.hints"), "w") as f:
        f.write(harness.ROOT_HINTS)
    return path("root.hints")


def gen_feed(file_name, lo, hi, serial):
    with open(path(file_name), "w") as f:
        f.write('{"format": "dnsfilter-feed/1", "serial": %d, "timezone": "+09:00",'
                ' "entries": [\n' % serial)
        per = 1000
        for k, first in enumerate(range(lo, hi, per)):
            names = ",".join('"n%d.%s"' % (i, ZONE) for i in range(first, min(hi, first + per)))
            f.write('%s{"id": "BENCH-%d-%d", "behavior": "backdoor", "start": "2020-01-01",'
                    ' "fqdns": [%s]}' % ("" if k == 0 else ",\n", serial, k, names))
        f.write("\n]}\n")


started = time.monotonic()
gen_feed("feed-1.json", 0, N, 1)
gen_feed("feed-2.json", HALF, N + HALF, 2)
log("generated two feeds of %d names (%.0f MB each) in %.1f s" % (
    N, os.path.getsize(path("feed-1.json")) / 1e6, time.monotonic() - started))

rng = random.Random(42)
UNLISTED = 50000
with open(path("queries.txt"), "w") as f:
    for _ in range(400000):
        x = rng.random()
        if x < 0.25:    # listed by both feeds
            i = rng.randrange(HALF, N)
        elif x < 0.375:  # feed 1 only
            i = rng.randrange(0, HALF)
        elif x < 0.5:   # feed 2 only
            i = rng.randrange(N, N + HALF)
        else:
            f.write("u%d.%s A\n" % (rng.randrange(UNLISTED), ZONE))
            continue
        f.write("n%d.%s A\n" % (i, ZONE))
log("query file: 400000 queries: 25 %% listed by both feeds, 12.5 %% feed 1 only, "
    "12.5 %% feed 2 only, 50 %% unlisted (%d names)" % UNLISTED)

nsd_port, = free_ports(1)
with open(path(ZONE + ".zone"), "w") as f:
    f.write("$ORIGIN %s.\n$TTL 3600\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n"
            "@ IN NS ns1\nns1 IN A 127.0.0.1\nprobe IN A 192.0.2.53\n"
            "* IN A 192.0.2.10\n" % ZONE)
with open(path("nsd.conf"), "w") as f:
    f.write("""server:
\tip-address: 127.0.0.1@%d
\tdo-ip6: no
\tserver-count: 1
\tusername: ""
\tchroot: ""
\tzonesdir: "%s"
\tdatabase: ""
\tzonelistfile: "%s/nsd.zonelist"
\txfrdfile: "%s/nsd.xfrd.state"
\txfrdir: "%s"
\tpidfile: "%s/nsd.pid"
\tlogfile: "%s/nsd.log"
\tverbosity: 1
\trrl-ratelimit: 0
remote-control:
\tcontrol-enable: no
zone:
\tname: "%s"
\tzonefile: "%s.zone"
""" % (nsd_port, work, work, work, work, work, work, ZONE, ZONE))


def unbound_conf(name, port, control_port, module, include=None):
    lines = [
        "server:",
        "\tinterface: 127.0.0.1",
        "\tport: %d" % port,
        "\tdo-ip6: no",
        '\tdirectory: "%s"' % work,
        '\tchroot: ""',
        '\tusername: ""',
        '\tpidfile: "%s/%s.pid"' % (work, name),
        '\tlogfile: "%s/%s.log"' % (work, name),
        "\tuse-syslog: no",
        "\tlog-time-ascii: yes",
        "\tverbosity: 1",
        "\tnum-threads: %d" % args.threads,
        "\tmsg-cache-size: 64m",
        "\trrset-cache-size: 128m",
        "\tso-rcvbuf: 8m",
        "\tso-sndbuf: 8m",
        '\tmodule-config: "%s"' % ("dynlib validator iterator" if module else "iterator"),
        "\tdo-not-query-localhost: no",
        "\tharden-referral-path: no",
        '\tlocal-zone: "test." nodefault',
        '\tdomain-insecure: "test"',
        # loopback root hints that may not be queried (harness.ROOT_HINTS):
        # nothing goes to the real root servers
        '\troot-hints: "%s"' % root_hints(),
        "\tdo-not-query-address: %s" % harness.ROOT_HINT_ADDRESS,
    ]
    if include:
        lines.append('\tinclude: "%s"' % include)
    lines += ["stub-zone:", '\tname: "%s"' % ZONE, "\tstub-addr: 127.0.0.1@%d" % nsd_port,
              "remote-control:", "\tcontrol-enable: yes", "\tcontrol-interface: 127.0.0.1",
              "\tcontrol-port: %d" % control_port, "\tcontrol-use-cert: no"]
    if module:
        lines += ["dynlib:", '\tdynlib-file: "%s"' % MODULE]
    with open(path(name + ".conf"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return path(name + ".conf")


def control(conf, *command, timeout=60):
    return subprocess.run([os.path.join(SBIN, "unbound-control"), "-c", conf] + list(command),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=timeout)


def dnsperf(port, label):
    argv = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", path("queries.txt"),
            "-c", "2", "-Q", str(args.rate), "-l", str(args.duration), "-S", "1", "-v",
            "-t", str(args.timeout), "-q", "60000"]
    return start(argv, path("dnsperf-%s.out" % label))


results = {}
nsd = start(["nsd", "-d", "-c", path("nsd.conf")], path("nsd.out"))
if not wait_answering(nsd_port, "probe." + ZONE, 15, nsd):
    sys.exit("NSD did not start: see %s" % path("nsd.log"))


def warm_up(port):
    """One pass over the query file at the run's rate, so a run starts with
    what it asks for cached (unlisted names, names listed only by the feed
    not in force). Returns the number of queries completed."""
    p = subprocess.run(["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d",
                        path("queries.txt"), "-c", "2", "-Q", str(args.rate), "-n", "1",
                        "-t", "5", "-q", "60000"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True)
    m = re.search(r"Queries completed:\s+(\d+)", p.stdout)
    return int(m.group(1)) if m else 0


# ---------------------------------------------------------------------------
# Runs


def run_dnsfilter(label, swaps, compiled=False):
    """Unbound + dnsfilter with feed 1; dnsperf for the duration; swaps
    feed replacements by rename, evenly spread. compiled: before each
    rename, the new feed's index image (dnsfilter-check --compile) is put
    in the state directory, as a fleet host receives it with the feed, so
    the module maps it instead of parsing the JSON. Return the figures."""
    port, control_port = free_ports(2)
    conf = unbound_conf(label, port, control_port, module=True)
    with open(path("dnsfilter.json"), "w") as f:
        json.dump({"feed": "feed.json", "watch-interval": 1, "ttl": 60}, f)
    if os.path.exists(path("feed.json")):
        os.unlink(path("feed.json"))
    os.link(path("feed-1.json"), path("feed.json"))
    env = dict(os.environ, DNSFILTER_CONF=path("dnsfilter.json"))
    t0 = time.monotonic()
    ub = start([os.path.join(SBIN, "unbound"), "-d", "-c", conf], path(label + ".out"), env)
    if not wait_answering(port, "probe." + ZONE, 120, ub):
        sys.exit("Unbound with dnsfilter did not start:\n" +
                 open(path(label + ".log")).read()[-3000:])
    start_s = time.monotonic() - t0
    log("%s: Unbound with a %d-name feed answers after %.1f s" % (label, N, start_s))
    warmed = warm_up(port)
    time.sleep(1)
    rss_one = status_kb(ub.pid, "VmRSS")
    hwm_start = status_kb(ub.pid, "VmHWM")
    reset_ok = reset_hwm(ub.pid)
    log("%s: warm-up pass over the query file: %d answers; RSS with one feed %d kB (VmHWM since start "
        "%d kB; HWM reset %s)" % (label, warmed, rss_one, hwm_start,
                                  "ok" if reset_ok else "FAILED"))

    watcher = LogWatcher(path(label + ".log"),
                         r"dnsfilter: .*(new feed in force|rejected|stays)")
    watcher.start()
    probe = Probe(port, "probe." + ZONE)
    probe.start()
    perf = dnsperf(port, label)
    run_start = time.monotonic()
    renames = []
    interval = args.duration / (swaps + 1.0)
    for k in range(swaps):
        target = run_start + interval * (k + 1)
        while time.monotonic() < target:
            time.sleep(0.01)
        source = "feed-2.json" if k % 2 == 0 else "feed-1.json"
        if compiled:
            os.link(path(source + ".image"), path("feed.json.index.next"))
            os.replace(path("feed.json.index.next"), path("feed.json.index"))
        os.link(path(source), path("feed.json.next"))
        renamed = time.monotonic()
        os.replace(path("feed.json.next"), path("feed.json"))
        renames.append(renamed)
        log("%s: swap %d: %s renamed over feed.json at t=%.1f s" % (
            label, k + 1, source, renamed - run_start))
    perf.wait(args.duration + 60)
    running.remove(perf)
    time.sleep(1)
    probe.stopping.set()
    probe.join(3)
    watcher.stopping.set()
    watcher.join(2)
    hwm = status_kb(ub.pid, "VmHWM")
    rss_end = status_kb(ub.pid, "VmRSS")
    with open(path("dnsperf-%s.out" % label), errors="replace") as f:
        d = parse_dnsperf(f.read())
    # Each rename with the first 'new feed in force' line seen after it.
    seen = [(t, line) for t, line in watcher.seen if "new feed in force" in line]
    delays = []
    for i, renamed in enumerate(renames):
        until = renames[i + 1] if i + 1 < len(renames) else float("inf")
        match = next(((t, line) for t, line in seen if renamed <= t < until), None)
        if match:
            m = re.search(r"loaded in ([0-9.]+) s; (.*)", match[1])
            delays.append((match[0] - renamed, float(m.group(1)) if m else None,
                           m.group(2).strip() if m else ""))
        else:
            delays.append((None, None, ""))
    gap, _ = probe.longest_gap()
    log("%s: sent %d, completed %d, lost %d; latency avg %.6f max %.6f s" % (
        label, d.get("sent", 0), d.get("completed", 0), d.get("lost", 0), d.get("avg", 0),
        d.get("max", 0)))
    for k, (delay, loaded, purge) in enumerate(delays):
        log("%s: swap %d: rename -> 'new feed in force' %s (module: loaded in %s s; %s)" % (
            label, k + 1, "%.2f s" % delay if delay is not None else "NOT SEEN", loaded,
            purge))
    log("%s: VmHWM since the start of the run %d kB; RSS with one feed %d kB; at end %d kB"
        % (label, hwm, rss_one, rss_end))
    control(conf, "stop")
    try:
        ub.wait(30)
    except subprocess.TimeoutExpired:
        pass
    stop(ub)
    return dict(perf=d, delays=delays if swaps else None, rss_one=rss_one, hwm=hwm,
                hwm_start=hwm_start, rss_end=rss_end, start_s=start_s, gap=gap,
                probe_fail=probe.failures,
                other=[line for t, line in watcher.seen if "new feed in force" not in line])


def run_stock(label):
    """Stock Unbound, feed 1's names as local-zones; one reload under load."""
    t0 = time.monotonic()
    with open(path("localzones.conf"), "w") as f:
        for i in range(N):
            f.write('local-zone: "n%d.%s." redirect\nlocal-data: "n%d.%s. A 0.0.0.0"\n'
                    % (i, ZONE, i, ZONE))
    log("%s: wrote %d local-zone + local-data pairs (%.0f MB) in %.1f s" % (
        label, N, os.path.getsize(path("localzones.conf")) / 1e6, time.monotonic() - t0))
    port, control_port = free_ports(2)
    conf = unbound_conf(label, port, control_port, module=False,
                        include=path("localzones.conf"))
    t0 = time.monotonic()
    ub = start([os.path.join(SBIN, "unbound"), "-d", "-c", conf], path(label + ".out"))
    if not wait_answering(port, "probe." + ZONE, 900, ub):
        sys.exit("stock Unbound did not start:\n" + open(path(label + ".log")).read()[-3000:])
    start_s = time.monotonic() - t0
    log("%s: Unbound with %d local-zones answers after %.1f s" % (label, N, start_s))
    warmed = warm_up(port)
    time.sleep(1)
    rss_one = status_kb(ub.pid, "VmRSS")
    hwm_start = status_kb(ub.pid, "VmHWM")
    reset_hwm(ub.pid)
    log("%s: warm-up pass over the query file: %d answers; RSS %d kB (VmHWM since start %d kB)" % (
        label, warmed, rss_one, hwm_start))
    watcher = LogWatcher(path(label + ".log"), r"service stopped|start of service")
    watcher.start()
    probe = Probe(port, "probe." + ZONE)
    probe.start()
    perf = dnsperf(port, label)
    run_start = time.monotonic()
    reload_at = run_start + min(10, args.duration / 4.0)
    while time.monotonic() < reload_at:
        time.sleep(0.01)
    reload_sent = time.monotonic()
    r = control(conf, "reload", timeout=600)
    log("%s: unbound-control reload at t=%.1f s: %s" % (
        label, reload_sent - run_start, r.stdout.strip()))
    perf.wait(args.duration + 60)
    running.remove(perf)
    # A reload longer than the load: wait for its end.
    reload_deadline = time.monotonic() + 900
    while not any("start of service" in line and t > reload_sent
                  for t, line in watcher.seen) and time.monotonic() < reload_deadline:
        time.sleep(0.1)
    time.sleep(1)
    probe.stopping.set()
    probe.join(3)
    watcher.stopping.set()
    watcher.join(2)
    hwm = status_kb(ub.pid, "VmHWM")
    rss_end = status_kb(ub.pid, "VmRSS")
    with open(path("dnsperf-%s.out" % label), errors="replace") as f:
        d = parse_dnsperf(f.read())
    gap, _ = probe.longest_gap()
    back = next((t for t, line in watcher.seen
                 if "start of service" in line and t > reload_sent), None)
    outage = (back - reload_sent) if back else None
    log("%s: sent %d, completed %d, lost %d; reload -> 'start of service' %s; longest probe "
        "gap %.2f s" % (label, d.get("sent", 0), d.get("completed", 0), d.get("lost", 0),
                        "%.1f s" % outage if outage is not None else "NOT SEEN", gap or -1))
    control(conf, "stop")
    try:
        ub.wait(120)
    except subprocess.TimeoutExpired:
        pass
    stop(ub)
    return dict(perf=d, rss_one=rss_one, hwm=hwm, hwm_start=hwm_start, rss_end=rss_end,
                start_s=start_s, gap=gap, probe_fail=probe.failures, reload_to_answer=outage)


COLUMNS = [("baseline", "dnsfilter, no swap"),
           ("swaps", "dnsfilter, %d hot swaps" % args.swaps),
           ("compiled", "%d swaps, image shipped" % args.swaps),
           ("stock", "stock local-zone, 1 reload")]
try:
    results["baseline"] = run_dnsfilter("baseline", 0)
    results["swaps"] = run_dnsfilter("swaps", args.swaps)
    # the fleet way: each feed's image compiled once, shipped with it
    for feed_name in ("feed-1.json", "feed-2.json"):
        subprocess.run([CHECK, path(feed_name), "--compile", path(feed_name + ".image")],
                       check=True, stdout=subprocess.DEVNULL, timeout=600)
    results["compiled"] = run_dnsfilter("compiled", args.swaps, compiled=True)
    if not args.skip_stock:
        results["stock"] = run_stock("stock")
finally:
    for p in list(running):
        stop(p)
    if args.keep:
        log("kept %s" % work)
    else:
        shutil.rmtree(work, ignore_errors=True)

# ---------------------------------------------------------------------------
# The table


def fmt(value, spec="%s", missing="-"):
    return missing if value is None else spec % value


def row(label, fn):
    cells = []
    for key, _ in COLUMNS:
        r = results.get(key)
        try:
            cells.append(fn(r) if r else "-")
        except (KeyError, TypeError, ValueError):
            cells.append("-")
    return "| %-42s | %s |" % (label, " | ".join("%-26s" % c for c in cells))


def ms(value, spec="%.3f ms"):
    return fmt(value * 1000 if value is not None else None, spec)


def delays(r, index):
    values = [x[index] for x in r["delays"] if x[index] is not None]
    if not values:
        return "not seen"
    return "%.2f / %.2f / %.2f s" % (min(values), sum(values) / len(values), max(values))


print()
print("Feed: %d names (feed 2 shares half of them); load: dnsperf -c 2 -Q %d for %d s "
      "(-t %d), Unbound num-threads %d; probe: one query every 10 ms" % (
          N, args.rate, args.duration, args.timeout, args.threads))
print()
print("| %-42s | %s |" % ("", " | ".join("%-26s" % title for _, title in COLUMNS)))
print("|%s|%s" % ("-" * 44, "|".join("-" * 28 for _ in COLUMNS)) + "|")
print(row("start until answering", lambda r: "%.1f s" % r["start_s"]))
print(row("queries sent", lambda r: fmt(r["perf"].get("sent"), "%d")))
print(row("queries completed", lambda r: fmt(r["perf"].get("completed"), "%d")))
print(row("queries lost", lambda r: fmt(r["perf"].get("lost"), "%d")))
print(row("response codes", lambda r: r["perf"]["rcodes"].replace(" (", "(")[:26]))
print(row("achieved qps", lambda r: fmt(r["perf"].get("qps"), "%.0f")))
print(row("lowest 1-s interval (-S 1, not 1st/last)", lambda r: fmt(
    min(q for _, q in r["perf"]["intervals"][1:-1]), "%.0f qps")))
print(row("latency avg / stddev", lambda r: "%s / %s" % (
    ms(r["perf"].get("avg")), ms(r["perf"].get("stddev")))))
print(row("latency min / max", lambda r: "%s / %s" % (
    ms(r["perf"].get("min")), ms(r["perf"].get("max"), "%.1f ms"))))
for p in (50, 90, 99, 99.9, 99.99):
    print(row("latency p%s (from dnsperf -v)" % p,
              lambda r, p=p: ms(r["perf"]["percentiles"].get(p))))
print(row("longest gap between probe answers", lambda r: fmt(r["gap"], "%.3f s")))
print(row("probe queries unanswered (1 s timeout)", lambda r: "%d" % r["probe_fail"]))
print(row("rename -> new feed in force min/avg/max", lambda r: delays(r, 0)))
print(row("  module's 'loaded in' min/avg/max", lambda r: delays(r, 1)))
print(row("swaps seen in force", lambda r: "%d / %d" % (
    len([x for x, _, _ in r["delays"] if x is not None]), len(r["delays"]))))
print(row("reload -> 'start of service' (outage)", lambda r: fmt(
    r["reload_to_answer"], "%.1f s")))
print(row("RSS with the names loaded", lambda r: "%.0f MB" % (r["rss_one"] / 1024.0)))
print(row("VmHWM at start + warm-up", lambda r: "%.0f MB" % (r["hwm_start"] / 1024.0)))
print(row("VmHWM during the run (reset before)", lambda r: "%.0f MB" % (r["hwm"] / 1024.0)))
print(row("RSS at end", lambda r: "%.0f MB" % (r["rss_end"] / 1024.0)))
for key in ("baseline", "swaps"):
    if results.get(key, {}).get("other"):
        print("\nother module lines (%s):\n%s" % (key, "\n".join(results[key]["other"])))
PY
