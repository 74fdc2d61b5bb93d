#!/usr/bin/env bash
# bench_peers.sh - the module beside Unbound's own ways to block names, in one
# run: the same N names through dnsfilter.so (module), local-zone redirect +
# local-data A/AAAA (localzone), and an RPZ zone of exact QNAME triggers (rpz).
# A benchmark, not a test: it prints figures and fails only when a setup
# does not answer.
#
# usage: test/bench/bench_peers.sh [N ...]        (default: 10000 100000 1000000)
#
# For each N and mode, with one Unbound thread pinned to CPU $UB_CPU:
#   load   process start -> first sinkhole answer for the list's last name
#   memory VmRSS / VmHWM 1 s after that, minus a list-less Unbound (mode none)
#   QPS    dnsperf -c 2 -l $DP_SECS at max rate (pinned to CPU $DP_CPU) on up to
#          100k listed names, A/AAAA; median of $DP_REPS runs; Unbound's CPU share
# Names: gen_names.py (seed $SEED, 2-5 labels); the feed has 10 names an entry,
# every entry "force": true (a random 2-label name may be a PSL suffix).
# Raw results: one JSON line a case in $BENCH_DIR/results.jsonl; then a table.
# Only 127.0.0.1 is used; every wait is bounded; Unbound is stopped on exit.
#
# Environment: BENCH_DIR (/tmp/dnsfilter-bench) PORT (5454) SEED (42)
#   DP_SECS (10) DP_REPS (3) UB_CPU (0) DP_CPU (1) LOAD_MAX (600 s)
#   MODES ("module localzone rpz") PEERS_MAX (2000000: larger N, the module
#   alone) UB (build/unbound-<scripts/unbound-version>/sbin/unbound)
#   MODULE (build/cmake/dnsfilter.so)
set -uo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE="$ROOT/test/bench"
BENCH_DIR=${BENCH_DIR:-/tmp/dnsfilter-bench}
PORT=${PORT:-5454}
SEED=${SEED:-42}
DP_SECS=${DP_SECS:-10}
DP_REPS=${DP_REPS:-3}
UB_CPU=${UB_CPU:-0}
DP_CPU=${DP_CPU:-1}
LOAD_MAX=${LOAD_MAX:-600}
MODES=${MODES:-module localzone rpz}
PEERS_MAX=${PEERS_MAX:-2000000} # above it, the module alone
UB=${UB:-$ROOT/build/unbound-$(cat "$ROOT/scripts/unbound-version")/sbin/unbound}
MODULE=${MODULE:-$ROOT/build/cmake/dnsfilter.so}
SINK_A=192.0.2.1
SINK_AAAA=2001:db8::1
PASSTHRU_A=192.0.2.53 # a local-data name every mode has; the probe of mode none
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(10000 100000 1000000)
RUN_ID=$(date +%Y%m%dT%H%M%S)
HZ=$(getconf CLK_TCK)
GIT=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)

