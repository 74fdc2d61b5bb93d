"""scripts/dnsfilter-refresh against a local HTTP server on 127.0.0.1.

The server (a thread in this process) serves ETag and Last-Modified, answers
If-None-Match / If-Modified-Since with 304, and records every request, so a
test can prove the conditional GET was sent. The script runs for real: real
curl, the real dnsfilter-check (DNSFILTER_CHECK, else
<repo>/build/cmake/dnsfilter-check). The only stand-in is
unbound-control-recorder, a two-line script that records the arguments the
refresh script passes to unbound-control (its calling convention is what is
tested there; the reload itself is Unbound's business).

Every case checks the exit code, the installed file's content and that no
temporary file is left in the destination directory. Every wait is bounded.
"""

import email.utils
import hashlib
import http.server
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SCRIPT = os.path.join(REPO, "scripts", "dnsfilter-refresh")
CHECK = os.environ.get("DNSFILTER_CHECK") or os.path.join(
    REPO, "build", "cmake", "dnsfilter-check")
KEEP_TMP = os.environ.get("DNSFILTER_KEEP_TMP") == "1"

RUN_TIMEOUT = 60  # seconds for one script run
STALL_SECONDS = 15  # longest a stalled response waits
CURL_LIMITS = ["--connect-timeout", "5", "--max-time", "20"]

# Exit codes, as documented in --help and docs/refresh.md.
INSTALLED, LOCAL, USAGE, NOT_MODIFIED, DOWNLOAD, INVALID, OLDER, CHECKSUM, \
    RELOAD = range(9)


