"""scripts/dnsfilter-report: the quarterly report from a feed and the counter
logs of a fleet.

Counter logs with known counts are built here (two resolvers, 2024-04..06,
a restart in the middle of one resolver's log, one resolver's older lines
rotated into a gzip file, lines just outside the period, a blank line).  The
expected figures are computed in this file from the counts it wrote, keyed
by the JST date each line was built for, and compared with the report's
tables exactly (the 15-decimal share strings included).  The HTML is also
rendered in headless Chromium (Debian's chromium, installed by scripts/setup);
a missing chromium is a failure, not a skip.

No resolver is started: the script is run on files only.
"""

import datetime as dt
import gzip
import html.parser
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "dnsfilter-report"
DEMO_FEED = REPO / "scripts" / "demo" / "feed.json"
DEMO_TABLE = REPO / "scripts" / "demo" / "seed-report-table.tsv"

JST = dt.timezone(dt.timedelta(hours=9))
UTC = dt.timezone.utc
FIRST, LAST = dt.date(2024, 4, 1), dt.date(2024, 6, 30)
MONTHS = ["2024-04", "2024-05", "2024-06"]

# The small feed.  Dates are midnight JST (the feed's timezone).
FEED_ENTRIES = [
    # Active all period.
    {"id": "T-20190701-0001", "behavior": "info-theft",
     "fqdns": ["a.example.test"], "start": "2019-07-01", "end": None},
    # Ended exactly when the period starts: not active in it.
    {"id": "T-20200101-0001", "behavior": "backdoor",
     "fqdns": ["b1.example.test", "b2.example.test"], "start": "2020-01-01",
     "end": "2024-04-01"},
    # Ends in the period.
    {"id": "T-20220306-0001", "behavior": "ddos",
     "fqdns": ["d1.example.test", "d2.example.test", "*.d3.example.test"],
     "start": "2022-03-06", "end": "2024-05-10"},
    # Ends one day into the period: active on 2024-04-01.
    {"id": "T-20230101-0001", "behavior": "backdoor",
     "fqdns": ["e.example.test"], "start": "2023-01-01", "end": "2024-04-02",
     "action": "monitor"},
    # New on the first day of the period.
    {"id": "T-20240401-0001", "behavior": "backdoor",
     "fqdns": ["p.example.test"], "start": "2024-04-01", "end": None},
    # New in the period; two on the same day (sorted by id: A before B).
    {"id": "T-20240416-000B", "behavior": "info-theft",
     "fqdns": ["n2.example.test"], "start": "2024-04-16", "end": None},
    {"id": "T-20240416-000A", "behavior": "info-theft",
     "fqdns": ["n1.example.test", "n1b.example.test"], "start": "2024-04-16",
     "end": None},
    # Timestamps, an unknown behaviour (printed as given).
    {"id": "T-20240528-0001", "behavior": "spam-relay",
     "fqdns": ["s.example.test"], "start": "2024-05-28T12:00:00+09:00",
     "end": "2024-06-15T18:30:00Z"},
    # New on the last day of the period.
    {"id": "T-20240630-0001", "behavior": "info-theft",
     "fqdns": ["z.example.test"], "start": "2024-06-30", "end": None},
    # Starts the day after the period: neither active nor new.
    {"id": "T-20240701-0001", "behavior": "info-theft",
     "fqdns": ["f.example.test"], "start": "2024-07-01", "end": None},
]

# The malware table expected (id, FQDN count, behaviour, start, end).
BEHAVIOR = {
    "en": {"info-theft": "Information theft", "backdoor": "Backdoor",
           "ddos": "DDoS", "spam-relay": "spam-relay"},
    "ja": {"info-theft": "情報窃取", "backdoor": "バックドア",
           "ddos": "DDoS攻撃", "spam-relay": "spam-relay"},
}
FILTERING = {"en": "(filtering)", "ja": "フィルタ中"}
ACTIVE = [  # (id, count, behaviour key, start, end or None)
    ("T-20190701-0001", 1, "info-theft", "2019-07-01", None),
    ("T-20220306-0001", 3, "ddos", "2022-03-06", "2024-05-10"),
    ("T-20230101-0001", 1, "backdoor", "2023-01-01", "2024-04-02"),
    ("T-20240401-0001", 1, "backdoor", "2024-04-01", None),
    ("T-20240416-000A", 2, "info-theft", "2024-04-16", None),
    ("T-20240416-000B", 1, "info-theft", "2024-04-16", None),
    ("T-20240528-0001", 1, "spam-relay", "2024-05-28 12:00", "2024-06-16 03:30"),
    ("T-20240630-0001", 1, "info-theft", "2024-06-30", None),
]
NEW_IDS = ["T-20240401-0001", "T-20240416-000A", "T-20240416-000B", "T-20240528-0001",
           "T-20240630-0001"]


