"""Helpers for the refresh, opt-out and reload-loop tests, on top of
harness.py (only its committed API: Nsd, Unbound, WorkDir, kdig, ...).

- feed file replacement by rename and rewriting in place;
- waiting for the module's log lines (new feed in force, rejections,
  opt-out refreshes, loads at init);
- queries from another loopback source address (kdig -b);
- DelayProxy: a UDP+TCP DNS proxy on 127.0.0.1 that forwards to NSD and
  holds back the answers for chosen names, so a resolution stays in flight;
- process memory from /proc/PID/status;
- dnsperf runs and the parse of their summary.

Every wait is bounded.
"""

import json
import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time

import harness

# ---------------------------------------------------------------------------
# Files


def _bytes(content):
    """Text, bytes or a JSON-able document, as bytes."""
    if not isinstance(content, (str, bytes)):
        content = json.dumps(content, indent=1)
    if isinstance(content, str):
        content = content.encode("utf-8")
    return content


def replace_by_rename(path, content):
    """Write content (text, bytes or a JSON-able document) beside path and
    rename it over path (a new inode), as an installer does."""
    data = _bytes(content)
    aside = "%s.new-%d" % (path, os.getpid())
    with open(aside, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(aside, path)
    return path


def rewrite_in_place(path, content):
    """Rewrite path in place (same inode): truncate and write in one go."""
    data = _bytes(content)
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


# ---------------------------------------------------------------------------
# Log lines of the module

NEW_FEED = re.compile(
    r"dnsfilter: (?P<path>\S+): new feed in force: serial (?P<serial>\d+), "
    r"(?P<entries>\d+) entries, (?P<names>\d+) names, loaded in (?P<seconds>[0-9.]+) s; "
    r"(?P<purge>cache purged after (?P<purge_ms>[0-9.]+) ms|[^\n]*)(?P<rest>[^\n]*)")
FEED_REJECTED = re.compile(r"dnsfilter: (?P<path>\S+): feed rejected \((?P<errors>\d+) errors?\)")
FEED_STAYS = re.compile(r"dnsfilter: (?P<path>\S+): the loaded feed stays in force")
OPTOUT_NEW = re.compile(
    r"dnsfilter: (?P<path>\S+): new opt-out networks in force: (?P<prefixes>\d+) prefixes")
OPTOUT_STAYS = re.compile(r"dnsfilter: (?P<path>\S+): the opt-out networks in force stay")
# The line init writes at each load (start, reload).
INIT_LOAD = re.compile(r"dnsfilter: \S+ \(built for [^)]*\): feed \S+: (?P<entries>\d+) entries")


def matches(unbound, regex):
    """The re.Match objects of regex over the Unbound log, in order."""
    found = []
    for line in unbound.output().splitlines():
        m = regex.search(line)
        if m:
            found.append(m)
    return found


def wait_for_count(unbound, regex, count, timeout):
    """Wait until regex matched at least count log lines; return the
    matches (fewer than count on timeout)."""
    result = []

    def enough():
        result[:] = matches(unbound, regex)
        return len(result) >= count

    harness.wait_until(enough, timeout, interval=0.05)
    return list(result)


def log_tail(unbound, lines=60):
    return "\n".join(unbound.output().splitlines()[-lines:])


def dnsfilter_lines(unbound):
    return [line for line in unbound.output().splitlines() if "dnsfilter:" in line]


# ---------------------------------------------------------------------------
# Queries


def query_from(unbound, name, qtype="A", source=harness.LOOPBACK, **kwargs):
    """kdig to the Unbound from a given loopback source address (-b)."""
    options = list(kwargs.pop("options", ()))
    if source != harness.LOOPBACK:
        options += ["-b", source]
    return harness.kdig(unbound.port, name, qtype, options=options, **kwargs)


def status_ok(unbound, timeout=5):
    """unbound-control status answers (exit 0)."""
    try:
        return unbound.control("status", timeout=timeout).returncode == 0
    except subprocess.TimeoutExpired:
        return False


# ---------------------------------------------------------------------------
# Memory


def proc_status_kb(pid, field):
    """A 'kB' field of /proc/PID/status (VmRSS, VmHWM, ...), or None."""
    try:
        with open("/proc/%d/status" % pid, encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


# ---------------------------------------------------------------------------
# DNS wire bits for the proxy


def wire_qname(message):
    """(lower-case qname with final dot, qtype) of a DNS message, or
    (None, None) if it cannot be parsed."""
    try:
        labels = []
        offset = 12
        while True:
            length = message[offset]
            if length == 0:
                offset += 1
                break
            if length & 0xC0:
                return None, None
            labels.append(message[offset + 1:offset + 1 + length].decode("ascii", "replace"))
            offset += 1 + length
        qtype = struct.unpack("!H", message[offset:offset + 2])[0]
        return (".".join(labels) + ".").lower(), qtype
    except (IndexError, struct.error):
        return None, None


def _recv_exact(sock, count):
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            return None
        data += chunk
    return data


class DelayProxy:
    """A DNS proxy on 127.0.0.1:<free port> (UDP and TCP) in front of an
    upstream server (NSD), delaying the answers for the names in slow.

    The delay counts from the first query of an episode: every query for a
    slow name that arrives while another one for it is held back is
    answered at the same release time (first arrival + delay). A resolver
    that times out and retransmits thus gets its answer to the latest
    retransmission at about first arrival + delay, not delay after the
    last one. events: (monotonic time, transport, qname, qtype, delayed)
    of every query forwarded.
    """

    def __init__(self, upstream_port, slow=(), delay=2.0):
        self.upstream = (harness.LOOPBACK, upstream_port)
        self.slow = {self._fqdn(name) for name in slow}
        self.delay = delay
        self.port = harness.free_port()
        self.events = []
        self._lock = threading.Lock()
        self._held = {}  # name -> [release time, number held]
        self._stopping = threading.Event()
        self._threads = []
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((harness.LOOPBACK, self.port))
        self.udp.settimeout(0.2)
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind((harness.LOOPBACK, self.port))
        self.tcp.listen(16)
        self.tcp.settimeout(0.2)

    @staticmethod
    def _fqdn(name):
        name = name.lower()
        return name if name.endswith(".") else name + "."

    def start(self):
        for target in (self._udp_loop, self._tcp_loop):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self):
        self._stopping.set()
        for thread in self._threads:
            thread.join(2)
        self.udp.close()
        self.tcp.close()

    def queries_for(self, name):
        name = self._fqdn(name)
        with self._lock:
            return [event for event in self.events if event[2] == name]

    # The release time of a held answer, or None for a name not slowed.
    def _hold(self, qname):
        if qname not in self.slow:
            return None
        with self._lock:
            now = time.monotonic()
            held = self._held.get(qname)
            if not held or held[1] == 0:
                held = [now + self.delay, 0]
                self._held[qname] = held
            held[1] += 1
            return held[0]

    def _unhold(self, qname):
        with self._lock:
            self._held[qname][1] -= 1

    def _wait_release(self, release):
        while not self._stopping.is_set():
            left = release - time.monotonic()
            if left <= 0:
                return True
            time.sleep(min(left, 0.05))
        return False

    def _record(self, transport, qname, qtype, delayed):
        with self._lock:
            self.events.append((time.monotonic(), transport, qname, qtype, delayed))

    def _udp_loop(self):
        while not self._stopping.is_set():
            try:
                message, client = self.udp.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._udp_one, args=(message, client),
                                      daemon=True)
            thread.start()

    def _udp_one(self, message, client):
        qname, qtype = wire_qname(message)
        release = self._hold(qname)
        self._record("udp", qname, qtype, release is not None)
        try:
            upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            upstream.settimeout(3)
            try:
                upstream.sendto(message, self.upstream)
                answer = upstream.recv(65535)
            except OSError:
                return
            finally:
                upstream.close()
            if release is not None and not self._wait_release(release):
                return
            try:
                self.udp.sendto(answer, client)
            except OSError:
                pass
        finally:
            if release is not None:
                self._unhold(qname)

    def _tcp_loop(self):
        while not self._stopping.is_set():
            try:
                connection, _ = self.tcp.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._tcp_one, args=(connection,),
                                      daemon=True)
            thread.start()

    def _tcp_one(self, connection):
        connection.settimeout(10)
        try:
            while not self._stopping.is_set():
                header = _recv_exact(connection, 2)
                if not header:
                    return
                message = _recv_exact(connection, struct.unpack("!H", header)[0])
                if message is None:
                    return
                qname, qtype = wire_qname(message)
                release = self._hold(qname)
                self._record("tcp", qname, qtype, release is not None)
                try:
                    with socket.create_connection(self.upstream, timeout=3) as upstream:
                        upstream.sendall(header + message)
                        length = _recv_exact(upstream, 2)
                        answer = _recv_exact(upstream, struct.unpack("!H", length)[0]) \
                            if length else None
                    if answer is None:
                        return
                    if release is not None and not self._wait_release(release):
                        return
                    connection.sendall(struct.pack("!H", len(answer)) + answer)
                finally:
                    if release is not None:
                        self._unhold(qname)
        except OSError:
            return
        finally:
            connection.close()


