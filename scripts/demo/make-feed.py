#!/usr/bin/env python3
"""Generate scripts/demo/feed.json from scripts/demo/seed-report-table.tsv.

The TSV is the malware table of a quarterly DNS filtering report (id, number
of FQDNs, behaviour, start, end).  Each row becomes one feed entry with the
same id, behaviour, start and end (empty end -> null) and exactly fqdn_count
made-up host names under the demo zone demo.test. (served by NSD in
scripts/run).  Names are numbered in table order, so the output is stable:

  info-theft  c2-N.evil.demo.test     backdoor  bd-N.evil.demo.test
  ddos        ddos-N.evil.demo.test

and a few entries list a wildcard (*.dga.demo.test, *.panel.demo.test) to
show that "*.name" blocks every name below "name" but not "name" itself.
The allow list exempts ok.dga.demo.test from the *.dga.demo.test wildcard.

Usage: scripts/demo/make-feed.py [TSV [FEED]]   (defaults: beside this file)
The output is committed; rerun only when the TSV changes.
"""
import csv
import json
import os
import sys

ZONE = "demo.test"
SERIAL = 2024063001
GENERATED = "2024-06-30T12:00:00+09:00"
TIMEZONE = "+09:00"
PREFIX = {"info-theft": "c2", "backdoor": "bd", "ddos": "ddos"}
# Entry id -> wildcard names that replace its last FQDN(s).
WILDCARDS = {
    "IIJ-20200114-0001": ["*.dga." + ZONE],
    "IIJ-20220306-0001": ["*.panel." + ZONE],
}


def read_table(path):
    """Return the TSV rows (dicts), skipping '#' comment lines."""
    with open(path, encoding="utf-8") as f:
        lines = [line for line in f if not line.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t"))


def build_entries(rows):
    entries = []
    seen = set()
    number = 0
    for row in rows:
        count = int(row["fqdn_count"])
        wild = WILDCARDS.get(row["id"], [])
        fqdns = []
        for _ in range(count - len(wild)):
            number += 1
            prefix = PREFIX.get(row["behavior"], "c2")
            fqdns.append("%s-%d.evil.%s" % (prefix, number, ZONE))
        fqdns += wild
        assert len(fqdns) == count, row
        for name in fqdns:
            assert name not in seen, name
            seen.add(name)
        entries.append({
            "id": row["id"],
            "behavior": row["behavior"],
            "fqdns": fqdns,
            "start": row["start"],
            "end": row["end"] or None,
            "action": "block",
        })
    return entries


def render(entries):
    """Pretty JSON with one entry per line, so diffs stay readable."""
    head = [
        '  "format": "dnsfilter-feed/1"',
        '  "serial": %d' % SERIAL,
        '  "generated": %s' % json.dumps(GENERATED),
        '  "timezone": %s' % json.dumps(TIMEZONE),
    ]
    body = ",\n".join("    " + json.dumps(e, ensure_ascii=False) for e in entries)
    return ("{\n" + ",\n".join(head) + ',\n  "entries": [\n' + body +
            '\n  ],\n  "allow": ["ok.dga.' + ZONE + '"]\n}\n')


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    tsv = argv[1] if len(argv) > 1 else os.path.join(here, "seed-report-table.tsv")
    out = argv[2] if len(argv) > 2 else os.path.join(here, "feed.json")
    entries = build_entries(read_table(tsv))
    text = render(entries)
    json.loads(text)  # the output must stay valid JSON
    with open(out, "w", encoding="utf-8") as f:
        f.write(text)
    total = sum(len(e["fqdns"]) for e in entries)
    print("%s: %d entries, %d FQDNs" % (out, len(entries), total))


if __name__ == "__main__":
    main(sys.argv)
