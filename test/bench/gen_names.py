#!/usr/bin/env python3
"""Names for test/bench/bench_peers.sh (a benchmark helper, not a test).

usage: gen_names.py N SEED OUTDIR [--queries Q]

Writes, in OUTDIR:
  names-N.txt    N distinct lower-case names, one a line, no trailing dot,
                 2-5 labels in all (TLD included), labels of 3-20 characters;
                 the same SEED gives the same stream, so a shorter list is a
                 prefix of a longer one.
  queries-N.txt  a dnsperf query file: min(N, Q) of those names, shuffled,
                 each as "name A" or "name AAAA" (about half each).
  feed-N.json    the same names as a dnsfilter-feed/1 feed, 10 names an
                 entry, every entry "force": true (a random 2-label name can
                 be a public suffix of the PSL's private section, which the
                 module refuses without force).
"""
import argparse
import json
import os
import random
import string

# Weighted like a C&C list: mostly .com, then cheap gTLDs and ccTLDs.
# None of them is one of Unbound's default local zones (test, invalid, ...).
TLDS = (("com", 28), ("net", 10), ("org", 6), ("info", 6), ("xyz", 7),
        ("top", 7), ("ru", 8), ("cn", 6), ("jp", 4), ("io", 5), ("su", 2),
        ("co.jp", 3), ("com.cn", 3), ("com.br", 2), ("co.uk", 2))
WORDS = ("cdn api mail update login secure cloud sync data node relay gate "
         "panel track stat img static files drive pay wallet shop news media "
         "host edge proxy check auth portal admin beacon ping status store "
         "video micro soft north star blue red gold tokyo osaka app web").split()
HOSTS = ("www", "mail", "api", "cdn", "ns1", "ns2", "vpn", "dev", "app",
         "img", "ftp", "smtp", "cloud", "secure", "update", "www2")
LETTERS = string.ascii_lowercase
ALNUM = LETTERS + string.digits


def label(rng):
    """One label of 3-20 characters, in one of a few styles."""
    style = rng.random()
    if style < 0.35:      # words, maybe hyphenated, maybe numbered
        text = rng.choice(("", "-")).join(rng.sample(WORDS, rng.randint(1, 3)))
        if rng.random() < 0.3:
            text += str(rng.randint(1, 999))
    elif style < 0.60:    # pronounceable: consonant-vowel pairs
        text = "".join(rng.choice("bcdfgklmnprstvz") + rng.choice("aeiou")
                       for _ in range(rng.randint(2, 7)))
    elif style < 0.85:    # DGA-like
        text = "".join(rng.choice(ALNUM) for _ in range(rng.randint(8, 20)))
    else:                 # hash-like
        text = "%x" % rng.getrandbits(rng.randint(40, 80))
    text = text[:20].strip("-")
    while len(text) < 3:
        text += rng.choice(LETTERS)
    return text


def name(rng, tlds, weights):
    tld = rng.choices(tlds, weights)[0]
    total = max(rng.choices((2, 3, 4, 5), (45, 33, 15, 7))[0], tld.count(".") + 2)
    hosts = total - tld.count(".") - 2
    parts = [rng.choice(HOSTS) if rng.random() < 0.5 else label(rng)
             for _ in range(hosts)]
    return ".".join(parts + [label(rng), tld])


def names(count, seed):
    rng = random.Random(seed)
    tlds = [t for t, _ in TLDS]
    weights = [w for _, w in TLDS]
    seen = set()
    out = []
    while len(out) < count:
        candidate = name(rng, tlds, weights)
        if candidate not in seen:
            seen.add(candidate)
            out.append(candidate)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("n", type=int)
    parser.add_argument("seed", type=int)
    parser.add_argument("outdir")
    parser.add_argument("--queries", type=int, default=100000)
    args = parser.parse_args()

    listed = names(args.n, args.seed)
    os.makedirs(args.outdir, exist_ok=True)
    path = lambda kind, ext: os.path.join(args.outdir, "%s-%d.%s" % (kind, args.n, ext))

    with open(path("names", "txt"), "w") as f:
        f.write("\n".join(listed) + "\n")

    qrng = random.Random(args.seed + 1)
    sample = qrng.sample(listed, min(args.n, args.queries))
    with open(path("queries", "txt"), "w") as f:
        f.writelines("%s %s\n" % (n, qrng.choice(("A", "AAAA"))) for n in sample)

    entries = [{"id": "BENCH-%07d" % (i // 10), "start": "2024-01-01", "force": True,
                "fqdns": listed[i:i + 10]} for i in range(0, args.n, 10)]
    with open(path("feed", "json"), "w") as f:
        json.dump({"format": "dnsfilter-feed/1", "serial": 1, "entries": entries}, f)


if __name__ == "__main__":
    main()