log() { printf '[bench_peers %(%T)T] %s\n' -1 "$*" >&2; }
die() { log "$*"; exit 1; }
usec() { local t=${1/./}; echo $((10#$t)); }                 # EPOCHREALTIME -> µs
secs_since() { awk -v a="$(usec "$1")" -v b="$(usec "$2")" 'BEGIN { printf "%.3f", (b - a) / 1e6 }'; }
port_bound() { [ -n "$(ss -Hlnu "sport = :$PORT")" ]; }
dig_one() { kdig @127.0.0.1 -p "$PORT" +timeout="${3:-2}" +retry=0 +short "$1" "$2" 2>/dev/null | head -n 1; }

UB_PID="" DP_PID=""
stop_unbound() {
	[ -n "$DP_PID" ] && { kill "$DP_PID" 2>/dev/null; wait "$DP_PID" 2>/dev/null; DP_PID=""; }
	[ -n "$UB_PID" ] || return 0
	kill "$UB_PID" 2>/dev/null
	for _ in $(seq 1 300); do kill -0 "$UB_PID" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$UB_PID" 2>/dev/null && { log "unbound $UB_PID still up after 30 s: SIGKILL"; kill -9 "$UB_PID"; }
	wait "$UB_PID" 2>/dev/null
	UB_PID=""
}
trap stop_unbound EXIT
trap 'exit 130' INT TERM

# ---- inputs -------------------------------------------------------------------
for tool in kdig dnsperf taskset ss python3 awk; do
	command -v "$tool" > /dev/null || die "$tool is needed"
done
[ -x "$UB" ] || die "no unbound at $UB (set UB=)"
[[ " $MODES " != *" module "* ]] || [ -f "$MODULE" ] || die "no module at $MODULE (set MODULE=)"
port_bound && die "127.0.0.1:$PORT/udp is in use (set PORT=)"
for n in "${SIZES[@]}"; do [[ $n =~ ^[1-9][0-9]*$ ]] || die "bad size '$n'"; done
DATA="$BENCH_DIR/data-s$SEED"
mkdir -p "$DATA"
if [[ " $MODES " == *" module "* ]]; then # a copy: a rebuild during the run changes nothing
	cp "$MODULE" "$BENCH_DIR/dnsfilter.so" || die "cannot copy $MODULE"
	MODULE="$BENCH_DIR/dnsfilter.so"
fi
for n in "${SIZES[@]}"; do
	if [ ! -s "$DATA/feed-$n.json" ] || [ "$HERE/gen_names.py" -nt "$DATA/feed-$n.json" ]; then
		log "generating $n names (seed $SEED)"
		python3 "$HERE/gen_names.py" "$n" "$SEED" "$DATA" || die "gen_names.py failed"
	fi
done

# write_case MODE N DIR: unbound.conf and the mode's list files in DIR
write_case() {
	local mode=$1 n=$2 dir=$3 modules=iterator
	[ "$mode" = module ] && modules="dynlib iterator"
	[ "$mode" = rpz ] && modules="respip iterator" # Unbound refuses rpz without respip
	# loopback root hints that may not be queried: nothing leaves this machine
	printf '.  3600000 NS a.root.invalid.\na.root.invalid. 3600000 A 127.0.0.254\n' >"$dir/root.hints"
	{
		cat <<-EOF
			server:
			    interface: 127.0.0.1
			    port: $PORT
			    do-ip6: no
			    num-threads: 1
			    chroot: ""
			    username: ""
			    directory: "$dir"
			    logfile: "$dir/unbound.log"
			    use-syslog: no
			    do-daemonize: no
			    pidfile: "$dir/unbound.pid"
			    verbosity: 1
			    access-control: 127.0.0.0/8 allow
			    module-config: "$modules"
			    root-hints: "$dir/root.hints"
			    do-not-query-address: 127.0.0.254
			    local-zone: "passthru.test." static
			    local-data: "passthru.test. A $PASSTHRU_A"
		EOF
		[ "$mode" = localzone ] && echo "    include: \"$dir/blocklist.conf\""
		printf 'remote-control:\n    control-enable: no\n'
		[ "$mode" = module ] && printf 'dynlib:\n    dynlib-file: "%s"\n' "$MODULE"
		[ "$mode" = rpz ] && printf 'rpz:\n    name: "rpz."\n    zonefile: "%s"\n    rpz-log: no\n' "$dir/rpz.zone"
	} > "$dir/unbound.conf"
	case $mode in
	localzone)
		awk -v a="$SINK_A" -v aaaa="$SINK_AAAA" '{ printf "local-zone: \"%s.\" redirect\nlocal-data: \"%s. A %s\"\nlocal-data: \"%s. AAAA %s\"\n", $1, $1, a, $1, aaaa }' \
			"$DATA/names-$n.txt" > "$dir/blocklist.conf" ;;
	rpz)
		{
			printf '$ORIGIN rpz.\n$TTL 3600\n@ SOA localhost. root.localhost. 1 3600 600 86400 3600\n@ NS localhost.\n'
			awk -v a="$SINK_A" -v aaaa="$SINK_AAAA" '{ printf "%s A %s\n%s AAAA %s\n", $1, a, $1, aaaa }' "$DATA/names-$n.txt"
		} > "$dir/rpz.zone" ;;
	module)
		# a state dir of the case's own: the first start parses the JSON and
		# writes the index image there, the restart maps it; limits above N
		mkdir -p "$dir/state"
		printf '{"feed": "%s", "state-dir": "%s", "sinkhole": {"a": "%s", "aaaa": "%s"}, "ttl": 60, "watch-interval": 0, "limits": {"feed-bytes": %d, "feed-entries": %d, "feed-names": %d}}\n' \
			"$DATA/feed-$n.json" "$dir/state" "$SINK_A" "$SINK_AAAA" \
			$((n * 64 + 100000000)) $((n / 10 + 1000)) $((n + 1000)) > "$dir/dnsfilter.json" ;;
	esac
}

