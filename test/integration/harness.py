"""Integration test harness: real NSD + real Unbound (+ dnsfilter) on 127.0.0.1.

Each scenario gets a temp dir, free loopback ports, an NSD serving the test
zone(s) and an Unbound that resolves them through a stub-zone, with the
dnsfilter module loaded through dynlib (or without it, for harness checks).
Queries go through kdig; its text output is parsed into an Answer.

Every wait is bounded; everything started is stopped (TERM, then KILL after a
bounded wait) by stop(), which the tests register as cleanups, and by an
atexit hook as a last resort.

Environment:
  DNSFILTER_UNBOUND   dir with unbound, unbound-control
                      (default <repo>/build/unbound-<scripts/unbound-version>/sbin)
  DNSFILTER_MODULE    the module (default <repo>/build/test/dnsfilter.so,
                      scripts/test's build)
  DNSFILTER_KEEP_TMP  1: keep the temp dirs (their paths are printed)
"""

import atexit
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections import namedtuple

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
with open(os.path.join(REPO, "scripts", "unbound-version"), encoding="ascii") as _f:
    UNBOUND_VERSION = _f.read().strip()  # the Unbound scripts/setup builds
UNBOUND_SBIN = os.environ.get(
    "DNSFILTER_UNBOUND", os.path.join(REPO, "build", "unbound-" + UNBOUND_VERSION, "sbin"))
# scripts/test's build folder
MODULE = os.environ.get(
    "DNSFILTER_MODULE", os.path.join(REPO, "build", "test", "dnsfilter.so"))
KEEP_TMP = os.environ.get("DNSFILTER_KEEP_TMP") == "1"

LOOPBACK = "127.0.0.1"
# Unbound's root hints in every test: one root server, on a loopback
# address that Unbound is also told not to query (do-not-query-address), so
# a name outside the stub zones (a priming query, a typo in a test) gets
# SERVFAIL at once instead of going to the real root servers
# (selftest_harness.py shows it). The benchmarks and scripts/run use it too.
ROOT_HINT_ADDRESS = "127.0.0.254"
ROOT_HINTS = (".  3600000 NS a.root.invalid.\n"
              "a.root.invalid. 3600000 A %s\n" % ROOT_HINT_ADDRESS)
# DNSFILTER_VALGRIND=1 runs every Unbound under valgrind's memcheck (slow:
# the waits grow) and fails a test whose Unbound had a memory error or a
# definite leak with the module in its stack.
VALGRIND = os.environ.get("DNSFILTER_VALGRIND") == "1"
SLOWDOWN = 6 if VALGRIND else 1
START_TIMEOUT = 15.0 * SLOWDOWN  # seconds for a server to answer (or exit) after start
STOP_TIMEOUT = 5.0  # seconds between TERM and KILL
QUERY_TIMEOUT = 2 * (4 if VALGRIND else 1)  # kdig +time, seconds


