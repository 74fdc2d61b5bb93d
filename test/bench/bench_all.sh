#!/usr/bin/env bash
# bench_all.sh - the project's benchmark in one command: every figure the
# README's performance table quotes, in one run on one machine, the module
# beside Unbound's own local-zone and RPZ where they fit. A benchmark, not
# a test: it prints figures and fails only when a part cannot run.
#
# usage: test/bench/bench_all.sh [--quick | --summary]
#   --quick   small sizes and short runs (a few minutes), to try the script
#   --summary only the summary again, from the parts' outputs in $BENCH_DIR
#
# Parts, in this order (about 15 minutes on a 2-core machine; the first run
# also generates the names, ~6 minutes more for 10M):
#   1. bench_peers.sh 100000 1000000 10000000: start to the first sinkhole
#      answer (JSON parsed), restart with the feed unchanged (index image
#      mapped), RSS a name, blocked-answer QPS; local-zone and RPZ at 100k
#      and 1M (10M: the module alone)
#   2. bench_index 1000000: the index image: write, map, PSS of two
#      processes mapping the same image
#   3. bench_cachehit.py (num-threads 1 and 2), --miss and --blocked:
#      instructions per cache hit, per cache miss and per blocked answer
#      (callgrind)
#   4. bench_qps.py: cache-hit and cache-miss QPS with and without the module
#   5. bench_purge.py --names 100000: the hot swap's purge with 100k cached
#      answers, the slowest answer of a probe meanwhile
#   6. bench_swap.sh --names 1000000: hot swaps under 20k qps: rename to in
#      force, peak RSS, against a reload of local-zone
# then a summary table of the figures (the README's table).
#
# Everything goes to $BENCH_DIR (default /tmp/dnsfilter-bench-all): each
# part's output (part-*.txt) and the whole (bench_all.md). Builds the
# module and the C benchmarks with gcc in build/bench (callgrind reads
# gcc's debug info); Unbound from scripts/setup. Only 127.0.0.1 is used.
set -uo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/test/bench
BENCH_DIR=${BENCH_DIR:-/tmp/dnsfilter-bench-all}
VERSION=$(cat "$ROOT/scripts/unbound-version")
BUILD=$ROOT/build/bench
QUICK=0 SUMMARY_ONLY=0
case ${1:-} in
--quick) QUICK=1 ;;
--summary) SUMMARY_ONLY=1 ;; # the table again from the parts' files in $BENCH_DIR
"") ;;
*) printf 'usage: %s [--quick | --summary]\n' "$0" >&2; exit 2 ;;
esac

say() { printf '[bench_all %(%T)T] %s\n' -1 "$*" >&2; }
die() { say "error: $*"; exit 1; }

mkdir -p "$BENCH_DIR" || die "cannot create $BENCH_DIR"
OUT=$BENCH_DIR/bench_all.md
started=$SECONDS

PEERS=$BENCH_DIR/peers
if [ $SUMMARY_ONLY = 0 ]; then
# ---- set-up ------------------------------------------------------------------
say "set-up: scripts/setup (Unbound $VERSION, tools)"
"$ROOT/scripts/setup" >"$BENCH_DIR/setup.log" 2>&1 || { tail -n 20 "$BENCH_DIR/setup.log" >&2; die "scripts/setup failed"; }
say "set-up: module and C benchmarks (gcc, $BUILD)"
{
	env -u CC CC=gcc cmake -S "$ROOT" -B "$BUILD" -DUNBOUND_SRC_DIR="$ROOT/build/unbound-$VERSION/src" \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo &&
		cmake --build "$BUILD" -j2 --target dnsfilter dnsfilter-check bench_index
} >"$BENCH_DIR/build.log" 2>&1 || { tail -n 20 "$BENCH_DIR/build.log" >&2; die "the build failed"; }
MODULE=$BUILD/dnsfilter.so
[ -f "$MODULE" ] || die "no module at $MODULE"
export DNSFILTER_MODULE=$MODULE

if [ $QUICK = 1 ]; then
	SIZES=(10000 100000) BIG=100000 DP_SECS=3 DP_REPS=1 CALLS=1000 QPS_SECS=3 QPS_REPS=1
	PURGE_NAMES=10000 SWAP_NAMES=100000 SWAP_SECS=10 SWAPS=2
else
	SIZES=(100000 1000000 10000000) BIG=1000000 DP_SECS=10 DP_REPS=3 CALLS=5000 QPS_SECS=10
	QPS_REPS=3 PURGE_NAMES=100000 SWAP_NAMES=1000000 SWAP_SECS=30 SWAPS=4
fi

# part NAME COMMAND...: run one part, its output to part-NAME.txt and here
part() {
	local name=$1 t0=$SECONDS
	shift
	say "part $name: $*"
	"$@" >"$BENCH_DIR/part-$name.txt" 2>"$BENCH_DIR/part-$name.log"
	local rc=$?
	say "part $name: done in $((SECONDS - t0)) s (exit $rc)"
	[ $rc = 0 ] || { tail -n 15 "$BENCH_DIR/part-$name.log" >&2; say "part $name failed: its rows stay empty"; }
	return 0
}