def feed_bytes(serial, names=("c2.example.net",), with_serial=True):
    document = {"format": "dnsfilter-feed/1"}
    if with_serial:
        document["serial"] = serial
    document["entries"] = [
        {"id": "T-%d-%d" % (serial, index), "behavior": "backdoor",
         "fqdns": [name], "start": "2024-01-01", "action": "block"}
        for index, name in enumerate(names)]
    return (json.dumps(document, indent=1) + "\n").encode()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class Resource:
    """One path on the server: a body with validators, or a redirect, or an
    error status. body_length False: no Content-Length (close-delimited).
    stall: send half the body, then wait (bounded) for the server's release."""

    def __init__(self, body=b"", etag=None, last_modified=None, status=200,
                 location=None, body_length=True, stall=False):
        self.body = body
        self.etag = etag
        self.last_modified = last_modified
        self.status = status
        self.location = location
        self.body_length = body_length
        self.stall = stall


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "refresh-test"

    def log_message(self, *args):
        pass

    def do_GET(self):
        server = self.server
        with server.lock:
            server.requests.append((self.path, dict(self.headers.items())))
            resource = server.resources.get(self.path)
        if resource is None:
            self.send_error(404)
            return
        if resource.location is not None:
            self.send_response(resource.status)
            self.send_header("Location", resource.location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if resource.status != 200:
            self.send_error(resource.status)
            return
        if self.not_modified(resource):
            self.send_response(304)
            if resource.etag:
                self.send_header("ETag", resource.etag)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if resource.body_length:
            self.send_header("Content-Length", str(len(resource.body)))
        if resource.etag:
            self.send_header("ETag", resource.etag)
        if resource.last_modified:
            self.send_header("Last-Modified", email.utils.formatdate(
                resource.last_modified, usegmt=True))
        self.end_headers()
        try:
            if resource.stall:
                half = len(resource.body) // 2
                self.wfile.write(resource.body[:half])
                self.wfile.flush()
                server.release.wait(STALL_SECONDS)
                self.wfile.write(resource.body[half:])
            else:
                self.wfile.write(resource.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading (size limit)
        if not resource.body_length:
            self.close_connection = True

    def not_modified(self, resource):
        """RFC 9110 13.2.2: If-None-Match wins; If-Modified-Since only
        without it."""
        inm = self.headers.get("If-None-Match")
        if inm is not None:
            tags = [tag.strip() for tag in inm.split(",")]
            return resource.etag is not None and (
                "*" in tags or resource.etag in tags)
        ims = self.headers.get("If-Modified-Since")
        if ims is not None and resource.last_modified is not None:
            try:
                since = email.utils.parsedate_to_datetime(ims).timestamp()
            except (TypeError, ValueError):
                return False
            return int(resource.last_modified) <= since
        return False


class FeedServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.resources = {}
        self.requests = []
        self.release = threading.Event()
        self.thread = threading.Thread(target=self.serve_forever,
                                       kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.server_address[1], path)

    def put(self, path, body, etag=None, last_modified=None, **fields):
        with self.lock:
            self.resources[path] = Resource(body, etag, last_modified, **fields)

    def requests_for(self, path):
        with self.lock:
            return [headers for got, headers in self.requests if got == path]

    def stop(self):
        self.release.set()
        self.shutdown()
        self.server_close()
        self.thread.join(timeout=5)


def free_port():
    """A loopback TCP port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RefreshTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if not os.path.isfile(CHECK):
            raise unittest.SkipTest(
                "dnsfilter-check not built at %s (cmake --build build/cmake; "
                "or set DNSFILTER_CHECK)" % CHECK)
        if not shutil.which("curl"):
            raise unittest.SkipTest("curl not installed")

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="dnsfilter-refresh-test-")
        if KEEP_TMP:
            print("temp dir:", self.tmp)
        else:
            self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.feeddir = os.path.join(self.tmp, "feeds")
        os.mkdir(self.feeddir)
        self.dest = os.path.join(self.feeddir, "feed.json")
        self.server = FeedServer()
        self.addCleanup(self.server.stop)
        self.url = self.server.url("/feed.json")
        self.env = {key: value for key, value in os.environ.items()
                    if key.lower() not in ("http_proxy", "https_proxy",
                                           "all_proxy", "no_proxy")}
        self.env["DNSFILTER_CHECK"] = CHECK
        self.env["HOME"] = self.tmp  # no ~/.curlrc of the tester's
        self.env.pop("DNSFILTER_CONF", None)  # the settings only when a test says

    # -- helpers ------------------------------------------------------------

    def refresh(self, *args, url=None):
        command = [SCRIPT, "--url", url or self.url, "--dest", self.dest]
        command += CURL_LIMITS + list(args)
        result = subprocess.run(command, env=self.env, capture_output=True,
                                text=True, timeout=RUN_TIMEOUT, check=False)
        self.assertNoTempFiles()
        return result

    def assertExit(self, result, code):
        self.assertEqual(result.returncode, code,
                         "exit %d, wanted %d\nstdout: %s\nstderr: %s" % (
                             result.returncode, code, result.stdout,
                             result.stderr))
        for line in (result.stdout + result.stderr).splitlines():
            self.assertTrue(line.startswith("dnsfilter-refresh: "), line)

    def assertInstalled(self, data):
        with open(self.dest, "rb") as handle:
            self.assertEqual(handle.read(), data)

    def assertNoTempFiles(self):
        left = sorted(set(os.listdir(self.feeddir))
                      - {"feed.json", "feed.json.http"})
        self.assertEqual(left, [], "temporary files left behind")

    def install_first(self, data, etag='"v1"', last_modified=1700000000):
        self.server.put("/feed.json", data, etag, last_modified)
        result = self.refresh()
        self.assertExit(result, INSTALLED)
        self.assertInstalled(data)
        return result

    def recorder(self, exit_code):
        """unbound-control-recorder: writes its arguments, one a line, to a
        file and exits with exit_code. Returns (script, record file)."""
        record = os.path.join(self.tmp, "recorded-args-%d" % exit_code)
        script = os.path.join(self.tmp, "unbound-control-recorder-%d" % exit_code)
        with open(script, "w") as handle:
            handle.write("#!/bin/sh\n"
                         "# test recorder standing in for unbound-control\n"
                         "printf '%%s\\n' \"$@\" > '%s'\n" % record)
            if exit_code:
                handle.write("echo 'error: recorder told to fail' >&2\n")
            else:
                handle.write("echo ok\n")
            handle.write("exit %d\n" % exit_code)
        os.chmod(script, 0o755)
        return script, record

    # -- cases --------------------------------------------------------------

    def test_new_install(self):
        data = feed_bytes(10)
        result = self.install_first(data)
        self.assertEqual(len(result.stdout.splitlines()), 1, result.stdout)
        self.assertIn("installed", result.stdout)
        self.assertIn("serial 10", result.stdout)
        self.assertEqual(result.stderr, "")
        mode = stat.S_IMODE(os.stat(self.dest).st_mode)
        self.assertEqual(mode, 0o644)
        with open(self.dest + ".http") as handle:
            state = handle.read()
        self.assertIn('etag: "v1"', state)
        self.assertIn("sha256: " + sha256(data), state)
        self.assertIn("serial: 10", state)

    def test_not_modified(self):
        data = feed_bytes(10)
        self.install_first(data)
        before = os.stat(self.dest)
        result = self.refresh()
        self.assertExit(result, NOT_MODIFIED)
        self.assertIn("not modified (HTTP 304)", result.stdout)
        self.assertInstalled(data)
        after = os.stat(self.dest)
        self.assertEqual((before.st_ino, before.st_mtime_ns),
                         (after.st_ino, after.st_mtime_ns))
        requests = self.server.requests_for("/feed.json")
        self.assertEqual(len(requests), 2)
        self.assertNotIn("If-None-Match", requests[0])
        self.assertEqual(requests[1].get("If-None-Match"), '"v1"')
        self.assertIn("If-Modified-Since", requests[1])

    def test_not_modified_by_last_modified_only(self):
        data = feed_bytes(10)
        self.install_first(data, etag=None)
        result = self.refresh()
        self.assertExit(result, NOT_MODIFIED)
        requests = self.server.requests_for("/feed.json")
        self.assertNotIn("If-None-Match", requests[1])
        self.assertIn("If-Modified-Since", requests[1])

    def test_same_content_without_state(self):
        """The state file gone (or a server without validators): a full
        download, found identical, is 'not modified' and leaves the file
        (inode) alone."""
        data = feed_bytes(10)
        self.install_first(data)
        os.unlink(self.dest + ".http")
        inode = os.stat(self.dest).st_ino
        result = self.refresh()
        self.assertExit(result, NOT_MODIFIED)
        self.assertIn("same content", result.stdout)
        self.assertNotIn("If-None-Match", self.server.requests_for("/feed.json")[1])
        self.assertEqual(os.stat(self.dest).st_ino, inode)
        self.assertTrue(os.path.exists(self.dest + ".http"))
        self.assertExit(self.refresh(), NOT_MODIFIED)
        self.assertEqual(self.server.requests_for("/feed.json")[2].get(
            "If-None-Match"), '"v1"')

    def test_state_ignored_when_file_replaced(self):
        """Someone replaced the installed file by hand: no conditional GET,
        the server's feed goes back in."""
        data = feed_bytes(10)
        self.install_first(data)
        other = feed_bytes(9, names=("other.example.net",))
        with open(self.dest, "wb") as handle:
            handle.write(other)
        result = self.refresh()
        self.assertExit(result, INSTALLED)
        self.assertNotIn("If-None-Match", self.server.requests_for("/feed.json")[1])
        self.assertInstalled(data)

    def test_newer_serial_installed(self):
        self.install_first(feed_bytes(10))
        newer = feed_bytes(11, names=("c2.example.net", "c3.example.net"))
        self.server.put("/feed.json", newer, '"v2"', 1700000100)
        result = self.refresh()
        self.assertExit(result, INSTALLED)
        self.assertIn("serial 11 (was 10)", result.stdout)
        self.assertInstalled(newer)
        self.assertEqual(self.server.requests_for("/feed.json")[1].get(
            "If-None-Match"), '"v1"')
        self.assertExit(self.refresh(), NOT_MODIFIED)
        self.assertEqual(self.server.requests_for("/feed.json")[2].get(
            "If-None-Match"), '"v2"')

    def test_mode_kept(self):
        self.install_first(feed_bytes(10))
        os.chmod(self.dest, 0o640)
        self.server.put("/feed.json", feed_bytes(11), '"v2"', 1700000100)
        self.assertExit(self.refresh(), INSTALLED)
        self.assertEqual(stat.S_IMODE(os.stat(self.dest).st_mode), 0o640)

    def test_corrupt_json_refused(self):
        old = feed_bytes(10)
        self.install_first(old)
        self.server.put("/feed.json", old[:len(old) // 2], '"v2"', 1700000100)
        result = self.refresh()
        self.assertExit(result, INVALID)
        self.assertIn("invalid feed", result.stderr)
        self.assertIn(self.url, result.stderr)
        self.assertNotIn(".dnsfilter-refresh.", result.stderr)
        self.assertInstalled(old)
        # Refused: the state still describes the old feed, so the next run
        # asks again (and is refused again), not a 304 of the bad one.
        self.assertExit(self.refresh(), INVALID)
        self.assertEqual(self.server.requests_for("/feed.json")[2].get(
            "If-None-Match"), '"v1"')

    def test_bad_name_refused(self):
        old = feed_bytes(10)
        self.install_first(old)
        bad = feed_bytes(11, names=("c2.example.net", "bad..name.example"))
        self.server.put("/feed.json", bad, '"v2"', 1700000100)
        result = self.refresh()
        self.assertExit(result, INVALID)
        self.assertIn("empty label", result.stderr)
        self.assertInstalled(old)

    def settings_file(self, name="dnsfilter.json", **document):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as handle:
            json.dump(dict({"feed": self.dest}, **document), handle)
        return path

    def test_settings_limits_apply_to_the_new_feed(self):
        # a feed the module would refuse (3 entries, its settings allow 2)
        # is not installed, whatever dnsfilter-check's defaults take
        old = feed_bytes(10)
        self.install_first(old)
        big = feed_bytes(11, names=("a.example.net", "b.example.net", "c.example.net"))
        self.server.put("/feed.json", big, '"v2"', 1700000100)
        settings = self.settings_file(limits={"feed-entries": 2})
        result = self.refresh("--config", settings)
        self.assertExit(result, INVALID)
        self.assertIn("%s: entries: 3 entries, more than the limit of 2" % self.url,
                      result.stderr)
        self.assertInstalled(old)
        # the same through DNSFILTER_CONF, the variable the module reads
        self.env["DNSFILTER_CONF"] = settings
        self.assertExit(self.refresh(), INVALID)
        self.assertInstalled(old)
        del self.env["DNSFILTER_CONF"]
        roomy = self.settings_file("roomy.json", limits={"feed-entries": 3})
        self.assertExit(self.refresh("--config", roomy), INSTALLED)
        self.assertInstalled(big)

    def test_unusable_settings_are_a_local_error(self):
        old = feed_bytes(10)
        self.install_first(old)
        self.server.put("/feed.json", feed_bytes(11), '"v2"', 1700000100)
        bad = self.settings_file("bad.json", ttl=-1)
        result = self.refresh("--config", bad)
        self.assertExit(result, LOCAL)
        self.assertIn("cannot be used to check the new feed", result.stderr)
        self.assertInstalled(old)
        result = self.refresh("--config", os.path.join(self.tmp, "none.json"))
        self.assertExit(result, USAGE)
        self.assertIn("cannot read the settings file", result.stderr)

    def test_input_cannot_forge_a_line_of_output(self):
        # every line starts with "dnsfilter-refresh: " (assertExit); text
        # from the feed, the URL or the path is escaped
        old = feed_bytes(10)
        self.install_first(old)
        bad = feed_bytes(11, names=("c2.example.net", "bad\nforged: name.example"))
        self.server.put("/feed.json", bad, '"v2"', 1700000100)
        result = self.refresh()
        self.assertExit(result, INVALID)
        self.assertIn('"bad\\nforged: name.example"', result.stderr)
        result = self.refresh(url=self.url + "?\x1b[31m\u0085")
        self.assertExit(result, DOWNLOAD)
        self.assertIn("?\\x1b[31m\\u0085", result.stderr)
        self.assertNotIn("\x1b", result.stderr)
        self.assertInstalled(old)

    def test_garbage_in_the_state_file_is_ignored(self):
        self.install_first(feed_bytes(10))
        state = self.dest + ".http"
        with open(state) as handle:
            text = handle.read()
        with open(state, "w") as handle:
            handle.write(text.replace("serial: 10", "serial: 1e999 x"))
        os.utime(self.dest, None)  # same file: the state still names it
        self.server.put("/feed.json", feed_bytes(11), '"v2"', 1700000100)
        result = self.refresh()
        self.assertExit(result, INSTALLED)
        self.assertEqual(result.stderr, "")
        self.assertIn("(was 10)", result.stdout)

    def test_invalid_first_install(self):
        self.server.put("/feed.json", b"not json\n", '"v1"', 1700000000)
        self.assertExit(self.refresh(), INVALID)
        self.assertFalse(os.path.exists(self.dest))

    def test_older_serial_refused_then_forced(self):
        self.install_first(feed_bytes(10))
        older = feed_bytes(9, names=("old.example.net",))
        self.server.put("/feed.json", older, '"v0"', 1690000000)
        result = self.refresh()
        self.assertExit(result, OLDER)
        self.assertIn("serial 9 is older than the installed 10", result.stderr)
        self.assertInstalled(feed_bytes(10))
        result = self.refresh("--force")
        self.assertExit(result, INSTALLED)
        self.assertIn("serial 9 (was 10)", result.stdout)
        self.assertIn("forced", result.stdout)
        self.assertInstalled(older)

    def test_missing_serial_refused_then_forced(self):
        self.install_first(feed_bytes(10))
        unserialed = feed_bytes(0, with_serial=False)
        self.server.put("/feed.json", unserialed, '"v2"', 1700000100)
        result = self.refresh()
        self.assertExit(result, OLDER)
        self.assertIn("no serial", result.stderr)
        self.assertInstalled(feed_bytes(10))
        self.assertExit(self.refresh("--force"), INSTALLED)
        self.assertInstalled(unserialed)

    def test_older_serial_against_unknown_state(self):
        """Without the state file the installed serial is read from the
        installed feed itself."""
        self.install_first(feed_bytes(10))
        os.unlink(self.dest + ".http")
        self.server.put("/feed.json", feed_bytes(9), '"v0"', 1690000000)
        self.assertExit(self.refresh(), OLDER)
        self.assertInstalled(feed_bytes(10))

    def test_equal_serial_new_content_installed_with_warning(self):
        self.install_first(feed_bytes(10))
        same_serial = feed_bytes(10, names=("c2.example.net", "c9.example.net"))
        self.server.put("/feed.json", same_serial, '"v2"', 1700000100)
        result = self.refresh()
        self.assertExit(result, INSTALLED)
        self.assertIn("serial 10 unchanged but the content differs",
                      result.stderr)
        self.assertInstalled(same_serial)

    def test_bad_checksum_refused(self):
        old = feed_bytes(10)
        self.install_first(old)
        new = feed_bytes(11)
        self.server.put("/feed.json", new, '"v2"', 1700000100)
        result = self.refresh("--sha256", sha256(b"something else"))
        self.assertExit(result, CHECKSUM)
        self.assertIn("checksum mismatch", result.stderr)
        self.assertInstalled(old)
        self.server.put("/feed.json.sha256",
                        ("%s  feed.json\n" % sha256(b"other")).encode())
        result = self.refresh("--sha256-url", self.server.url("/feed.json.sha256"))
        self.assertExit(result, CHECKSUM)
        self.assertInstalled(old)

    def test_unusable_checksum_file(self):
        self.server.put("/feed.json", feed_bytes(10), '"v1"', 1700000000)
        self.server.put("/feed.json.sha256", b"<html>oops</html>\n")
        result = self.refresh("--sha256-url", self.server.url("/feed.json.sha256"))
        self.assertExit(result, CHECKSUM)
        self.assertIn("no SHA-256", result.stderr)
        self.assertFalse(os.path.exists(self.dest))

    def test_good_checksum_accepted(self):
        first = feed_bytes(10)
        self.server.put("/feed.json", first, '"v1"', 1700000000)
        self.assertExit(self.refresh("--sha256", sha256(first).upper()),
                        INSTALLED)
        self.assertInstalled(first)
        second = feed_bytes(11)
        self.server.put("/feed.json", second, '"v2"', 1700000100)
        self.server.put("/feed.json.sha256",
                        ("%s  feed.json\n" % sha256(second)).encode())
        sha_url = self.server.url("/feed.json.sha256")
        self.assertExit(self.refresh("--sha256-url", sha_url), INSTALLED)
        self.assertInstalled(second)
        # Unchanged checksum, unchanged feed: the conditional GET still works.
        self.assertExit(self.refresh("--sha256-url", sha_url), NOT_MODIFIED)
        self.assertEqual(self.server.requests_for("/feed.json")[-1].get(
            "If-None-Match"), '"v2"')

    def test_checksum_download_error(self):
        self.server.put("/feed.json", feed_bytes(10), '"v1"', 1700000000)
        result = self.refresh("--sha256-url", self.server.url("/missing.sha256"))
        self.assertExit(result, DOWNLOAD)
        self.assertFalse(os.path.exists(self.dest))
        self.assertEqual(self.server.requests_for("/feed.json"), [])

    def test_reload(self):
        control, record = self.recorder(0)
        conf = os.path.join(self.tmp, "unbound.conf")
        with open(conf, "w") as handle:
            handle.write("# control config\n")
        self.server.put("/feed.json", feed_bytes(10), '"v1"', 1700000000)
        result = self.refresh("--reload", "--unbound-control", control,
                              "--control-config", conf)
        self.assertExit(result, INSTALLED)
        self.assertIn("reloaded", result.stdout)
        with open(record) as handle:
            self.assertEqual(handle.read().splitlines(),
                             ["-c", conf, "reload_keep_cache"])
        # Not modified: no reload.
        os.unlink(record)
        result = self.refresh("--reload", "--unbound-control", control,
                              "--control-config", conf)
        self.assertExit(result, NOT_MODIFIED)
        self.assertFalse(os.path.exists(record))

    def test_reload_without_control_config(self):
        control, record = self.recorder(0)
        self.server.put("/feed.json", feed_bytes(10), '"v1"', 1700000000)
        self.assertExit(self.refresh("--reload", "--unbound-control", control),
                        INSTALLED)
        with open(record) as handle:
            self.assertEqual(handle.read().splitlines(), ["reload_keep_cache"])

    def test_reload_failure(self):
        control, record = self.recorder(1)
        data = feed_bytes(10)
        self.server.put("/feed.json", data, '"v1"', 1700000000)
        result = self.refresh("--reload", "--unbound-control", control)
        self.assertExit(result, RELOAD)
        self.assertIn("reload_keep_cache failed", result.stderr)
        self.assertIn("recorder told to fail", result.stderr)
        self.assertTrue(os.path.exists(record))
        # The feed is installed all the same (the module's watch picks it up).
        self.assertInstalled(data)

    def test_server_down(self):
        url = "http://127.0.0.1:%d/feed.json" % free_port()
        started = time.monotonic()
        result = self.refresh(url=url)
        self.assertExit(result, DOWNLOAD)
        self.assertLess(time.monotonic() - started, RUN_TIMEOUT)
        self.assertIn("download failed", result.stderr)
        self.assertFalse(os.path.exists(self.dest))

    def test_server_down_keeps_old(self):
        data = feed_bytes(10)
        self.install_first(data)
        self.server.stop()
        self.assertExit(self.refresh(), DOWNLOAD)
        self.assertInstalled(data)

    def test_http_error(self):
        self.server.put("/feed.json", b"", status=500)
        result = self.refresh()
        self.assertExit(result, DOWNLOAD)
        self.assertIn("500", result.stderr)
        self.assertFalse(os.path.exists(self.dest))

    def test_redirect_followed(self):
        data = feed_bytes(10)
        self.server.put("/feed.json", data, '"v1"', 1700000000)
        self.server.put("/moved", b"", status=302,
                        location=self.server.url("/feed.json"))
        self.assertExit(self.refresh(url=self.server.url("/moved")), INSTALLED)
        self.assertInstalled(data)

    def test_redirect_to_other_scheme_refused(self):
        secret = os.path.join(self.tmp, "secret.json")
        with open(secret, "wb") as handle:
            handle.write(feed_bytes(10))
        self.server.put("/moved", b"", status=302, location="file://" + secret)
        result = self.refresh(url=self.server.url("/moved"))
        self.assertExit(result, DOWNLOAD)
        self.assertFalse(os.path.exists(self.dest))

    def test_too_large(self):
        data = feed_bytes(10, names=["n%d.example.net" % i for i in range(50)])
        for length in (True, False):  # Content-Length known, then not
            with self.subTest(content_length=length):
                self.server.put("/feed.json", data, '"v1"', 1700000000,
                                body_length=length)
                result = self.refresh("--max-size", "1K")
                self.assertExit(result, DOWNLOAD)
                self.assertFalse(os.path.exists(self.dest))
        self.assertExit(self.refresh("--max-size", "1M"), INSTALLED)
        self.assertInstalled(data)

    def test_stale_work_dir_removed(self):
        stale = os.path.join(self.feeddir, ".dnsfilter-refresh.AbCdEf")
        os.mkdir(stale)
        with open(os.path.join(stale, "feed.json"), "wb") as handle:
            handle.write(b"half a download")
        if not shutil.which("flock"):
            self.skipTest("flock not installed: no lock, no sweep")
        self.server.put("/feed.json", feed_bytes(10), '"v1"', 1700000000)
        self.assertExit(self.refresh(), INSTALLED)  # asserts nothing left

    def test_terminated_mid_download(self):
        """SIGTERM to the process group (what systemd's stop and timeout(1)
        do) during the download: exit 143, no temporary file left."""
        old = feed_bytes(10)
        self.install_first(old)
        self.server.put("/feed.json", feed_bytes(11, names=[
            "n%d.example.net" % i for i in range(2000)]), '"v2"', 1700000100,
            stall=True)
        process = subprocess.Popen(
            [SCRIPT, "--url", self.url, "--dest", self.dest] + CURL_LIMITS,
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True)
        self.addCleanup(self.server.release.set)
        try:
            deadline = time.monotonic() + 10
            while len(self.server.requests_for("/feed.json")) < 2:
                self.assertLess(time.monotonic(), deadline, "no request seen")
                self.assertIsNone(process.poll(), "ended before the request")
                time.sleep(0.05)
            time.sleep(0.3)  # the first half of the body is being written
            os.killpg(process.pid, signal.SIGTERM)
            process.communicate(timeout=RUN_TIMEOUT)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.communicate(timeout=RUN_TIMEOUT)
        self.assertEqual(process.returncode, 143)
        self.assertNoTempFiles()
        self.assertInstalled(old)

    def test_usage_errors(self):
        for args in (["--url", self.url],
                     ["--dest", self.dest],
                     ["--url", "ftp://127.0.0.1/feed.json", "--dest", self.dest],
                     ["--url", self.url, "--dest", self.dest, "--sha256", "abc"],
                     ["--url", self.url, "--dest", self.dest, "--bogus"],
                     ["--url", self.url, "--dest", self.dest, "--max-size", "x"],
                     ["--url", self.url, "--dest", self.dest, "--max-time", "0"]):
            with self.subTest(args=args):
                result = subprocess.run([SCRIPT] + args, env=self.env,
                                        capture_output=True, text=True,
                                        timeout=RUN_TIMEOUT, check=False)
                self.assertExit(result, USAGE)
        self.assertEqual(self.server.requests, [])

    def test_help_documents_exit_codes(self):
        result = subprocess.run([SCRIPT, "--help"], capture_output=True,
                                text=True, timeout=RUN_TIMEOUT, check=False)
        self.assertEqual(result.returncode, 0)
        for code in range(9):
            self.assertRegex(result.stdout, r"(?m)^  %d  \S" % code)

    def test_missing_checker(self):
        self.server.put("/feed.json", feed_bytes(10), '"v1"', 1700000000)
        result = self.refresh("--check", os.path.join(self.tmp, "nope"))
        self.assertExit(result, LOCAL)
        self.assertFalse(os.path.exists(self.dest))

    def test_missing_directory(self):
        self.dest = os.path.join(self.tmp, "no-such-dir", "feed.json")
        self.server.put("/feed.json", feed_bytes(10), '"v1"', 1700000000)
        result = subprocess.run(
            [SCRIPT, "--url", self.url, "--dest", self.dest] + CURL_LIMITS,
            env=self.env, capture_output=True, text=True, timeout=RUN_TIMEOUT,
            check=False)
        self.assertExit(result, LOCAL)

    def test_quiet(self):
        self.server.put("/feed.json", feed_bytes(10), '"v1"', 1700000000)
        result = self.refresh("-q")
        self.assertExit(result, INSTALLED)
        self.assertEqual(result.stdout, "")
        result = self.refresh("--quiet")
        self.assertExit(result, NOT_MODIFIED)
        self.assertEqual(result.stdout, "")


if __name__ == "__main__":
    unittest.main()