def tool(name):
    """Absolute path of an installed program, or fail with a hint."""
    for folder in (UNBOUND_SBIN, "/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        path = os.path.join(folder, name)
        if os.access(path, os.X_OK):
            return path
    path = shutil.which(name)
    if not path:
        raise RuntimeError("%s not found (run scripts/setup)" % name)
    return path


SANITIZED = bool(os.environ.get("DNSFILTER_UNBOUND_PRELOAD"))


def sanitizer_runtime():
    """The sanitizer runtime to preload into Unbound for a module built
    with ASan+UBSan (Unbound is not): DNSFILTER_UNBOUND_PRELOAD names it, or
    says "sanitizer-runtime" to take the one the module links (ldd)."""
    preload = os.environ.get("DNSFILTER_UNBOUND_PRELOAD")
    if preload != "sanitizer-runtime":
        return preload
    listing = subprocess.run(["ldd", module_path()], stdout=subprocess.PIPE,
                             universal_newlines=True, check=True).stdout
    for line in listing.splitlines():
        m = re.match(r"\s*(\S*(?:asan|tsan|clang_rt)\S*) => (\S+)", line)
        if m and m.group(2).startswith("/"):
            return m.group(2)
        if m:  # not on the loader's path (clang's runtime): ask the compilers
            for compiler in ("clang", "gcc", "cc"):
                if shutil.which(compiler):
                    path = subprocess.run([compiler, "-print-file-name=" + m.group(1)],
                                          stdout=subprocess.PIPE,
                                          universal_newlines=True).stdout.strip()
                    if os.path.isabs(path) and os.path.exists(path):
                        return path
    raise RuntimeError("%s links no sanitizer runtime:\n%s" % (module_path(), listing))


def module_path():
    """The dnsfilter module, or fail with a clear message."""
    path = os.path.abspath(MODULE)
    if not os.path.isfile(path):
        raise RuntimeError(
            "module %s not built (cmake --build build/cmake; or set "
            "DNSFILTER_MODULE)" % path)
    return path


# ---------------------------------------------------------------------------
# Ports

_ports_given = set()


def free_port():
    """A port free on 127.0.0.1 for both UDP and TCP, not handed out before
    by this process (the kernel may reuse one quickly)."""
    for _ in range(200):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            udp.bind((LOOPBACK, 0))
            port = udp.getsockname()[1]
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind((LOOPBACK, port))
        except OSError:
            continue
        finally:
            udp.close()
            tcp.close()
        if port not in _ports_given:
            _ports_given.add(port)
            return port
    raise RuntimeError("no free port on 127.0.0.1")


# ---------------------------------------------------------------------------
# kdig and its output

RR = namedtuple("RR", "owner ttl rrclass type rdata")


class Answer:
    """A DNS response as kdig printed it.

    rcode: "NOERROR", "NXDOMAIN", ...; flags: set of "qr aa tc rd ra ad cd"
    present; question: (name as echoed, class, type) or None; answer,
    authority, additional: lists of RR (ttl an int, type upper case, rdata the
    rest of the line); edns: the EDNS pseudosection lines; ede: list of
    (info code, extra text or None) from the EDE options kdig printed (with
    +edns); text: kdig's output.
    """

    def __init__(self, text):
        self.text = text
        self.rcode = None
        self.flags = set()
        self.question = None
        self.answer = []
        self.authority = []
        self.additional = []
        self.edns = []
        self.ede = []
        self._parse(text)

    def _parse(self, text):
        section = None
        sections = {"ANSWER": self.answer, "AUTHORITY": self.authority,
                    "ADDITIONAL": self.additional}
        for line in text.splitlines():
            if not line.strip():
                continue
            m = re.match(r";; ->>HEADER<<- opcode: \S+; status: (\S+);", line)
            if m:
                self.rcode = m.group(1)
                continue
            m = re.match(r";; Flags:([^;]*);", line)
            if m:
                self.flags = set(m.group(1).split())
                continue
            m = re.match(r";; ([A-Z ]+) (?:SECTION|PSEUDOSECTION):", line)
            if m:
                section = m.group(1)
                continue
            if section == "QUESTION" and line.startswith(";;"):
                fields = line[2:].split()
                if len(fields) >= 3:
                    self.question = (fields[0], fields[1], fields[2])
                continue
            if section == "EDNS" and line.startswith(";;"):
                self.edns.append(line[2:].strip())
                # kdig 3.2: "EDE: 15 (Blocked): 'extra text'"; no text part
                # when the option has none.
                m = re.match(r"EDE: (\d+)(?: \([^)]*\))?(?:: '(.*)')?$",
                             line[2:].strip())
                if m:
                    self.ede.append((int(m.group(1)), m.group(2)))
                continue
            if line.startswith(";"):
                section = None if line.startswith(";; Received") else section
                continue
            if section in sections:
                fields = line.split(None, 4)
                if len(fields) >= 4:
                    rdata = fields[4].strip() if len(fields) > 4 else ""
                    sections[section].append(
                        RR(fields[0], int(fields[1]), fields[2],
                           fields[3].upper(), rdata))
        if self.rcode is None:
            raise QueryError("no DNS response in kdig output:\n" + text)

    def rdata(self, rrtype=None, section="answer"):
        """The rdata of the RRs of a section (of one type if given)."""
        rrs = getattr(self, section)
        return [rr.rdata for rr in rrs if rrtype is None or rr.type == rrtype.upper()]

    def __repr__(self):
        return "Answer(%s)" % self.text


class QueryError(Exception):
    """kdig got no response (timeout, refused, ...)."""


def kdig(port, name, qtype="A", *, tcp=False, dnssec=False, options=(),
         timeout=QUERY_TIMEOUT):
    """Ask 127.0.0.1@port for name/qtype with kdig; return an Answer.
    No retries (a retried UDP query would be seen twice by the server)."""
    argv = [tool("kdig"), "@%s" % LOOPBACK, "-p", str(port),
            "+time=%d" % timeout, "+retry=0", "+noidn", "-q", name,
            "-t", qtype]
    if tcp:
        argv.append("+tcp")
    if dnssec:
        argv.append("+dnssec")
    argv += list(options)
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout + 5)
    except subprocess.TimeoutExpired as e:
        raise QueryError("kdig did not finish: %s" % " ".join(argv)) from e
    text = proc.stdout.decode("utf-8", "replace")
    if "->>HEADER<<-" not in text:
        raise QueryError("%s: no response\n%s" % (" ".join(argv), text))
    return Answer(text)