# ---------------------------------------------------------------------------
# dnsperf


class Dnsperf:
    """dnsperf in the background against an Unbound, queries from a data
    file; stop() ends it (SIGINT, so it prints its summary) and returns the
    parsed summary."""

    def __init__(self, workdir, port, queries, clients=2, rate=2000, limit=600,
                 timeout=5, stats=None, label="dnsperf", source=None):
        self.data = workdir.write("%s.queries" % label,
                                  "".join("%s %s\n" % q for q in queries))
        argv = [harness.tool("dnsperf"), "-s", harness.LOOPBACK, "-p", str(port),
                "-d", self.data, "-c", str(clients), "-Q", str(rate),
                "-l", str(limit), "-t", str(timeout)]
        if stats:
            argv += ["-S", str(stats)]
        if source:
            argv += ["-a", source]
        self.output_path = workdir.file("%s.out" % label)
        self.process = harness.Process(argv, self.output_path)

    def stop(self, timeout=15):
        """SIGINT, wait (bounded) for the summary, then TERM/KILL."""
        if self.process.running():
            try:
                self.process.popen.send_signal(signal.SIGINT)
            except ProcessLookupError:
                pass
            self.process.wait(timeout)
        self.process.stop()
        return parse_dnsperf(self.process.output())

    def wait(self, timeout):
        self.process.wait(timeout)
        self.process.stop()
        return parse_dnsperf(self.process.output())