def feed_document(entries):
    return {"format": "dnsfilter-feed/1", "serial": 2024063001,
            "generated": "2024-06-30T12:00:00+09:00", "timezone": "+09:00",
            "entries": [dict({"action": "block"}, **e) for e in entries]}


def expected_rows(lang, ids=None):
    rows = []
    for entry_id, count, behavior, start, end in ACTIVE:
        if ids is not None and entry_id not in ids:
            continue
        rows.append([entry_id, str(count), BEHAVIOR[lang][behavior], start,
                     end if end is not None else FILTERING[lang]])
    return rows


def num(value):
    return "{:,}".format(value)


def share(blocked, queries):
    return f"{100 * blocked / queries:.15f}%"


def stamp(local):
    """The UTC "ts" of a counter line for a JST wall-clock time, with
    milliseconds, as the module writes it."""
    utc = local.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (utc.microsecond // 1000)


class Counts:
    """Known counts: what each file holds in the period, by JST date."""

    def __init__(self):
        self.by_day = {}          # date -> [queries, optout, blocked]
        self.files = {}           # path -> dict of totals in the period

    def add(self, path, local, queries, optout, blocked, monitored):
        totals = self.files.setdefault(path, {"lines": 0, "queries": 0,
                                              "optout": 0, "blocked": 0,
                                              "monitored": 0})
        day = local.date()
        if not FIRST <= day <= LAST:
            return
        totals["lines"] += 1
        totals["queries"] += queries
        totals["optout"] += optout
        totals["blocked"] += blocked
        totals["monitored"] += monitored
        counts = self.by_day.setdefault(day, [0, 0, 0])
        counts[0] += queries
        counts[1] += optout
        counts[2] += blocked

    def month(self, month):
        q = o = b = 0
        for day, (queries, optout, blocked) in self.by_day.items():
            if day.strftime("%Y-%m") == month:
                q, o, b = q + queries, o + optout, b + blocked
        return q, o, b


class LogWriter:
    """Writes one counter log (plain or gzip) and records its counts."""

    def __init__(self, counts, path):
        self.counts, self.path, self.lines = counts, path, []

    def line(self, local, interval, queries, blocked, optout=0, monitored=0,
             by_id=None, serial=2024063001, ts=None):
        self.lines.append(json.dumps({
            "ts": ts or stamp(local), "interval": interval, "queries": queries,
            "optout": optout, "blocked": blocked, "monitored": monitored,
            "by_id": by_id or {}, "dropped_events": 0, "feed_serial": serial,
            "feed_failures": 0}, separators=(",", ":")))
        self.counts.add(self.path, local, queries, optout, blocked, monitored)

    def blank(self):
        self.lines.append("")

    def write(self):
        data = ("\n".join(self.lines) + "\n").encode()
        if self.path.endswith(".gz"):
            data = gzip.compress(data)
        with open(self.path, "wb") as f:
            f.write(data)


def build_logs(folder):
    """Two resolvers' counter logs with known counts."""
    counts = Counts()
    r1 = LogWriter(counts, os.path.join(folder, "r1", "stats.log"))
    r2_old = LogWriter(counts, os.path.join(folder, "r2", "stats.log.1.gz"))
    r2 = LogWriter(counts, os.path.join(folder, "r2", "stats.log"))
    for writer in (r1, r2_old, r2):
        os.makedirs(os.path.dirname(writer.path), exist_ok=True)

    # Resolver 1: a line every 6 hours, from before to after the period,
    # restarted on 2024-05-15 (shutdown line, then the deltas continue).
    local = dt.datetime(2024, 3, 29, 0, 0, 0, 123000, tzinfo=JST)
    end = dt.datetime(2024, 7, 3, tzinfo=JST)
    restart = dt.datetime(2024, 5, 15, 10, 17, 42, 5000, tzinfo=JST)
    serial = 2024033101
    while local < end:
        n = local.timetuple().tm_yday
        queries = 250_000_000 + 1_234_567 * n + 98_765 * local.hour
        blocked = (7 * n + local.hour) % 5
        monitored = (n + local.hour // 6) % 2
        r1.line(local, 21600, queries, blocked, optout=n % 13,
                monitored=monitored, serial=serial,
                by_id={"T-20190701-0001": blocked,
                       "T-20230101-0001": monitored})
        if local < restart <= local + dt.timedelta(hours=6):
            # Shutdown line, then a new process appends after a gap.
            r1.line(restart, 4062, 31_337, 2, optout=3, serial=serial,
                    by_id={"T-20190701-0001": 2})
            serial = 2024051501
            r1.blank()
        local += dt.timedelta(hours=6)
    # Edges, in JST: just before, first minute, month change, last second,
    # just after.  1000 blocked outside makes a wrong cut obvious.
    r1.line(dt.datetime(2024, 3, 31, 23, 59, 59, tzinfo=JST), 60, 10_000, 1000)
    r1.line(dt.datetime(2024, 4, 1, 0, 0, 30, tzinfo=JST), 60, 10_001, 1)
    r1.line(dt.datetime(2024, 5, 1, 1, 0, 0, tzinfo=JST), 60, 10_002, 2)
    r1.line(dt.datetime(2024, 6, 30, 23, 59, 59, 999000, tzinfo=JST), 60,
            10_003, 3)
    r1.line(dt.datetime(2024, 7, 1, 0, 0, 0, tzinfo=JST), 60, 10_004, 1000)
    # A ts with an explicit offset instead of Z.
    when = dt.datetime(2024, 6, 2, 12, 0, 0, tzinfo=JST)
    r1.line(when, 60, 10_005, 4, ts="2024-06-02T12:00:00.000+09:00")

    # Resolver 2: every 8 hours; lines before 2024-05-01 JST rotated into
    # stats.log.1.gz.  A burst on 2024-06-10.
    local = dt.datetime(2024, 3, 30, 4, 0, 0, tzinfo=JST)
    end = dt.datetime(2024, 7, 2, tzinfo=JST)
    while local < end:
        n = local.timetuple().tm_yday
        queries = 180_000_000 + 777_777 * n + 4_321 * local.hour
        blocked = (3 * n) % 4 + (50 + local.hour if local.date() ==
                                 dt.date(2024, 6, 10) else 0)
        writer = r2_old if local < dt.datetime(2024, 5, 1, tzinfo=JST) else r2
        writer.line(local, 28800, queries, blocked, optout=n % 7,
                    by_id={"T-20240416-000A": blocked})
        local += dt.timedelta(hours=8)
    for writer in (r1, r2_old, r2):
        writer.write()
    return counts, [r1.path, r2_old.path, r2.path]


def run_report(feed, logs, out, *extra):
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--feed", feed]
        + [arg for log in logs for arg in ("--stats", log)]
        + ["--from", FIRST.isoformat(), "--to", LAST.isoformat(),
           "--out", out] + list(extra),
        capture_output=True, text=True, timeout=120)


class Tables(html.parser.HTMLParser):
    """Cell texts of every <table id=...>, SVG bars, and headings."""

    def __init__(self, text):
        super().__init__()
        self.tables, self.bars, self.headings = {}, [], []
        self.svg_ids, self.external = [], []
        self._table = self._row = self._cell = self._heading = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("src", "href"):
            if name in attrs:
                self.external.append((tag, attrs[name]))
        if tag == "table":
            self._table = self.tables.setdefault(attrs.get("id"), [])
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag in ("h1", "h2"):
            self._heading = []
        elif tag == "svg":
            self.svg_ids.append(attrs.get("id"))
        elif tag == "rect" and "bar" in attrs.get("class", "").split():
            self.bars.append(attrs)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self._table.append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None
        elif tag in ("h1", "h2") and self._heading is not None:
            self.headings.append("".join(self._heading).strip())
            self._heading = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._heading is not None:
            self._heading.append(data)


def md_tables(text):
    """Rows (lists of cells) of every Markdown table, in order."""
    tables, current = [], None
    for line in text.splitlines():
        if line.startswith("| "):
            cells = [c.strip() for c in line.strip()[1:-1].split(" | ")]
            if current is None:
                current = []
                tables.append(current)
            if not all(set(c) <= set("-:") for c in cells):
                current.append(cells)
        else:
            current = None
    return tables


class Fixture:
    """The logs, the small feed and the en/ja reports, built once."""

    instance = None

    @classmethod
    def get(cls):
        if cls.instance is None:
            cls.instance = cls()
        return cls.instance

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="dnsf-report-")
        self.feed = os.path.join(self.tmp, "feed.json")
        with open(self.feed, "w") as f:
            json.dump(feed_document(FEED_ENTRIES), f, indent=1)
        self.counts, self.logs = build_logs(self.tmp)
        self.out = {}
        self.results = {}
        for lang in ("en", "ja"):
            out = os.path.join(self.tmp, "out-" + lang)
            self.results[lang] = run_report(self.feed, self.logs, out,
                                            "--lang", lang)
            self.out[lang] = out

    def read(self, lang, name):
        with open(os.path.join(self.out[lang], name), encoding="utf-8") as f:
            return f.read()

    def cleanup(self):
        if os.environ.get("DNSFILTER_KEEP_TMP"):
            print("kept", self.tmp, file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def tearDownModule():
    if Fixture.instance is not None:
        Fixture.instance.cleanup()


class ReportContentTest(unittest.TestCase):
    """The figures and tables, exactly, in HTML and Markdown, en and ja."""

    @classmethod
    def setUpClass(cls):
        cls.fx = Fixture.get()
        for lang, result in cls.fx.results.items():
            if result.returncode != 0:
                raise AssertionError("dnsfilter-report --lang %s: exit %d\n%s"
                                     % (lang, result.returncode, result.stderr))

    def html(self, lang):
        return Tables(self.fx.read(lang, "report.html"))

    def expected_monthly(self, lang):
        rows = []
        total = [0, 0, 0]
        for month in MONTHS:
            q, o, b = self.fx.counts.month(month)
            total = [total[0] + q, total[1] + o, total[2] + b]
            label = month if lang == "en" else "%s年%d月" % (
                month[:4], int(month[5:]))
            rows.append([label, num(b), num(q), num(o), share(b, q)])
        label = {"en": "Period total", "ja": "期間合計"}[lang]
        rows.append([label, num(total[2]), num(total[0]), num(total[1]),
                     share(total[2], total[0])])
        return rows

    def test_data_is_what_the_test_means(self):
        # The fixture itself: three months of data, a restart, edges.
        for month in MONTHS:
            q, _, b = self.fx.counts.month(month)
            self.assertGreater(q, 10**10)
            self.assertGreater(b, 0)
        self.assertEqual(len(self.fx.logs), 3)

    def test_monthly_share_exact(self):
        for lang in ("en", "ja"):
            with self.subTest(lang=lang):
                rows = self.html(lang).tables["monthly"]
                self.assertEqual(rows[1:], self.expected_monthly(lang))
                md = md_tables(self.fx.read(lang, "report.md"))
                self.assertIn(self.expected_monthly(lang), [t[1:] for t in md])

    def test_share_format(self):
        rows = self.html("en").tables["monthly"]
        for row in rows[1:]:
            whole, _, decimals = row[4].rstrip("%").partition(".")
            self.assertTrue(row[4].endswith("%"), row)
            self.assertEqual(whole, "0", row)
            self.assertEqual(len(decimals), 15, row)

    def test_formula_stated(self):
        en = self.fx.read("en", "report.html")
        self.assertIn("filtered queries ÷ all queries × 100", en)
        self.assertIn("opted-out clients excluded", en)
        self.assertIn("filtered queries ÷ all queries × 100",
                      self.fx.read("en", "report.md"))
        ja = self.fx.read("ja", "report.html")
        self.assertIn("フィルタしたクエリ数 ÷ 全クエリ数 × 100", ja)
        self.assertIn("オプトアウト", ja)

    def test_malware_table(self):
        for lang in ("en", "ja"):
            with self.subTest(lang=lang):
                rows = self.html(lang).tables["malware"]
                self.assertEqual(rows[1:], expected_rows(lang))
                md = md_tables(self.fx.read(lang, "report.md"))
                self.assertEqual(md[0][1:], expected_rows(lang))

    def test_new_entries(self):
        for lang in ("en", "ja"):
            with self.subTest(lang=lang):
                rows = self.html(lang).tables["new-entries"]
                self.assertEqual(rows[1:], expected_rows(lang, NEW_IDS))

    def test_fleet_sum(self):
        rows = self.html("en").tables["fleet"]
        self.assertEqual(rows[0][:6], ["Counter log", "Lines", "All queries",
                                       "Opt-out queries (excluded)",
                                       "Filtered queries", "Monitored"])
        total = {"lines": 0, "queries": 0, "optout": 0, "blocked": 0,
                 "monitored": 0}
        keys = ("lines", "queries", "optout", "blocked", "monitored")
        for row, path in zip(rows[1:], self.fx.logs):
            known = self.fx.counts.files[path]
            self.assertEqual(row[:6], [path] + [num(known[k]) for k in keys])
            for k in keys:
                total[k] += known[k]
        self.assertEqual(len(rows), 1 + len(self.fx.logs) + 1)
        self.assertEqual(rows[-1][:6], ["Fleet total"]
                         + [num(total[k]) for k in keys])
        # The fleet total is the period total of the monthly table.
        monthly_total = self.html("en").tables["monthly"][-1]
        self.assertEqual(monthly_total[1:3], [num(total["blocked"]),
                                              num(total["queries"])])

    def test_daily_counts_markdown(self):
        md = md_tables(self.fx.read("en", "report.md"))
        daily = [t for t in md if t[0] == ["Date", "Filtered queries"]][0]
        expected = [[day.isoformat(), num(c[2])]
                    for day, c in sorted(self.fx.counts.by_day.items())]
        self.assertEqual(daily[1:], expected)

    def test_chart_bars_in_html(self):
        bars = self.html("en").bars
        got = {b["data-date"]: int(b["data-count"]) for b in bars}
        expected = {day.isoformat(): c[2]
                    for day, c in self.fx.counts.by_day.items()}
        self.assertEqual(got, expected)
        self.assertEqual(len(bars), len(expected))

    def test_ja_headings(self):
        headings = self.html("ja").headings
        for text in ("フィルタ対象のマルウェア", "月別のフィルタ率",
                     "日別のフィルタしたクエリ数", "期間中に追加したエントリ"):
            self.assertIn(text, headings)
        self.assertIn("DNSフィルタリング レポート 2024-04-01 〜 2024-06-30",
                      headings)

    def test_self_contained(self):
        for lang in ("en", "ja"):
            text = self.fx.read(lang, "report.html")
            self.assertEqual(Tables(text).external, [])
            self.assertNotIn("<script", text)
            self.assertIn("<svg", text)

    def test_demo_feed_matches_seed_table(self):
        """The demo feed (made from the seed report's table) gives back that
        table, in the seed's order."""
        with open(DEMO_TABLE, encoding="utf-8") as f:
            lines = [l.rstrip("\n") for l in f if not l.startswith("#")]
        words = BEHAVIOR["en"]
        expected = []
        for line in lines[1:]:
            entry_id, count, behavior, start, end = line.split("\t")
            expected.append([entry_id, count, words[behavior], start,
                             end or FILTERING["en"]])
        with tempfile.TemporaryDirectory() as tmp:
            log = os.path.join(tmp, "stats.log")
            with open(log, "w") as f:
                f.write('{"ts":"2024-05-01T00:00:00Z","queries":10,'
                        '"blocked":1}\n')
            result = run_report(str(DEMO_FEED), [log], tmp)
            self.assertEqual(result.returncode, 0, result.stderr)
            with open(os.path.join(tmp, "report.html"), encoding="utf-8") as f:
                rows = Tables(f.read()).tables["malware"]
        self.assertEqual(rows[1:], expected)


def find_chromium():
    for name in (os.environ.get("DNSFILTER_CHROMIUM"), "chromium",
                 "chromium-browser"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


class ChromiumRenderTest(unittest.TestCase):
    """report.html as a browser sees it."""

    @classmethod
    def setUpClass(cls):
        cls.fx = Fixture.get()
        cls.chromium = find_chromium()

    def browse(self, lang, *how):
        if self.chromium is None:
            self.fail("chromium not found: install Debian's chromium "
                      "(scripts/setup does)")
        profile = tempfile.mkdtemp(prefix="dnsf-chromium-")
        self.addCleanup(shutil.rmtree, profile, ignore_errors=True)
        url = Path(self.fx.out[lang], "report.html").as_uri()
        result = subprocess.run(
            [self.chromium, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--no-first-run",
             "--user-data-dir=" + profile, "--hide-scrollbars"]
            + list(how) + [url],
            capture_output=True, text=True, timeout=180)
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        return result.stdout

    def test_rendered_dom_has_chart_and_tables(self):
        for lang in ("en", "ja"):
            with self.subTest(lang=lang):
                dom = Tables(self.browse(lang, "--dump-dom"))
                self.assertIn("daily-chart", dom.svg_ids)
                # One bar per day with data, with its count.
                expected = {day.isoformat(): c[2]
                            for day, c in self.fx.counts.by_day.items()}
                got = {b["data-date"]: int(b["data-count"]) for b in dom.bars}
                self.assertEqual(got, expected)
                self.assertEqual(len(dom.bars), len(expected))
                for bar in dom.bars:
                    self.assertGreaterEqual(float(bar["height"]), 0)
                peak = max(dom.bars, key=lambda b: int(b["data-count"]))
                self.assertEqual(peak["data-date"], "2024-06-10")
                self.assertGreater(float(peak["height"]), 100)
                for table in ("malware", "monthly", "new-entries", "fleet"):
                    self.assertIn(table, dom.tables)
                self.assertEqual(dom.tables["malware"][1:],
                                 expected_rows(lang))
                self.assertEqual(len(dom.tables["monthly"]), 1 + 3 + 1)

    def test_screenshot(self):
        shot = os.path.join(self.fx.tmp, "report-en.png")
        self.browse("en", "--window-size=1100,1600", "--screenshot=" + shot)
        self.assertEqual(png_size(shot), (1100, 1600))
        # A blank page compresses to a few kB; tables and a chart do not.
        self.assertGreater(os.path.getsize(shot), 30_000)


class BadInputTest(unittest.TestCase):
    """Exit 1 naming file, line and field; exit 2 for usage errors."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="dnsf-report-bad-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.feed = self.write("feed.json",
                               json.dumps(feed_document(FEED_ENTRIES[:1])))
        self.out = os.path.join(self.tmp, "out")

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def good(self, day, queries=100, blocked=1):
        return json.dumps({"ts": "2024-%sT03:00:00Z" % day,
                           "queries": queries, "blocked": blocked})

    def test_malformed_json_line(self):
        log = self.write("stats.log", "\n".join(
            [self.good("04-02"), "", '{"ts":"2024-04-03T00:00:00Z",'
             '"queries":5,"blocked":', self.good("04-04")]) + "\n")
        result = run_report(self.feed, [log], self.out)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("%s:3:" % log, result.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.out, "report.html")))

    def test_bad_field(self):
        log = self.write("stats.log", "\n".join(
            [self.good("04-02"), self.good("04-03", blocked=-1)]) + "\n")
        result = run_report(self.feed, [log], self.out)
        self.assertEqual(result.returncode, 1)
        self.assertIn("%s:2:" % log, result.stderr)
        self.assertIn("'blocked'", result.stderr)

    def test_missing_field_and_bad_ts(self):
        log = self.write("a.log", '{"ts":"2024-04-02T00:00:00Z","blocked":1}\n')
        result = run_report(self.feed, [log], self.out)
        self.assertEqual(result.returncode, 1)
        self.assertIn("a.log:1:", result.stderr)
        self.assertIn("'queries'", result.stderr)
        log = self.write("b.log", self.good("04-02") + "\n"
                         + '{"ts":"2024-04-02","queries":1,"blocked":0}\n')
        result = run_report(self.feed, [log], self.out)
        self.assertEqual(result.returncode, 1)
        self.assertIn("b.log:2:", result.stderr)
        self.assertIn("'ts'", result.stderr)

    def test_skip_bad_lines(self):
        log = self.write("stats.log", "\n".join(
            [self.good("04-02", 1000, 3), "garbage",
             self.good("04-03", 3000, 1)]) + "\n")
        result = run_report(self.feed, [log], self.out, "--skip-bad-lines")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("stats.log:2:", result.stderr)
        with open(os.path.join(self.out, "report.html"), encoding="utf-8") as f:
            rows = Tables(f.read()).tables["monthly"]
        self.assertEqual(rows[1], ["2024-04", "4", "4,000", "0",
                                   share(4, 4000)])
        self.assertEqual(rows[2][4], "n/a")  # May: no queries

    def test_bad_feed(self):
        entry = dict(FEED_ENTRIES[0], start="2024-13-01")
        feed = self.write("bad-feed.json", json.dumps(feed_document([entry])))
        log = self.write("stats.log", self.good("04-02") + "\n")
        result = run_report(feed, [log], self.out)
        self.assertEqual(result.returncode, 1)
        self.assertIn("bad-feed.json", result.stderr)
        self.assertIn("entries[0]", result.stderr)
        self.assertIn("'start'", result.stderr)

    def test_missing_log(self):
        result = run_report(self.feed, [os.path.join(self.tmp, "nope.log")],
                            self.out)
        self.assertEqual(result.returncode, 1)
        self.assertIn("nope.log", result.stderr)

    def test_usage_errors(self):
        log = self.write("stats.log", self.good("04-02") + "\n")
        base = [sys.executable, str(SCRIPT), "--feed", self.feed,
                "--stats", log, "--out", self.out]
        for args in (["--from", "2024-06-30", "--to", "2024-04-01"],
                     ["--from", "2024-04-01"],
                     ["--from", "2024-04-31", "--to", "2024-06-30"],
                     ["--from", "2024-04-01", "--to", "2024-06-30",
                      "--lang", "fr"],
                     ["--from", "2024-04-01", "--to", "2024-06-30",
                      "--stats", log],
                     ["--from", "2024-04-01", "--to", "2024-06-30",
                      "--tz", "Mars/Olympus"]):
            with self.subTest(args=args):
                result = subprocess.run(base + args, capture_output=True,
                                        text=True, timeout=60)
                self.assertEqual(result.returncode, 2, result.stderr)
        result = subprocess.run([sys.executable, str(SCRIPT), "--help"],
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0)
        self.assertIn("--stats", result.stdout)

    def assertOneLineError(self, result, *parts):
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
        for part in parts:
            self.assertIn(part, result.stderr)

    # Counter lines the module never writes, each a line 2 between good ones.
    BAD_LINES = [
        (b'{"ts":"9999-12-31T23:59:59Z","queries":1,"blocked":0}', "'ts'"),
        (b'{"ts":"9999-12-31T23:59:60Z","queries":1,"blocked":0}', "'ts'"),
        (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
        (b'{"ts":"2024-04-02T00:00:00Z","queries":[' * 5000 + b"1" + b"]" * 5000 + b"}",
         "nested too deeply"),
        (b'{"ts":"2024-04-02T00:00:00Z","queries":1,"blocked":0,"x":"\xff"}', "not UTF-8"),
        (b'{"ts":"2024-04-02T00:00:00Z"}', "'queries'"),
        (b'{"ts":20240402,"queries":1,"blocked":0}', "'ts'"),
        (b'{"ts":"2024-04-02T00:00:00Z","queries":"1","blocked":0}', "'queries'"),
        (b'{"ts":"2024-04-02T00:00:00Z","queries":NaN,"blocked":0}', "'queries'"),
        (b'{"ts":"2024-04-02T00:00:00Z","queries":1e400,"blocked":0}', "'queries'"),
        (b'{"ts":"2024-04-02T00:00:00Z","queries":1,"blocked":0,"by_id":[]}', "'by_id'"),
        (b'{"ts":"2024-04-02T00:00:00Z","queries":1,"blocked":0,"by_id":{"A":true}}',
         "'by_id'"),
        (b'{"ts":"2024-04-02T00:00:00Z","queries":1,"queries":2,"blocked":0}',
         'key "queries" given more than once'),
        (b"null", "not a JSON object"),
        (b'{"ts":"2024-04-02T00:00:00Z","queries":1,"blocked":0} {}', "not JSON"),
    ]

    def test_every_bad_counter_line_is_one_line_naming_file_and_line(self):
        for bad, field in self.BAD_LINES:
            with self.subTest(line=bad[:60]):
                path = os.path.join(self.tmp, "stats.log")
                with open(path, "wb") as f:
                    f.write(b"\n".join([self.good("04-02").encode(), bad,
                                        self.good("04-03").encode()]) + b"\n")
                result = run_report(self.feed, [path], self.out)
                self.assertOneLineError(result, "stats.log:2: ", field)
                # skipped with a warning naming file and line instead
                result = run_report(self.feed, [path], self.out, "--skip-bad-lines")
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertNotIn("Traceback", result.stderr)
                self.assertIn("warning: %s:2: " % path, result.stderr)
                self.assertIn("line skipped", result.stderr)

    def test_corrupt_gzip_log_is_one_line_naming_the_file(self):
        data = gzip.compress((self.good("04-02") + "\n").encode() * 2000)
        for name, broken in (("flipped.log.gz", data[:40] + bytes([data[40] ^ 0xff]) + data[41:]),
                             ("cut.log.gz", data[:len(data) // 2]),
                             ("magic-only.log.gz", b"\x1f\x8bnot gzip at all")):
            with self.subTest(name=name):
                path = os.path.join(self.tmp, name)
                with open(path, "wb") as f:
                    f.write(broken)
                self.assertOneLineError(run_report(self.feed, [path], self.out),
                                        name + ":", "cannot read")

    def test_leap_second_counts_as_the_next_second(self):
        # 2024-04-30T14:59:60Z is 15:00:00Z, May 1st 00:00 in +09:00
        log = self.write("stats.log", '{"ts":"2024-04-30T14:59:60Z",'
                         '"queries":700,"blocked":7}\n')
        result = run_report(self.feed, [log], self.out)
        self.assertEqual(result.returncode, 0, result.stderr)
        with open(os.path.join(self.out, "report.html"), encoding="utf-8") as f:
            rows = Tables(f.read()).tables["monthly"]
        self.assertEqual(rows[2][1:3], ["7", "700"])

    def test_every_bad_feed_is_one_line_naming_the_file(self):
        log = self.write("stats.log", self.good("04-02") + "\n")
        good = feed_document(FEED_ENTRIES[:1])
        cases = [
            (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
            (json.dumps(good).encode()[:-1] + b', "x": "\xff"}', "not UTF-8"),
            (json.dumps(good).encode() + b"\n{}", "not JSON"),
            (json.dumps(good).encode()[:-1] + b', "entries": []}',
             'key "entries" given more than once'),
            (json.dumps(feed_document([dict(FEED_ENTRIES[0], id="I" * 64)])).encode(),
             "longer than 63 bytes"),
            (json.dumps(feed_document([dict(FEED_ENTRIES[0],
                                            start="9999-12-31T23:59:60Z")])).encode(),
             "'start'"),
            (json.dumps(feed_document([dict(FEED_ENTRIES[0], end=7)])).encode(), "'end'"),
        ]
        for text, part in cases:
            with self.subTest(part=part):
                path = os.path.join(self.tmp, "feed-bad.json")
                with open(path, "wb") as f:
                    f.write(text)
                self.assertOneLineError(run_report(path, [log], self.out), "feed-bad.json",
                                        part)

    def test_input_text_in_messages_is_escaped(self):
        # a newline in a key or a file name cannot forge a second line
        log = self.write("a\nforged: b.log", '{"ts":"2024-04-02T00:00:00Z","queries":1,'
                         '"blocked":0,"by_id":{"x\\nforged: y":-1}}\n')
        result = run_report(self.feed, [log], self.out)
        self.assertOneLineError(result, "a\\nforged: b.log:1: ",
                                "field 'by_id'.\"x\\nforged: y\"")

    def test_time_zone_override(self):
        # 2024-04-30T16:00Z is May 1st in the feed's +09:00, April in UTC.
        log = self.write("stats.log", '{"ts":"2024-04-30T16:00:00Z",'
                         '"queries":700,"blocked":7}\n')
        for tz, month in ((None, 2), ("Z", 1), ("+00:00", 1)):
            with self.subTest(tz=tz):
                extra = ["--tz", tz] if tz else []
                result = run_report(self.feed, [log], self.out, *extra)
                self.assertEqual(result.returncode, 0, result.stderr)
                with open(os.path.join(self.out, "report.html"),
                          encoding="utf-8") as f:
                    rows = Tables(f.read()).tables["monthly"]
                self.assertEqual(rows[month][1:3], ["7", "700"])


if __name__ == "__main__":
    unittest.main()