# wait_serving NAME EXPECT: sets PORT_T, SERVE_T. Unbound binds its port after
# parsing the config and before building zones / loading modules. kdig is sent
# only once the port is bound (before, it would sit out its whole timeout);
# after, a query waits in the socket buffer and is answered as soon as
# Unbound serves.
wait_serving() {
	local name=$1 expect=$2 deadline=$((${EPOCHREALTIME%.*} + LOAD_MAX))
	PORT_T="" SERVE_T=""
	while ((${EPOCHREALTIME%.*} < deadline)); do
		kill -0 "$UB_PID" 2>/dev/null || return 2
		if [ -z "$PORT_T" ]; then
			port_bound || { sleep 0.02; continue; }
			PORT_T=$EPOCHREALTIME
		fi
		[ "$(dig_one "$name" A 1)" = "$expect" ] && { SERVE_T=$EPOCHREALTIME; return 0; }
		sleep 0.05
	done
	return 1
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$UB_PID/stat"; }
status_kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$UB_PID/status"; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# measure_qps QUERYFILE DIR: sets QPS (median), QPS_RUNS, CPU_RUNS, QPS_CORE
# (median of QPS / Unbound's CPU share: per busy core, less sensitive to other
# load on the machine), LOST, NOERROR
measure_qps() {
	local qfile=$1 dir=$2 i out c0 c1 t0 t1 qps=() cpu=() per_core=() noerr=()
	LOST=0
	for i in $(seq 1 "$DP_REPS"); do
		out="$dir/dnsperf-$i.out"
		c0=$(cpu_ticks) t0=$EPOCHREALTIME
		# in the background, so that a signal's trap runs at once and stops it
		timeout $((DP_SECS + 30)) taskset -c "$DP_CPU" dnsperf -s 127.0.0.1 -p "$PORT" -d "$qfile" \
			-T 1 -c 2 -l "$DP_SECS" > "$out" 2>&1 &
		DP_PID=$!
		wait "$DP_PID"
		DP_PID=""
		c1=$(cpu_ticks) t1=$EPOCHREALTIME
		qps+=("$(awk '/Queries per second:/ { q = $4 } END { printf "%.0f", q }' "$out")")
		cpu+=("$(awk -v d=$((c1 - c0)) -v hz="$HZ" -v s="$(secs_since "$t0" "$t1")" 'BEGIN { printf "%.2f", d / hz / s }')")
		per_core+=("$(awk -v q="${qps[-1]}" -v c="${cpu[-1]}" 'BEGIN { v = c > 0 ? q / c : 0; printf "%.0f", v }')")
		noerr+=("$(awk 'match($0, /NOERROR [0-9]+ \([0-9.]+/) { v = substr($0, RSTART, RLENGTH); sub(/.*\(/, "", v) } END { print v + 0 }' "$out")")
		LOST=$((LOST + $(awk '/Queries lost:/ { l = $3 } END { print l + 0 }' "$out")))
		log "  dnsperf run $i/$DP_REPS: ${qps[-1]:-?} QPS, unbound CPU ${cpu[-1]}, NOERROR ${noerr[-1]:-?}%"
	done
	QPS=$(median "${qps[@]}") QPS_CORE=$(median "${per_core[@]}")
	QPS_RUNS=$(IFS=,; echo "${qps[*]}") CPU_RUNS=$(IFS=,; echo "${cpu[*]}")
	NOERROR=$(median "${noerr[@]}")
}

# run_case MODE N: one JSON line to results.jsonl
run_case() {
	local mode=$1 n=$2 dir="$BENCH_DIR/$1-$2" probe first qfile rc t0 checks extra=""
	rm -rf "$dir" && mkdir -p "$dir"
	write_case "$mode" "$n" "$dir"
	if [ "$mode" = none ]; then
		probe=passthru.test first=passthru.test qfile="$dir/queries.txt"
		echo "passthru.test A" > "$qfile"
	else
		probe=$(tail -n 1 "$DATA/names-$n.txt") first=$(head -n 1 "$DATA/names-$n.txt")
		qfile="$DATA/queries-$n.txt"
	fi
	local expect=$SINK_A
	[ "$mode" = none ] && expect=$PASSTHRU_A
	port_bound && die "127.0.0.1:$PORT/udp is in use before $mode $n"

	log "$mode N=$n: starting unbound"
	t0=$EPOCHREALTIME
	DNSFILTER_CONF="$dir/dnsfilter.json" taskset -c "$UB_CPU" "$UB" -d -c "$dir/unbound.conf" > "$dir/stdout.log" 2>&1 &
	UB_PID=$!
	wait_serving "$probe" "$expect"
	rc=$?
	if [ $rc -ne 0 ]; then
		log "$mode N=$n: no answer for $probe (rc $rc); log tail:"
		tail -n 5 "$dir/unbound.log" "$dir/stdout.log" >&2
		stop_unbound
		printf '{"run": "%s", "mode": "%s", "n": %d, "error": "no answer for the last name within %s s (rc %d)"}\n' \
			"$RUN_ID" "$mode" "$n" "$LOAD_MAX" "$rc" >> "$BENCH_DIR/results.jsonl"
		return 1
	fi
	local load_s port_s rss hwm
	load_s=$(secs_since "$t0" "$SERVE_T") port_s=$(secs_since "$t0" "$PORT_T")
	sleep 1
	rss=$(status_kb VmRSS) hwm=$(status_kb VmHWM)
	log "$mode N=$n: serving after $load_s s (port bound at $port_s s), RSS $((rss / 1024)) MiB, HWM $((hwm / 1024)) MiB"

	# the answers are the sinkhole ones, for both types and both ends of the list
	checks=true
	if [ "$mode" != none ]; then
		[ "$(dig_one "$first" A)" = "$SINK_A" ] && [ "$(dig_one "$first" AAAA)" = "$SINK_AAAA" ] &&
			[ "$(dig_one "$probe" AAAA)" = "$SINK_AAAA" ] || checks=false
	fi
	[ "$(dig_one passthru.test A)" = "$PASSTHRU_A" ] || checks=false
	[ $checks = true ] || log "$mode N=$n: WARNING: a check answer was wrong"
	if [ "$mode" = module ]; then
		# "dnsfilter: ... feed F: E entries, M names, W wildcards, ..., B bytes; ..."
		extra=$(grep -m1 -oE 'feed .*: [0-9]+ entries, [0-9]+ names, .* [0-9]+ bytes;' "$dir/unbound.log" |
			sed -E 's/.*: ([0-9]+) entries, ([0-9]+) names, .* ([0-9]+) bytes;/, "module_entries": \1, "module_names": \2, "module_index_bytes": \3/')
		[ -n "$extra" ] || log "$mode N=$n: WARNING: no 'dnsfilter: ... feed' line in $dir/unbound.log"
	fi

	measure_qps "$qfile" "$dir"
	if [ "$mode" = module ]; then
		# a restart with the feed unchanged: the index image of the first
		# start is mapped, not the JSON parsed again
		stop_unbound
		log "$mode N=$n: restarting with the feed unchanged"
		: >"$dir/unbound.log"
		t0=$EPOCHREALTIME
		DNSFILTER_CONF="$dir/dnsfilter.json" taskset -c "$UB_CPU" "$UB" -d -c "$dir/unbound.conf" > "$dir/stdout-restart.log" 2>&1 &
		UB_PID=$!
		if wait_serving "$probe" "$expect"; then
			local restart_s mapped=false
			restart_s=$(secs_since "$t0" "$SERVE_T")
			grep -q 'index mapped from its image' "$dir/unbound.log" && mapped=true
			sleep 1
			extra+=", \"restart_s\": $restart_s, \"restart_rss_kb\": $(status_kb VmRSS), \"restart_mapped\": $mapped"
			log "$mode N=$n: restart serving after $restart_s s (image mapped: $mapped)"
		else
			log "$mode N=$n: no answer after the restart"
		fi
	fi
	printf '{"run": "%s", "mode": "%s", "n": %d, "load_s": %s, "port_bound_s": %s, "rss_kb": %d, "hwm_kb": %d, "qps": %s, "qps_runs": [%s], "qps_per_core": %s, "ub_cpu_runs": [%s], "dnsperf": "-T 1 -c 2 -l %d x%d", "lost": %d, "noerror_pct": %s, "checks_ok": %s, "query_lines": %d, "loadavg": "%s", "seed": %d, "git": "%s"%s}\n' \
		"$RUN_ID" "$mode" "$n" "$load_s" "$port_s" "$rss" "$hwm" "${QPS:-0}" "$QPS_RUNS" "${QPS_CORE:-0}" "$CPU_RUNS" \
		"$DP_SECS" "$DP_REPS" "$LOST" "${NOERROR:-0}" "$checks" "$(wc -l < "$qfile")" \
		"$(cut -d' ' -f1-3 /proc/loadavg)" "$SEED" "$GIT" "$extra" >> "$BENCH_DIR/results.jsonl"
	stop_unbound
}

# ---- the runs -----------------------------------------------------------------
log "run $RUN_ID: sizes ${SIZES[*]}, modes none $MODES; results in $BENCH_DIR/results.jsonl"
run_case none 0 || die "the list-less baseline does not start"
for n in "${SIZES[@]}"; do
	for mode in $MODES; do
		if [ "$mode" != module ] && ((n > PEERS_MAX)); then
			log "$mode N=$n: not run (above PEERS_MAX=$PEERS_MAX: local-zone and RPZ take minutes and GBs there)"
			printf '{"run": "%s", "mode": "%s", "n": %d, "error": "not run: N above PEERS_MAX=%d"}\n' \
				"$RUN_ID" "$mode" "$n" "$PEERS_MAX" >> "$BENCH_DIR/results.jsonl"
			continue
		fi
		run_case "$mode" "$n"
	done
done

# ---- the table ----------------------------------------------------------------
python3 - "$BENCH_DIR/results.jsonl" "$RUN_ID" "$DP_REPS" "$DP_SECS" <<'PY'
import json, sys
path, run, reps, secs = sys.argv[1:5]
def parse(line):
    try:
        return json.loads(line)
    except ValueError:
        return {}
rows = [r for r in map(parse, open(path)) if r.get("run") == run]
base = next((r for r in rows if r["mode"] == "none" and "rss_kb" in r), None)
by = {(r["mode"], r["n"]): r for r in rows}

def per_name(r):
    return (r["rss_kb"] - base["rss_kb"]) * 1024 / r["n"] if r.get("n") and "rss_kb" in r else None

def ratio(a, b, fmt="%.1f"):
    return fmt % (a / b) if a is not None and b else "-"

def qratio(mod, peer):
    return "%s (%s)" % (ratio(mod["qps"], peer.get("qps"), "%.2f"),
                        ratio(mod["qps_per_core"], peer.get("qps_per_core"), "%.2f"))

print("\nrun %s; QPS = median of %s dnsperf run(s) of %s s (Unbound CPU share of that run); "
      "B/name = (VmRSS - none's VmRSS) / N;\nQPS/core = QPS / Unbound's CPU share (median over the runs); QPS ratios: raw (per core);\n"
      "none: no list, QPS on its one local-data name (passthru.test A)\n" % (run, reps, secs))
print("| mode | N | load s | restart s | RSS MiB (HWM) | B/name | QPS (ub CPU) | QPS/core "
      "| load lz/mod | load rpz/mod | B/name lz/mod | B/name rpz/mod | QPS mod/lz | QPS mod/rpz |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    if "error" in r:
        print("| %s | %d | %s |" % (r["mode"], r["n"], r["error"]) + " |" * 11)
        continue
    runs = r["qps_runs"]
    cpu = r["ub_cpu_runs"][runs.index(min(runs, key=lambda q: abs(q - r["qps"])))]
    b = per_name(r)
    restart = ("%.2f%s" % (r["restart_s"], "" if r.get("restart_mapped") else " (parsed)")
               if "restart_s" in r else "")
    cells = [r["mode"], "{:,}".format(r["n"]), "%.2f" % r["load_s"], restart,
             "%.0f (%.0f)" % (r["rss_kb"] / 1024, r["hwm_kb"] / 1024),
             "%.0f" % b if b is not None else "-", "{:,.0f} ({:.0%})".format(r["qps"], cpu),
             "{:,.0f}".format(r["qps_per_core"])]
    lz, rpz = by.get(("localzone", r["n"]), {}), by.get(("rpz", r["n"]), {})
    if r["mode"] == "module":
        cells += [ratio(lz.get("load_s"), r["load_s"]), ratio(rpz.get("load_s"), r["load_s"]),
                  ratio(per_name(lz) if lz else None, b), ratio(per_name(rpz) if rpz else None, b),
                  qratio(r, lz), qratio(r, rpz)]
    else:
        cells += [""] * 6
    if not r["checks_ok"] or r["lost"] or r["noerror_pct"] < 100:
        cells[0] += " (!)"
    print("| " + " | ".join(cells) + " |")
odd = [r for r in rows if "error" in r or not r.get("checks_ok") or r.get("lost") or r.get("noerror_pct", 100) < 100]
for r in odd:
    print("(!) %s %d: %s" % (r["mode"], r["n"], r.get("error") or "checks_ok=%s lost=%s NOERROR=%s%%"
                             % (r["checks_ok"], r["lost"], r["noerror_pct"])))
for r in rows:
    if r["mode"] == "module" and r.get("module_names") not in (None, r["n"]):
        print("(!) module %d: the module loaded %s names" % (r["n"], r["module_names"]))
PY