def parse_dnsperf(text):
    """The numbers of dnsperf's summary: sent, completed, lost, qps,
    latency_avg, latency_min, latency_max, latency_stddev (seconds), and
    rcodes (dict); text: all of its output."""
    summary = {"text": text}
    patterns = {
        "sent": r"Queries sent:\s+(\d+)",
        "completed": r"Queries completed:\s+(\d+)",
        "lost": r"Queries lost:\s+(\d+)",
        "qps": r"Queries per second:\s+([0-9.]+)",
        "latency_avg": r"Average Latency \(s\):\s+([0-9.]+)",
        "latency_min": r"Average Latency \(s\):\s+[0-9.]+ \(min ([0-9.]+),",
        "latency_max": r"Average Latency \(s\):.*max ([0-9.]+)\)",
        "latency_stddev": r"Latency StdDev \(s\):\s+([0-9.]+)",
    }
    for key, pattern in patterns.items():
        m = re.search(pattern, text)
        if m:
            summary[key] = float(m.group(1)) if "." in m.group(1) else int(m.group(1))
    m = re.search(r"Response codes:\s+(.*)", text)
    summary["rcodes"] = {}
    if m:
        for part in m.group(1).split(","):
            fields = part.split()
            if len(fields) >= 2 and fields[1].isdigit():
                summary["rcodes"][fields[0]] = int(fields[1])
    return summary