def a_answers(reply, query_id):
    """rcode and the A addresses of a DNS reply (no compression surprises:
    answers point back at the question's name)."""
    rid, flags, qdcount, ancount = struct.unpack("!HHHH", reply[:8])
    if rid != query_id:
        raise AssertionError("reply id %#x, sent %#x" % (rid, query_id))
    pos = 12
    for _ in range(qdcount):
        while reply[pos] != 0:
            pos += 1 + reply[pos]
        pos += 5
    addresses = []
    for _ in range(ancount):
        if reply[pos] & 0xC0 == 0xC0:
            pos += 2
        else:
            while reply[pos] != 0:
                pos += 1 + reply[pos]
            pos += 1
        rtype, _, _, length = struct.unpack("!HHIH", reply[pos:pos + 10])
        pos += 10
        if rtype == 1 and length == 4:
            addresses.append(socket.inet_ntoa(reply[pos:pos + 4]))
        pos += length
    return flags & 0xF, addresses


def wait_until(predicate, timeout, interval=0.1):
    """Call predicate until it returns something true or timeout seconds
    pass; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


# ---------------------------------------------------------------------------
# Processes

_running = []


class Process:
    """A child process with stdout+stderr in a file, stopped for sure."""

    def __init__(self, argv, output_path, env=None):
        self.argv = argv
        self.output_path = output_path
        self._output = open(output_path, "wb")
        self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                      stdout=self._output,
                                      stderr=subprocess.STDOUT, env=env)
        _running.append(self)

    @property
    def pid(self):
        return self.popen.pid

    def running(self):
        return self.popen.poll() is None

    def returncode(self):
        return self.popen.poll()

    def wait(self, timeout):
        """Wait up to timeout seconds for the exit; return the exit code or
        None if still running."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=STOP_TIMEOUT):
        """TERM, wait up to timeout seconds, then KILL. Return the exit code."""
        if self.popen.poll() is None:
            try:
                self.popen.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            if self.wait(timeout) is None:
                self.popen.kill()
                self.popen.wait(STOP_TIMEOUT)
        if not self._output.closed:
            self._output.close()
        if self in _running:
            _running.remove(self)
        return self.popen.returncode

    def output(self):
        try:
            with open(self.output_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""


@atexit.register
def _stop_leftovers():
    for process in list(_running):
        process.stop()


def _tail(text, lines=40):
    return "\n".join(text.splitlines()[-lines:])


class StartError(RuntimeError):
    """A server did not come up; the message holds the end of its logs."""


# ---------------------------------------------------------------------------
# Work dir


class WorkDir:
    """A temp dir, removed on cleanup() unless DNSFILTER_KEEP_TMP=1."""

    def __init__(self, label="scenario"):
        self.path = tempfile.mkdtemp(prefix="dnsfilter-it-%s-" % label)

    def file(self, name):
        return os.path.join(self.path, name)

    def write(self, name, content):
        """Write text (or JSON for a dict/list) to name; return its path."""
        if not isinstance(content, str):
            content = json.dumps(content, indent=2)
        path = self.file(name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(content)
        return path

    def cleanup(self):
        if KEEP_TMP:
            sys.stderr.write("kept %s\n" % self.path)
        else:
            shutil.rmtree(self.path, ignore_errors=True)


# ---------------------------------------------------------------------------
# NSD


class Nsd:
    """NSD on 127.0.0.1:<free port> serving zones {name: zone text}.
    extra: more "server:" lines (e.g. "rrl-ratelimit: 0" for load tests:
    Debian's NSD rate-limits by default)."""

    def __init__(self, workdir, zones, extra=()):
        self.workdir = workdir
        self.zones = dict(zones)
        self.extra = list(extra)
        self.port = free_port()
        self.process = None
        self.conf = workdir.file("nsd.conf")
        self.log = workdir.file("nsd.log")

    def _write_conf(self):
        d = self.workdir.path
        lines = [
            "server:",
            "\tip-address: %s@%d" % (LOOPBACK, self.port),
            "\tdo-ip6: no",
            "\tserver-count: 1",
            '\tusername: ""',
            '\tchroot: ""',
            '\tzonesdir: "%s"' % d,
            '\tdatabase: ""',
            '\tzonelistfile: "%s/nsd.zonelist"' % d,
            '\txfrdfile: "%s/nsd.xfrd.state"' % d,
            '\txfrdir: "%s"' % d,
            '\tpidfile: "%s/nsd.pid"' % d,
            '\tlogfile: "%s"' % self.log,
            "\tverbosity: 1",
        ]
        lines += ["\t" + line for line in self.extra]
        lines += [
            "remote-control:",
            "\tcontrol-enable: no",
        ]
        for name, text in self.zones.items():
            zonefile = "%s.zone" % name.rstrip(".")
            self.workdir.write(zonefile, text)
            lines += ["zone:", '\tname: "%s"' % name, '\tzonefile: "%s"' % zonefile]
        self.workdir.write("nsd.conf", "\n".join(lines) + "\n")

    def start(self):
        self._write_conf()
        self.process = Process([tool("nsd"), "-d", "-c", self.conf],
                               self.workdir.file("nsd.out"))
        zone = next(iter(self.zones))
        if not wait_until(lambda: self._answers(zone) or not self.process.running(),
                          START_TIMEOUT) or not self.process.running():
            self.stop()
            raise StartError("NSD did not start on port %d:\n%s\n%s" % (
                self.port, _tail(self.process.output()), _tail(self._log())))
        return self

    def _answers(self, zone):
        try:
            return kdig(self.port, zone, "SOA", timeout=1).rcode == "NOERROR"
        except QueryError:
            return False

    def _log(self):
        try:
            with open(self.log, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def query(self, name, qtype="A", **kwargs):
        return kdig(self.port, name, qtype, **kwargs)

    def stop(self):
        if self.process:
            self.process.stop()


# ---------------------------------------------------------------------------
# Unbound


class Unbound:
    """Unbound on 127.0.0.1:<free port>, resolving stub zones through NSD,
    with dnsfilter loaded (module=True) or not.

    settings: dict/str written to dnsfilter.json (None: no file); feed:
    dict/str written to feed.json (None: no file). DNSFILTER_CONF points at
    dnsfilter.json unless conf_env is False (then the module must find it in
    Unbound's directory: the work dir). extra: more "server:" lines (e.g.
    a "trust-anchor: ..." line). domain_insecure: mark test. and the stub
    zones domain-insecure (the default); False leaves the validator really
    validating the zones that have a trust anchor. preload: more libraries
    to preload into Unbound (after the sanitizer runtime). modules: the
    module-config line (default "dynlib validator iterator", or "validator
    iterator" without the module). threads: num-threads. stub_hosts: {zone:
    "host.name@port"}, stub zones whose server the iterator finds by
    resolving a host name in a sub-query of its own. prefix: a command line
    that runs Unbound (e.g. valgrind and its options). executable: another
    unbound binary to run (default: the one scripts/setup built).
    """

    def __init__(self, workdir, stubs, settings=None, feed=None, module=True,
                 conf_env=True, extra=(), name="unbound", domain_insecure=True,
                 modules=None, threads=1, stub_hosts=None, prefix=(), preload=(),
                 executable=None):
        self.workdir = workdir
        self.stubs = dict(stubs)  # zone -> port
        self.stub_hosts = dict(stub_hosts or {})
        self.modules = modules or ("dynlib validator iterator" if module
                                   else "validator iterator")
        self.threads = threads
        self.prefix = list(prefix)  # a command Unbound runs under (valgrind ...)
        self.executable = executable  # another unbound binary (default: tool("unbound"))
        self.preload = list(preload)
        self.valgrind_log = None
        if VALGRIND and not self.prefix:
            self.valgrind_log = workdir.file("%s.valgrind" % name)
            self.prefix = ["valgrind", "--log-file=" + self.valgrind_log, "--num-callers=30",
                           "--keep-debuginfo=yes", "--fullpath-after=",
                           "--leak-check=full", "--show-leak-kinds=definite",
                           "--errors-for-leak-kinds=definite"]
        self.module = module
        self.domain_insecure = domain_insecure
        self.conf_env = conf_env
        self.extra = list(extra)
        self.name = name
        self.port = free_port()
        self.control_port = free_port()
        self.conf = workdir.file("%s.conf" % name)
        self.log = workdir.file("%s.log" % name)
        self.settings_path = None
        if feed is not None:
            self.feed_path = workdir.write("feed.json", feed)
        if settings is not None:
            self.settings_path = workdir.write("dnsfilter.json", settings)
        self.process = None

    def _write_conf(self):
        d = self.workdir.path
        lines = [
            "server:",
            "\tinterface: %s" % LOOPBACK,
            "\tport: %d" % self.port,
            "\tdo-ip6: no",
            '\tdirectory: "%s"' % d,
            '\tchroot: ""',
            '\tusername: ""',
            '\tpidfile: "%s/%s.pid"' % (d, self.name),
            '\tlogfile: "%s"' % self.log,
            "\tuse-syslog: no",
            "\tlog-time-ascii: yes",
            "\tverbosity: 2",
            "\tnum-threads: %d" % self.threads,
            '\tmodule-config: "%s"' % self.modules,
            "\tdo-not-query-localhost: no",
            "\tharden-referral-path: no",
            '\tlocal-zone: "test." nodefault',
            '\troot-hints: "%s"' % self.workdir.write("root.hints", ROOT_HINTS),
            "\tdo-not-query-address: %s" % ROOT_HINT_ADDRESS,
        ]
        if self.domain_insecure:
            lines += ['\tdomain-insecure: "test"']
        lines += ["\t" + line for line in self.extra]
        if self.domain_insecure:
            for zone in list(self.stubs) + list(self.stub_hosts):
                lines += ["\tdomain-insecure: \"%s\"" % zone]
        for zone, port in self.stubs.items():
            lines += ["stub-zone:", '\tname: "%s"' % zone,
                      "\tstub-addr: %s@%d" % (LOOPBACK, port)]
        for zone, host in self.stub_hosts.items():
            lines += ["stub-zone:", '\tname: "%s"' % zone, "\tstub-host: %s" % host]
        lines += [
            "remote-control:",
            "\tcontrol-enable: yes",
            "\tcontrol-interface: %s" % LOOPBACK,
            "\tcontrol-port: %d" % self.control_port,
            "\tcontrol-use-cert: no",
        ]
        if self.module:
            lines += ["dynlib:", '\tdynlib-file: "%s"' % module_path()]
        self.workdir.write("%s.conf" % self.name, "\n".join(lines) + "\n")

    def launch(self):
        """Start the process and return at once (see start, wait_exit)."""
        self._write_conf()
        env = dict(os.environ)
        env.pop("DNSFILTER_CONF", None)
        if self.conf_env and self.settings_path:
            env["DNSFILTER_CONF"] = self.settings_path
        # A module built with ASan+UBSan needs the sanitizer runtime in
        # Unbound (which is not built with it): scripts/test's asan runs.
        preload = sanitizer_runtime()
        if preload:
            env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
            # ThreadSanitizer: report every race, with both stacks
            env.setdefault("TSAN_OPTIONS", "halt_on_error=0:history_size=4")
        preloads = [p for p in [preload] + self.preload if p]
        if preloads:
            env["LD_PRELOAD"] = " ".join(preloads)
        self.process = Process(self.prefix + [self.executable or tool("unbound"), "-d", "-c",
                                              self.conf],
                               self.workdir.file("%s.out" % self.name), env=env)
        return self

    def start(self, timeout=None):
        """Start and wait (bounded: timeout s, default START_TIMEOUT) until
        it answers; StartError with its log if it exits or stays silent."""
        timeout = START_TIMEOUT if timeout is None else timeout
        self.launch()
        zone = next(iter(self.stubs))
        ready = wait_until(
            lambda: (not self.process.running()) or self._answers(zone), timeout)
        if not self.process.running():
            code = self.process.returncode()
            self.stop()
            raise StartError("Unbound exited with %s at start:\n%s" % (
                code, _tail(self.output())))
        if not ready:
            self.stop()
            raise StartError("Unbound does not answer on port %d after %ss:\n%s"
                             % (self.port, timeout, _tail(self.output())))
        return self

    def _answers(self, zone):
        try:
            return kdig(self.port, zone, "SOA", timeout=1).rcode is not None
        except QueryError:
            return False

    def wait_exit(self, timeout=START_TIMEOUT):
        """Wait (bounded) for the process to exit; return its code or None."""
        return self.process.wait(timeout)

    def output(self):
        """Log file plus stdout/stderr."""
        text = ""
        try:
            with open(self.log, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            pass
        return text + self.process.output() if self.process else text

    def log_lines(self, pattern):
        """Log lines matching a regex."""
        regex = re.compile(pattern)
        return [line for line in self.output().splitlines() if regex.search(line)]

    def block_lines(self, qname, qtype, entry_id):
        """The module's 'dnsfilter: block <qname> <QTYPE> <id>' log lines."""
        qname = qname.lower()
        if not qname.endswith("."):
            qname += "."
        return self.log_lines(r"dnsfilter: block %s %s %s(\s|$)" % (
            re.escape(qname), re.escape(qtype.upper()), re.escape(entry_id)))

    def query(self, name, qtype="A", **kwargs):
        return kdig(self.port, name, qtype, **kwargs)

    def control(self, *args, timeout=10):
        """Run unbound-control; return the CompletedProcess (text)."""
        return subprocess.run(
            [tool("unbound-control"), "-c", self.conf] + list(args),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
            universal_newlines=True)

    def write_feed(self, document):
        """Replace feed.json (atomically: write aside, rename) with a
        document (dict or text). The module reads it at its next load."""
        path = self.workdir.file("feed.json")
        aside = self.workdir.write("feed.json.new", document)
        os.replace(aside, path)
        self.feed_path = path
        return path

    def loads(self):
        """The module's 'dnsfilter: ... feed ...: N entries' lines, one per
        load (start and each reload)."""
        return self.log_lines(r"dnsfilter: .*: feed .*: \d+ entries")

    def reload(self, keep_cache=True, timeout=START_TIMEOUT):
        """unbound-control reload_keep_cache (or reload); wait (bounded)
        until the module has loaded again and Unbound answers. Return the
        control command's output; AssertionError-like RuntimeError if the
        reload does not complete."""
        before = len(self.loads())
        result = self.control("reload_keep_cache" if keep_cache else "reload",
                              timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError("unbound-control reload failed:\n%s\n%s" % (
                result.stdout, _tail(self.output())))
        zone = next(iter(self.stubs))
        if not wait_until(lambda: len(self.loads()) > before and self._answers(zone),
                          timeout):
            raise RuntimeError("no module load after reload in %ss:\n%s" % (
                timeout, _tail(self.output())))
        return result.stdout

    def reload_feed(self, document, keep_cache=True):
        """write_feed then reload (keeping the cache by default)."""
        self.write_feed(document)
        return self.reload(keep_cache=keep_cache)

    def log_size(self):
        """The log file's size now: a mark for log_since."""
        try:
            return os.path.getsize(self.log)
        except OSError:
            return 0

    def log_since(self, mark):
        """The log file's text after a log_size mark."""
        try:
            with open(self.log, "rb") as f:
                f.seek(mark)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def purges(self, text=None):
        """The module's cache purge lines as (examined, removed, ms), in log
        order (one per load, and one per purge the module runs otherwise),
        of text (default: the whole log)."""
        found = []
        lines = self.output().splitlines() if text is None else text.splitlines()
        for line in lines:
            m = re.search(r"dnsfilter: cache purge: (\d+) cached answers examined, "
                          r"(\d+) removed, ([0-9.]+) ms", line)
            if m:
                found.append((int(m.group(1)), int(m.group(2)), float(m.group(3))))
        return found

    def dump_cache(self):
        """unbound-control dump_cache, parsed (a CacheDump)."""
        result = self.control("dump_cache", timeout=60)
        if result.returncode != 0:
            raise RuntimeError("dump_cache failed:\n" + result.stdout)
        return CacheDump(result.stdout)

    def stop(self):
        if not self.process:
            return None
        code = self.process.stop(STOP_TIMEOUT * (12 if self.valgrind_log else 1))
        if self.valgrind_log:
            errors = valgrind_module_errors(self.valgrind_log)
            if errors:
                raise AssertionError("valgrind: %d errors with the module in the stack:\n%s"
                                     % (len(errors), "\n\n".join(errors[:5])))
        # Under the sanitizers a memory error or leak in the module fails
        # the test that ran this Unbound.
        if SANITIZED:
            report = self.process.output()
            if "Sanitizer" in report and ("ERROR:" in report or "runtime error" in report):
                raise AssertionError("sanitizer report from Unbound with the module:\n"
                                     + _tail(report, 60))
            races = thread_sanitizer_reports(report, os.path.basename(module_path()))
            if races:
                raise AssertionError("ThreadSanitizer: %d reports with the module in them:\n%s"
                                     % (len(races), "\n".join(races[:3])))
        return code


def thread_sanitizer_reports(output, module_file):
    """The ThreadSanitizer reports (data races, lock order inversions, ...)
    in an Unbound's output that have a frame of the module in them. Reports
    about Unbound alone (its own code is not instrumented, but its locks
    are seen) are not the module's to answer for."""
    reports = []
    for block in output.split("==================\n"):
        if "WARNING: ThreadSanitizer:" in block and "(%s+" % module_file in block:
            reports.append(block.strip())
    return reports


def valgrind_module_errors(path):
    """The error and definite-leak reports of a valgrind log whose stack
    has the module in it."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return []
    blocks, current = [], []
    for line in text.splitlines():
        body = re.sub(r"^==\d+== ?", "", line)
        if re.match(r"Thread \d+:$", body.strip()):
            continue
        if body.strip():
            current.append(body)
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    found = []
    for block in blocks:
        head = block[0]
        is_error = (head.startswith(("Invalid ", "Conditional jump", "Use of uninitialised",
                                     "Syscall param", "Mismatched free", "Source and destination"))
                    or "definitely lost" in head)
        # frames of the module: its sources (full paths), its file or names
        if is_error and any("/module/" in line or "dnsfilter" in line or " dnsf_" in line
                            for line in block):
            found.append("\n".join(block))
    return found


class CacheDump:
    """unbound-control dump_cache output (which leaves out expired entries).

    rrsets: RR tuples of the rrset cache; messages: (qname lower case with
    the final dot, class, type) of each message cache entry; text: the whole
    output."""

    def __init__(self, text):
        self.text = text
        self.rrsets = []
        self.messages = []
        section = None
        for line in text.splitlines():
            if line.startswith("START_"):
                section = line[len("START_"):]
                continue
            if line.startswith("END_"):
                section = None
                continue
            if section == "RRSET_CACHE" and line and not line.startswith(";"):
                fields = line.split(None, 4)
                if len(fields) >= 4:
                    self.rrsets.append(RR(fields[0].lower(), int(fields[1]), fields[2],
                                          fields[3].upper(),
                                          fields[4].strip() if len(fields) > 4 else ""))
            elif section == "MSG_CACHE" and line.startswith("msg "):
                fields = line.split()
                self.messages.append((fields[1].lower(), fields[2], fields[3].upper()))

    @staticmethod
    def _fqdn(name):
        name = name.lower()
        return name if name.endswith(".") else name + "."

    def has_message(self, name, qtype=None):
        """A message cache entry for name (and qtype, if given)."""
        name = self._fqdn(name)
        return any(qname == name and (qtype is None or rtype == qtype.upper())
                   for qname, _, rtype in self.messages)

    def rrsets_of(self, name, rrtype=None):
        """The rrset cache RRs owned by name (of rrtype, if given)."""
        name = self._fqdn(name)
        return [rr for rr in self.rrsets
                if rr.owner == name and (rrtype is None or rr.type == rrtype.upper())]


# ---------------------------------------------------------------------------
# Zone text


def zone_text(origin, records, ttl=300):
    """A zone file for origin with SOA, NS ns1 (127.0.0.1) and records, a
    list of 'owner TYPE rdata' lines relative to the origin."""
    origin = origin.rstrip(".") + "."
    lines = [
        "$ORIGIN %s" % origin,
        "$TTL %d" % ttl,
        "@ IN SOA ns1.%s hostmaster.%s 1 3600 600 86400 300" % (origin, origin),
        "@ IN NS ns1.%s" % origin,
        "ns1 IN A 127.0.0.1",
    ]
    for record in records:
        owner, rest = record.split(None, 1)
        lines.append("%s IN %s" % (owner, rest))
    return "\n".join(lines) + "\n"


def sign_zone(workdir, origin, text):
    """Sign zone text for origin with a fresh ECDSA P-256 KSK and ZSK
    (ldns-keygen, ldns-signzone, in workdir/keys-<origin>). Return
    (signed zone text, DS record line of the KSK) - the DS line, after
    "trust-anchor: ", makes Unbound validate the zone."""
    origin = origin.rstrip(".") + "."
    folder = workdir.file("keys-" + origin.rstrip("."))
    os.makedirs(folder, exist_ok=True)

    def run(*argv):
        proc = subprocess.run(list(argv), cwd=folder, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True,
                              timeout=60)
        if proc.returncode != 0:
            raise RuntimeError("%s failed:\n%s" % (" ".join(argv), proc.stdout))
        return proc.stdout.strip()

    ksk = run(tool("ldns-keygen"), "-a", "ECDSAP256SHA256", "-k", origin)
    zsk = run(tool("ldns-keygen"), "-a", "ECDSAP256SHA256", origin)
    unsigned = os.path.join(folder, "zone")
    with open(unsigned, "w", encoding="utf-8") as f:
        f.write(text)
    run(tool("ldns-signzone"), "-f", unsigned + ".signed", unsigned, ksk, zsk)
    with open(unsigned + ".signed", encoding="utf-8") as f:
        signed = f.read()
    with open(os.path.join(folder, ksk + ".ds"), encoding="utf-8") as f:
        ds = " ".join(f.read().split())
    return signed, ds


# ---------------------------------------------------------------------------
# Scenarios


def rfc3339(seconds):
    """A whole second as an RFC 3339 UTC timestamp."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def feed(entries, allow=None, serial=1):
    """A dnsfilter-feed/1 document with these entries."""
    document = {
        "format": "dnsfilter-feed/1",
        "serial": serial,
        "generated": "2024-06-30T12:00:00+09:00",
        "timezone": "+09:00",
        "entries": entries,
    }
    if allow is not None:
        document["allow"] = allow
    return document


def entry(entry_id, fqdns, behavior="info-theft", start="2020-01-01", end=None,
          **fields):
    """One feed entry (action block unless given)."""
    value = {"id": entry_id, "behavior": behavior, "fqdns": list(fqdns),
             "start": start, "end": end, "action": "block"}
    value.update(fields)
    return value


def start_stack(add_cleanup, label, zones, settings, feed_document, **unbound_args):
    """Start NSD (zones) and Unbound with dnsfilter (settings, feed) in a new
    work dir; register their stops (and the dir's removal) with add_cleanup
    (a TestCase's addCleanup or addClassCleanup) before starting, so they
    run even when a start fails. Return (nsd, unbound)."""
    workdir = WorkDir(label)
    add_cleanup(workdir.cleanup)
    nsd = Nsd(workdir, zones)
    add_cleanup(nsd.stop)
    nsd.start()
    unbound = Unbound(workdir, {zone: nsd.port for zone in zones},
                      settings=settings, feed=feed_document, **unbound_args)
    add_cleanup(unbound.stop)
    unbound.start()
    return nsd, unbound