rm -f "$PEERS/results.jsonl"
part peers env BENCH_DIR="$PEERS" MODULE="$MODULE" DP_SECS=$DP_SECS DP_REPS=$DP_REPS \
	PEERS_MAX=$((BIG + 1)) "$HERE/bench_peers.sh" "${SIZES[@]}"
part index "$BUILD/bench_index" "$BIG"
part cachehit python3 "$HERE/bench_cachehit.py" --queries $CALLS --module "$MODULE"
part cachehit2 python3 "$HERE/bench_cachehit.py" --queries $CALLS --module "$MODULE" --threads 2
part blocked python3 "$HERE/bench_cachehit.py" --queries $CALLS --module "$MODULE" --blocked
part miss python3 "$HERE/bench_cachehit.py" --queries $((CALLS / 5)) --module "$MODULE" --miss
part qps python3 "$HERE/bench_qps.py" --seconds $QPS_SECS --reps $QPS_REPS --module "$MODULE"
part purge python3 "$HERE/bench_purge.py" --names $PURGE_NAMES
part swap env DNSFILTER_MODULE="$MODULE" "$HERE/bench_swap.sh" --names $SWAP_NAMES \
	--duration $SWAP_SECS --swaps $SWAPS
fi

# ---- the summary -------------------------------------------------------------
{
	printf '# unbound-dnsfilter benchmark, %s\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
	printf 'Command: `test/bench/bench_all.sh%s`; %s; Unbound %s; %s CPUs, load average at the end %s; %d s in all.\n\n' \
		"$([ $QUICK = 1 ] && echo ' --quick')$([ $SUMMARY_ONLY = 1 ] && echo ' --summary, over the parts of the last run')" "$(git -C "$ROOT" describe --always --dirty 2>/dev/null)" \
		"$VERSION" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" $((SECONDS - started))
	python3 - "$BENCH_DIR" "$PEERS/results.jsonl" <<'PY'
import json, os, re, sys
bench, peers = sys.argv[1:3]

def text(name):
    try:
        return open(os.path.join(bench, "part-%s.txt" % name)).read()
    except OSError:
        return ""

rows = []
try:
    for line in open(peers):
        try:
            rows.append(json.loads(line))
        except ValueError:
            pass
except OSError:
    pass
by = {(r["mode"], r["n"]): r for r in rows if "error" not in r}
base = by.get(("none", 0))
sizes = sorted({r["n"] for r in rows if r["mode"] == "module"})

def cell(mode, n, fn):
    r = by.get((mode, n))
    try:
        return fn(r) if r else "-"
    except (KeyError, TypeError, ZeroDivisionError):
        return "-"

def bpn(r):
    return (r["rss_kb"] - base["rss_kb"]) * 1024 / r["n"]

print("| figure | N | module | local-zone | RPZ | module vs local-zone |")
print("|---|---:|---:|---:|---:|---:|")
for n in sizes:
    m, lz = by.get(("module", n)), by.get(("localzone", n))
    N = "{:,}".format(n)
    print("| start to first sinkhole answer (JSON feed) | %s | %s | %s | %s | %s |" % (
        N, cell("module", n, lambda r: "%.2f s" % r["load_s"]),
        cell("localzone", n, lambda r: "%.2f s" % r["load_s"]),
        cell("rpz", n, lambda r: "%.2f s" % r["load_s"]),
        "%.1f x faster" % (lz["load_s"] / m["load_s"]) if m and lz else "-"))
    print("| restart, feed unchanged (image mapped) | %s | %s | | | |" % (
        N, cell("module", n, lambda r: "%.2f s%s" % (
            r["restart_s"], "" if r["restart_mapped"] else " (parsed!)"))))
    print("| RSS above a plain Unbound, a name | %s | %s | %s | %s | %s |" % (
        N, cell("module", n, lambda r: "%.0f B" % bpn(r)),
        cell("localzone", n, lambda r: "%.0f B" % bpn(r)),
        cell("rpz", n, lambda r: "%.0f B" % bpn(r)),
        "%.1f x smaller" % (bpn(lz) / bpn(m)) if m and lz and base else "-"))
    print("| blocked-answer QPS (1 thread) | %s | %s | %s | %s | %s |" % (
        N, cell("module", n, lambda r: "{:,.0f}".format(r["qps"])),
        cell("localzone", n, lambda r: "{:,.0f}".format(r["qps"])),
        cell("rpz", n, lambda r: "{:,.0f}".format(r["qps"])),
        "%.2f" % (m["qps"] / lz["qps"]) if m and lz and lz.get("qps") else "-"))

def table_rows(name):
    return [line for line in text(name).splitlines()
            if line.startswith("| ") and not line.startswith("| case") and "---" not in line]

for part_name, threads in (("cachehit", 1), ("cachehit2", 2)):
    for line in table_rows(part_name):
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 3:
            print("| instructions per cache hit, num-threads %d: %s | | %s | | | %s vs Unbound "
                  "alone |" % (threads, cells[0], cells[1], cells[2]))
for line in table_rows("miss"):
    cells = [c.strip() for c in line.strip("|").split("|")]
    if len(cells) == 3:
        print("| instructions per cache miss (the whole resolution): %s | | %s | | | %s vs "
              "Unbound alone |" % tuple(cells))
for line in table_rows("blocked"):
    cells = [c.strip() for c in line.strip("|").split("|")]
    if len(cells) == 3 and "local-zone" in cells[0]:
        print("| instructions per blocked answer | | | %s | | |" % cells[1])
    elif len(cells) == 3:
        print("| instructions per blocked answer: %s | | %s | | | %s |" % (
            cells[0], cells[1], cells[2]))
for line in text("qps").splitlines():
    m = re.match(r"\| (Unbound alone|with the module.*?) \| (.*?) \| (.*?) \|$", line)
    if m:
        print("| QPS cache hit / cache miss: %s | | %s / %s | | | |" % m.groups())
# the hot swaps of bench_purge: each case's purge line and probe line
for case in re.finditer(r"^(\d)\. hot swap, (.*?):\n(.*?)(?=^\d\. |\Z)", text("purge"),
                        re.M | re.S):
    body = case.group(3)
    p = re.search(r"over the swap: (\d+) answers, median ([0-9.]+) ms, p99 ([0-9.]+) ms, "
                  r"slowest ([0-9.]+) ms", body)
    c = re.search(r"cache purge: (\d+) cached answers examined, (\d+) removed.*?"
                  r"(\d+) slices over ([0-9.]+) ms, the longest ([0-9.]+) ms, ([0-9.]+) ms of "
                  r"it on CPU; (.*?)\)", body)
    purge = ("%s removed of %s; %s slices over %s ms, longest %s ms (CPU %s ms); %s"
             % (c.group(2), c.group(1), c.group(3), c.group(4), c.group(5), c.group(6),
                c.group(7)) if c else "no purge (nothing newly listed)")
    if p:
        print("| hot swap, %s, 100k answers cached: probe median / p99 / slowest; the purge "
              "| | %s / %s / %s ms; %s | | | |" % ((case.group(2),) + p.groups()[1:] + (purge,)))

def swap_row(label):
    for line in text("swap").splitlines():
        if line.startswith("| " + label):
            return [c.strip() for c in line.strip("|").split("|")][1:]
    return None

names = re.search(r"Feed: (\d+) names", text("swap"))
N = "{:,}".format(int(names.group(1))) if names else ""
# columns: no swap, swaps (JSON parsed), swaps (image shipped), local-zone reload
r = swap_row("rename -> new feed in force")
if r and len(r) >= 4:
    print("| hot swap under load: rename -> in force (cache purged) min/avg/max, JSON / image "
          "shipped | %s | %s / %s | reload outage: %s | | |"
          % (N, r[1], r[2], (swap_row("reload -> 'start of service'") or ["-"] * 4)[3]))
gap = swap_row("longest gap between probe answers")
if gap and len(gap) >= 4:
    print("| longest gap between probe answers (10 ms probe): no swap / JSON / image | %s | "
          "%s / %s / %s | %s | | |" % (N, gap[0], gap[1], gap[2], gap[3]))
p99 = swap_row("latency p99 (from dnsperf -v)")
if p99 and len(p99) >= 4:
    print("| dnsperf latency p99: no swap / JSON / image | %s | %s / %s / %s | %s | | |"
          % (N, p99[0], p99[1], p99[2], p99[3]))
hwm, one = swap_row("VmHWM during the run"), swap_row("RSS with the names loaded")
if hwm and one and len(hwm) >= 4:
    print("| RSS with the names / peak during swaps: JSON / image shipped | %s | %s / %s / %s "
          "| %s / %s | | |" % (N, one[1], hwm[1], hwm[2], one[3], hwm[3]))
lines = text("index").splitlines()
for i, line in enumerate(lines):
    if "image write s" not in line:
        continue
    for row in lines[i + 2:]:
        c = [x.strip() for x in row.strip("|").split("|")]
        if len(c) == 6 and c[0].isdigit():
            print("| index image: write / map (warm) / size a name / PSS of each of two "
                  "processes mapping it | %s | %s s / %s s / %s B / %s KiB | | | |"
                  % ("{:,}".format(int(c[0])), c[1], c[2], c[3], c[5]))
PY
	printf '\n## The parts\n'
	for f in peers index cachehit cachehit2 miss blocked qps purge swap; do
		printf '\n### %s\n\n```\n' "$f"
		cat "$BENCH_DIR/part-$f.txt" 2>/dev/null
		printf '```\n'
	done
} >"$OUT"
cat "$OUT"
say "all done in $((SECONDS - started)) s; the whole: $OUT"
