"""dnsfilter-check's outputs and exit status: the text summary, --json,
--print serial and --lookup, on feeds and settings written to a temp dir.

Runs the real binary (DNSFILTER_CHECK, else <repo>/build/cmake/dnsfilter-check);
no Unbound and no network.
"""

import calendar
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CHECK = os.environ.get("DNSFILTER_CHECK") or os.path.join(
    REPO, "build", "cmake", "dnsfilter-check")

VALID, INVALID, USAGE = 0, 1, 2


def feed(serial=None, entries=None, allow=None):
    document = {"format": "dnsfilter-feed/1"}
    if serial is not None:
        document["serial"] = serial
    document["generated"] = "2024-06-30T12:00:00+09:00"
    document["entries"] = entries if entries is not None else [
        {"id": "A-1", "behavior": "backdoor", "fqdns": ["c2.example.net"],
         "start": "2024-01-01"},
        {"id": "A-2", "behavior": "ddos", "fqdns": ["*.dga.example.org"],
         "start": "2024-01-01", "end": "2024-03-01", "action": "monitor"},
        {"id": "A-3", "behavior": "backdoor", "fqdns": ["x.example.com"],
         "start": "2024-02-01"},
    ]
    if allow is not None:
        document["allow"] = allow
    return json.dumps(document)


class CheckTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if not os.path.isfile(CHECK):
            raise unittest.SkipTest(
                "dnsfilter-check not built at %s (or set DNSFILTER_CHECK)" % CHECK)

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="dnsfilter-check-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as out:
            out.write(text)
        return path

    def run_check(self, *args):
        return subprocess.run([CHECK, *args], capture_output=True, text=True,
                              timeout=60)

    def json_of(self, result):
        self.assertEqual(result.stdout.count("\n"), 1, result.stdout)
        return json.loads(result.stdout)

    # ---- the summary ----

    def test_text_summary(self):
        path = self.write("feed.json", feed(serial=2024063001, allow=["ok.example.net"]))
        result = self.run_check(path)
        self.assertEqual(result.returncode, VALID, result.stderr)
        lines = result.stdout.splitlines()
        self.assertEqual(lines[0], "%s: valid dnsfilter-feed/1 feed" % path)
        self.assertEqual(lines[1], "serial: 2024063001")
        self.assertEqual(lines[2], "generated: 2024-06-30T12:00:00+09:00")
        self.assertRegex(lines[3], r"^entries: 3 \(block 2, monitor 1\), active at "
                         r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: 2$")
        self.assertEqual(lines[4], "names: 3 (exact 2, wildcard 1), allow: 1")
        self.assertEqual(lines[5], "behaviors: backdoor=2 ddos=1")
        self.assertRegex(lines[6], r"^index: \d+ bytes$")
        self.assertEqual(len(lines), 7)

    def test_json_summary_says_what_the_text_says(self):
        path = self.write("feed.json", feed(serial=2024063001, allow=["ok.example.net"]))
        summary = self.json_of(self.run_check(path, "--json"))
        self.assertEqual(summary["path"], path)
        self.assertIs(summary["valid"], True)
        self.assertEqual(summary["format"], "dnsfilter-feed/1")
        self.assertEqual(summary["serial"], 2024063001)
        self.assertEqual(summary["generated"], "2024-06-30T12:00:00+09:00")
        self.assertEqual((summary["entries"], summary["entries_block"],
                          summary["entries_monitor"], summary["entries_active"]),
                         (3, 2, 1, 2))
        self.assertEqual((summary["names"], summary["names_exact"],
                          summary["names_wildcard"], summary["allow"]), (3, 2, 1, 1))
        self.assertEqual(list(summary["behaviors"].items()),
                         [("backdoor", 2), ("ddos", 1)])
        self.assertGreater(summary["index_bytes"], 0)
        text = self.run_check(path).stdout
        self.assertIn("index: %d bytes" % summary["index_bytes"], text)
        # two runs, "now" each: the second may be a second or two later
        at = re.search(r"active at (\S+Z): 2\n", text)
        self.assertTrue(at, text)
        seconds = [calendar.timegm(time.strptime(t, "%Y-%m-%dT%H:%M:%SZ"))
                   for t in (summary["at"], at.group(1))]
        self.assertLessEqual(0, seconds[1] - seconds[0])
        self.assertLessEqual(seconds[1] - seconds[0], 5)

    def test_json_without_serial_or_generated_has_nulls(self):
        document = json.loads(feed())
        del document["generated"]
        path = self.write("feed.json", json.dumps(document))
        summary = self.json_of(self.run_check(path, "--json"))
        self.assertIsNone(summary["serial"])
        self.assertIsNone(summary["generated"])

    # ---- --print serial ----

    def test_print_serial_prints_only_the_serial(self):
        path = self.write("feed.json", feed(serial=9007199254740992))
        result = self.run_check(path, "--print", "serial")
        self.assertEqual((result.returncode, result.stdout, result.stderr),
                         (VALID, "9007199254740992\n", ""))

    def test_print_serial_of_a_feed_without_one_prints_nothing(self):
        path = self.write("feed.json", feed())
        result = self.run_check(path, "--print", "serial")
        self.assertEqual((result.returncode, result.stdout), (VALID, ""))

    def test_print_serial_of_an_invalid_feed(self):
        path = self.write("feed.json", feed(serial=5, entries=[{"id": "A"}]))
        result = self.run_check(path, "--print", "serial")
        self.assertEqual((result.returncode, result.stdout), (INVALID, ""))
        self.assertIn("entry 0 (A): start: missing", result.stderr)

    def test_print_serial_through_the_settings(self):
        self.write("feed.json", feed(serial=77))
        settings = self.write("dnsfilter.json", json.dumps({"feed": "feed.json"}))
        result = self.run_check("--config", settings, "--print", "serial")
        self.assertEqual((result.returncode, result.stdout), (VALID, "77\n"))

    # ---- errors and exit status ----

    def test_invalid_feed_errors_with_their_kind(self):
        path = self.write("feed.json", feed(entries=[
            {"id": "A", "fqdns": ["a..b"], "start": "2024-01-01"}]))
        result = self.run_check(path, "--json")
        self.assertEqual(result.returncode, INVALID)
        self.assertIn('%s: entry 0 (A): fqdns[0]: "a..b": empty label' % path,
                      result.stderr)
        self.assertIn("%s: invalid feed (1 errors)" % path, result.stderr)
        report = self.json_of(result)
        self.assertEqual((report["path"], report["valid"], report["error_count"]),
                         (path, False, 1))
        self.assertEqual(report["errors"], [
            {"kind": "invalid", "message": 'entry 0 (A): fqdns[0]: "a..b": empty label'}])

    def test_unreadable_feed_is_exit_2_and_an_io_error(self):
        missing = os.path.join(self.dir, "missing.json")
        for path, message in ((missing, "cannot open: No such file or directory"),
                              (self.dir, "not a regular file (a directory)")):
            result = self.run_check(path)
            self.assertEqual(result.returncode, USAGE)
            self.assertEqual(result.stderr, "%s: %s\n" % (path, message))
            result = self.run_check(path, "--json")
            self.assertEqual(result.returncode, USAGE)
            self.assertEqual(self.json_of(result)["errors"],
                             [{"kind": "io", "message": message}])

    def test_feed_over_its_limit_is_exit_1_and_a_limit_error(self):
        self.write("feed.json", feed(serial=1))
        settings = self.write("dnsfilter.json", json.dumps(
            {"feed": "feed.json", "limits": {"feed-entries": 2}}))
        result = self.run_check("--config", settings, "--json")
        self.assertEqual(result.returncode, INVALID)
        report = self.json_of(result)
        self.assertEqual(report["settings"], settings)
        self.assertEqual(report["errors"][0]["kind"], "limit")

    def test_unreadable_optout_file_is_exit_2(self):
        self.write("feed.json", feed(serial=1))
        settings = self.write("dnsfilter.json", json.dumps(
            {"feed": "feed.json", "optout": {"file": "missing.txt"}}))
        result = self.run_check("--config", settings)
        self.assertEqual(result.returncode, USAGE)
        self.assertIn("missing.txt: cannot open", result.stderr)

    def test_invalid_settings_quote_the_value(self):
        settings = self.write("dnsfilter.json", json.dumps({"feed": "f", "ttl": "60"}))
        result = self.run_check("--config", settings, "--json")
        self.assertEqual(result.returncode, INVALID)
        self.assertEqual(
            result.stderr,
            '%s: ttl: must be a whole number from 0 to 604800, not "60"\n' % settings)
        report = self.json_of(result)
        self.assertEqual((report["settings"], report["valid"]), (settings, False))

    def test_settings_with_optout_in_text_and_json(self):
        path = self.write("feed.json", feed(serial=3))
        settings = self.write("dnsfilter.json", json.dumps(
            {"feed": "feed.json", "optout.networks": ["10.0.0.0/8", "2001:db8::/32"]}))
        result = self.run_check("--config", settings)
        self.assertEqual(result.returncode, VALID, result.stderr)
        self.assertEqual(result.stdout.splitlines()[:3], [
            "opt-out: 2 prefixes",
            "%s: valid settings; feed %s" % (settings, path),
            "%s: valid dnsfilter-feed/1 feed" % path])
        summary = self.json_of(self.run_check("--config", settings, "--json"))
        self.assertEqual((summary["settings"], summary["path"], summary["optout_prefixes"],
                          summary["serial"]), (settings, path, 2, 3))

    def test_config_and_feed_checks_the_feed_with_the_settings_limits(self):
        # what dnsfilter-refresh asks before installing a feed: the module
        # would refuse this one (3 entries, limit 2), default limits would not
        installed = self.write("feed.json", feed(serial=1, entries=[]))
        new = self.write("new.json", feed(serial=2))
        settings = self.write("dnsfilter.json", json.dumps(
            {"feed": "feed.json", "limits": {"feed-entries": 2}}))
        self.assertEqual(self.run_check(new, "--print", "serial").returncode, VALID)
        result = self.run_check("--config", settings, new, "--print", "serial")
        self.assertEqual((result.returncode, result.stdout), (INVALID, ""))
        self.assertIn("%s: entries: 3 entries, more than the limit of 2" % new, result.stderr)
        report = self.json_of(self.run_check("--config", settings, new, "--json"))
        self.assertEqual((report["settings"], report["path"], report["valid"]),
                         (settings, new, False))
        self.assertEqual(report["errors"][0]["kind"], "limit")
        # within the limits: valid, and the feed the settings name is not read
        os.unlink(installed)
        roomy = self.write("roomy.json", json.dumps(
            {"feed": "feed.json", "limits": {"feed-entries": 3}}))
        result = self.run_check("--config", roomy, new, "--print", "serial")
        self.assertEqual((result.returncode, result.stdout, result.stderr), (VALID, "2\n", ""))
        text = self.run_check("--config", roomy, new)
        self.assertEqual(text.stdout.splitlines()[:2], [
            "%s: valid settings; their limits apply to %s" % (roomy, new),
            "%s: valid dnsfilter-feed/1 feed" % new])

    def test_config_and_feed_with_unusable_settings_is_exit_2(self):
        # the feed was not checked: not its fault, so not "invalid"
        new = self.write("new.json", feed(serial=2))
        for settings in (os.path.join(self.dir, "missing.json"),
                         self.write("bad.json", json.dumps({"feed": "f", "ttl": -1}))):
            result = self.run_check("--config", settings, new, "--print", "serial")
            self.assertEqual((result.returncode, result.stdout), (USAGE, ""), result.stderr)
            self.assertIn("%s: not checked: the settings are not usable" % new, result.stderr)

    def test_feed_text_is_escaped_in_text_output(self):
        # an id, a behaviour and a name from the feed, or a path, holding a
        # newline cannot forge a line of dnsfilter-check's output
        entries = [{"id": "A\nforged: valid", "behavior": "x\ny", "fqdns": ["c2.example.net"],
                    "start": "2024-01-01"},
                   {"id": "B", "fqdns": ["bad\nforged: line.example"], "start": "2024-01-01"}]
        path = self.write("f\nforged: path.json", feed(entries=entries))
        result = self.run_check(path)
        self.assertEqual(result.returncode, INVALID)
        for line in result.stderr.splitlines():
            self.assertFalse(line.startswith("forged"), result.stderr)
        self.assertIn('fqdns[0]: "bad\\nforged: line.example"', result.stderr)
        self.assertIn("f\\nforged: path.json: invalid feed (1 errors)", result.stderr)
        entries.pop()
        path = self.write("ok.json", feed(entries=entries))
        summary = self.run_check(path)
        self.assertIn("behaviors: x\\ny=1\n", summary.stdout)
        lookup = self.run_check(path, "--lookup", "c2.example.net", "--at", "2024-02-01")
        self.assertEqual(lookup.stdout, "c2.example.net.: block by entry A\\nforged: valid "
                                        "(x\\ny), matched c2.example.net.\n")

    def test_usage_errors(self):
        path = self.write("feed.json", feed())
        for args in (["--json", "--print", "serial", path],
                     ["--print", "serial", "--lookup", "x.example", path],
                     ["--print", "generated", path],
                     ["--at", "2024-01-01", path],
                     ["--lookup", "a..b", path, "--json"],
                     []):
            result = self.run_check(*args)
            self.assertEqual(result.returncode, USAGE, args)
            self.assertEqual(result.stdout, "", args)

    # ---- --lookup ----

    def test_lookup_in_text_and_json(self):
        path = self.write("feed.json", feed(allow=["ok.dga.example.org"]))
        cases = [
            ("X7.DGA.example.org", "2024-02-01",
             "x7.dga.example.org.: monitor by entry A-2 (ddos), matched *.dga.example.org.",
             {"verdict": "monitor", "entry": {"id": "A-2", "behavior": "ddos"},
              "matched": "*.dga.example.org.", "wildcard": True}),
            ("x7.dga.example.org", "2024-04-01",
             "x7.dga.example.org.: none",
             {"verdict": "none", "entry": None, "matched": None, "wildcard": False}),
            ("ok.dga.example.org", "2024-02-01",
             "ok.dga.example.org.: allow, matched ok.dga.example.org. in the allow list",
             {"verdict": "allow", "entry": None, "matched": "ok.dga.example.org.",
              "wildcard": False}),
            ("c2.example.net", "2024-02-01",
             "c2.example.net.: block by entry A-1 (backdoor), matched c2.example.net.",
             {"verdict": "block", "entry": {"id": "A-1", "behavior": "backdoor"},
              "matched": "c2.example.net.", "wildcard": False}),
        ]
        for name, at, text, decision in cases:
            result = self.run_check(path, "--lookup", name, "--at", at)
            self.assertEqual((result.returncode, result.stdout), (VALID, text + "\n"))
            answer = self.json_of(self.run_check(path, "--lookup", name, "--at", at, "--json"))
            self.assertEqual(answer["name"], name.lower() + ".")
            self.assertEqual(answer["at"], at + "T00:00:00Z")
            self.assertIs(answer["valid"], True)
            for key, value in decision.items():
                self.assertEqual(answer[key], value, (name, key))

    def test_json_is_valid_for_any_path(self):
        """A path with a quote, a tab and a byte that is not UTF-8."""
        name = os.fsencode(self.dir) + b'/f"\t\xff.json'
        with open(name, "w") as out:
            out.write(feed(serial=1))
        result = subprocess.run([os.fsencode(CHECK), name, b"--json"],
                                capture_output=True, timeout=60)
        self.assertEqual(result.returncode, VALID)
        summary = json.loads(result.stdout.decode())
        self.assertTrue(summary["path"].endswith('/f"\t\ufffd.json'))


if __name__ == "__main__":
    unittest.main()
