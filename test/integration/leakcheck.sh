#!/bin/bash
# leakcheck.sh - Unbound with dnsfilter under valgrind: start, queries
# (filtered, opted out, unlisted, other types, TCP), hot refreshes of the
# feed and the opt-out file (good and rejected ones), RELOADS reloads
# alternating `reload` and `reload_keep_cache` with alternating feeds, then
# `unbound-control stop`. Reports every valgrind error and every definite
# leak whose stack has the module in it (dnsfilter.so / dnsf_* / dnsfilter
# functions); Unbound's own reports are counted apart.
#
# Not part of ctest (it takes minutes). Run as root (NSD with username "").
#
#   test/integration/leakcheck.sh            # 10 reloads
#   RELOADS=20 KEEP=1 test/integration/leakcheck.sh
#
# Environment: DNSFILTER_UNBOUND (dir with unbound, unbound-control; default
# build/unbound-<scripts/unbound-version>/sbin), DNSFILTER_MODULE (default
# build/cmake/dnsfilter.so), RELOADS (10), KEEP=1 keeps the work dir.
#
# Exit status: 0 no module error or definite leak, 1 some (listed), 2 the
# run itself failed (Unbound did not start, crashed, did not stop, ...).

set -u

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SBIN=${DNSFILTER_UNBOUND:-$REPO/build/unbound-$(cat "$REPO/scripts/unbound-version")/sbin}
MODULE=${DNSFILTER_MODULE:-$REPO/build/cmake/dnsfilter.so}
RELOADS=${RELOADS:-10}
KEEP=${KEEP:-0}
ZONE=leak.test

UNBOUND=$SBIN/unbound
CONTROL=$SBIN/unbound-control
NSD=$(command -v nsd || echo /usr/sbin/nsd)
KDIG=$(command -v kdig)
VALGRIND=$(command -v valgrind)

die() { echo "leakcheck: $*" >&2; exit 2; }
[ -x "$UNBOUND" ] || die "no $UNBOUND (scripts/setup)"
[ -f "$MODULE" ] || die "no $MODULE (cmake --build build/cmake --target dnsfilter)"
[ -n "$KDIG" ] || die "kdig not found"
[ -n "$VALGRIND" ] || die "valgrind not found"

WORK=$(mktemp -d /tmp/dnsfilter-leakcheck-XXXXXX)
NSD_PID=
VG_PID=

cleanup() {
    # Only the processes this script started, by their pids.
    for pid in $VG_PID $NSD_PID; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null
        fi
    done
    if [ "$KEEP" = 1 ]; then
        echo "leakcheck: kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 2' INT TERM HUP

read -r NSD_PORT PORT CONTROL_PORT < <(cd "$HERE" &&
	python3 -c 'import harness; print(*(harness.free_port() for _ in range(3)))')

# ---------------------------------------------------------------------------
# Files

cat > "$WORK/$ZONE.zone" <<EOF
\$ORIGIN $ZONE.
\$TTL 300
@ IN SOA ns1.$ZONE. hostmaster.$ZONE. 1 3600 600 86400 300
@ IN NS ns1.$ZONE.
ns1 IN A 127.0.0.1
www IN A 192.0.2.80
a IN A 198.51.100.1
a IN AAAA 2001:db8::a
a IN MX 10 www
b IN A 198.51.100.2
b IN AAAA 2001:db8::b
x.w IN A 198.51.100.3
alias IN CNAME a
EOF

cat > "$WORK/nsd.conf" <<EOF
server:
	ip-address: 127.0.0.1@$NSD_PORT
	do-ip6: no
	server-count: 1
	username: ""
	chroot: ""
	zonesdir: "$WORK"
	database: ""
	zonelistfile: "$WORK/nsd.zonelist"
	xfrdfile: "$WORK/nsd.xfrd.state"
	xfrdir: "$WORK"
	pidfile: "$WORK/nsd.pid"
	logfile: "$WORK/nsd.log"
	verbosity: 1
remote-control:
	control-enable: no
zone:
	name: "$ZONE"
	zonefile: "$ZONE.zone"
EOF

# loopback root hints that may not be queried: nothing leaves this machine
printf '.  3600000 NS a.root.invalid.\na.root.invalid. 3600000 A 127.0.0.254\n' >"$WORK/root.hints"
cat > "$WORK/unbound.conf" <<EOF
server:
	interface: 127.0.0.1
	port: $PORT
	do-ip6: no
	directory: "$WORK"
	chroot: ""
	username: ""
	pidfile: "$WORK/unbound.pid"
	logfile: "$WORK/unbound.log"
	use-syslog: no
	log-time-ascii: yes
	verbosity: 2
	num-threads: 1
	module-config: "dynlib validator iterator"
	root-hints: "$WORK/root.hints"
	do-not-query-address: 127.0.0.254
	do-not-query-localhost: no
	harden-referral-path: no
	local-zone: "test." nodefault
	domain-insecure: "test"
	ede: yes
stub-zone:
	name: "$ZONE"
	stub-addr: 127.0.0.1@$NSD_PORT
remote-control:
	control-enable: yes
	control-interface: 127.0.0.1
	control-port: $CONTROL_PORT
	control-use-cert: no
dynlib:
	dynlib-file: "$MODULE"
EOF

feed() {  # feed SERIAL NAME... (names relative to the zone)
    local serial=$1; shift
    local names= n
    for n in "$@"; do names="$names${names:+, }\"$n.$ZONE\""; done
    cat <<EOF
{"format": "dnsfilter-feed/1", "serial": $serial, "timezone": "+09:00",
 "entries": [
  {"id": "LEAK-$serial", "behavior": "backdoor", "fqdns": [$names],
   "start": "2020-01-01", "end": null, "action": "block"},
  {"id": "LEAK-$serial-W", "behavior": "ddos", "fqdns": ["*.w.$ZONE"],
   "start": "2020-01-01", "action": "block"},
  {"id": "LEAK-$serial-M", "behavior": "info-theft", "fqdns": ["m.$ZONE"],
   "start": "2020-01-01", "action": "monitor"}],
 "allow": ["www.$ZONE"]}
EOF
}

install_file() {  # install_file PATH < content  (write aside, rename)
    cat > "$1.new" && mv -f "$1.new" "$1"
}

feed 1 a | install_file "$WORK/feed.json"
printf '# opted-out customers\n127.0.0.3/32\n127.0.1.0/24 # a block\n' \
    | install_file "$WORK/optout.txt"
cat > "$WORK/dnsfilter.json" <<EOF
{"feed": "feed.json", "sinkhole": {"a": "192.0.2.1", "aaaa": "2001:db8::1"},
 "ttl": 60, "watch-interval": 1,
 "optout": {"networks": ["127.0.0.2/32"], "file": "optout.txt"}}
EOF

# ---------------------------------------------------------------------------
# Helpers

q() {  # q NAME [TYPE] [kdig options...]: print the answer rdata (or rcode)
    local name=$1 type=${2:-A}; shift; [ $# -gt 0 ] && shift
    "$KDIG" @127.0.0.1 -p "$PORT" +time=10 +retry=0 +short "$@" -t "$type" "$name" 2>&1 \
        | tr '\n' ' '
}

ctl() { "$CONTROL" -c "$WORK/unbound.conf" "$@"; }

wait_for() {  # wait_for SECONDS COMMAND...: retry until it succeeds
    local deadline=$(( $(date +%s) + $1 )); shift
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -ge "$deadline" ] && return 1
        kill -0 "$VG_PID" 2>/dev/null || return 1
        sleep 0.5
    done
}

log_count() { grep -c -- "$1" "$WORK/unbound.log" 2>/dev/null || true; }

wait_log() {  # wait_log PATTERN COUNT SECONDS
    local deadline=$(( $(date +%s) + $3 ))
    while [ "$(log_count "$1")" -lt "$2" ]; do
        [ "$(date +%s)" -ge "$deadline" ] && return 1
        sleep 0.5
    done
}

expect() {  # expect WHAT GOT WANTED
    if [ "$2" = "$3" ]; then echo "  ok   $1: $2"
    else echo "  MISMATCH $1: got '$2', wanted '$3'"; MISMATCHES=$((MISMATCHES + 1)); fi
}
MISMATCHES=0

queries() {  # queries LISTED UNLISTED
    local listed=$1 unlisted=$2
    expect "$listed.$ZONE A" "$(q "$listed.$ZONE")" "192.0.2.1 "
    expect "$listed.$ZONE AAAA" "$(q "$listed.$ZONE" AAAA)" "2001:db8::1 "
    q "$listed.$ZONE" MX >/dev/null
    q "$listed.$ZONE" A +tcp +edns >/dev/null
    q "alias.$ZONE" A >/dev/null
    q "x.w.$ZONE" A >/dev/null
    q "m.$ZONE" A >/dev/null
    q "www.$ZONE" A >/dev/null
    expect "$unlisted.$ZONE A" "$(q "$unlisted.$ZONE")" \
        "$( [ "$unlisted" = a ] && echo 198.51.100.1 || echo 198.51.100.2) "
    expect "$listed.$ZONE A from 127.0.0.2" "$(q "$listed.$ZONE" A -b 127.0.0.2)" \
        "$( [ "$listed" = a ] && echo 198.51.100.1 || echo 198.51.100.2) "
    q "$listed.$ZONE" A -b 127.0.1.9 >/dev/null
    q "$listed.$ZONE" A >/dev/null
}

# ---------------------------------------------------------------------------
# Run

echo "leakcheck: work dir $WORK; Unbound $UNBOUND; module $MODULE; $RELOADS reloads"
"$NSD" -d -c "$WORK/nsd.conf" > "$WORK/nsd.out" 2>&1 &
NSD_PID=$!
wait_nsd() { "$KDIG" @127.0.0.1 -p "$NSD_PORT" +time=1 +retry=0 -t SOA "$ZONE" | grep -q NOERROR; }
deadline=$(( $(date +%s) + 15 ))
until wait_nsd; do
    [ "$(date +%s)" -ge "$deadline" ] && die "NSD does not answer: $(tail -5 "$WORK/nsd.log" 2>/dev/null)"
    sleep 0.2
done

START=$(date +%s)
DNSFILTER_CONF="$WORK/dnsfilter.json" "$VALGRIND" --leak-check=full \
    --errors-for-leak-kinds=definite --error-exitcode=99 --keep-debuginfo=yes \
    --num-callers=40 --track-fds=no --log-file="$WORK/valgrind.log" \
    "$UNBOUND" -d -c "$WORK/unbound.conf" > "$WORK/unbound.out" 2>&1 &
VG_PID=$!
answers() { "$KDIG" @127.0.0.1 -p "$PORT" +time=2 +retry=0 -t SOA "$ZONE" | grep -q -- '->>HEADER<<-'; }
wait_for 300 answers || die "Unbound under valgrind does not answer after 300 s:
$(tail -20 "$WORK/unbound.log" "$WORK/unbound.out" "$WORK/valgrind.log" 2>/dev/null)"
echo "leakcheck: Unbound under valgrind answers after $(( $(date +%s) - START )) s"

echo "queries under feed 1 (a listed):"
queries a b

echo "hot refresh: feed 2 (b listed) by rename"
feed 2 b | install_file "$WORK/feed.json"
wait_log "new feed in force: serial 2" 1 120 || echo "  MISMATCH: no 'new feed in force: serial 2'"
queries b a

echo "hot refresh: a rejected feed, then a good one in place"
printf '{"format": "dnsfilter-feed/1", "serial": 3, "entries": [{"id": "X", "fqdns": ["bad name!"], "start": "2020-01-01"}]}\n' \
    | install_file "$WORK/feed.json"
wait_log "the loaded feed stays in force" 1 120 || echo "  MISMATCH: no 'feed stays in force'"
queries b a
feed 4 a > "$WORK/feed.json"
wait_log "new feed in force: serial 4" 1 120 || echo "  MISMATCH: no 'new feed in force: serial 4'"
queries a b

echo "hot refresh of the opt-out file: bad, then good"
printf '127.0.0.3/32\n127.0.0.1/8\n' | install_file "$WORK/optout.txt"
wait_log "the opt-out networks in force stay" 1 120 || echo "  MISMATCH: no 'opt-out networks in force stay'"
printf '127.0.0.3/32\n127.0.0.4/32\n' | install_file "$WORK/optout.txt"
wait_log "new opt-out networks in force" 1 120 || echo "  MISMATCH: no 'new opt-out networks in force'"
expect "a.$ZONE from 127.0.0.4" "$(q "a.$ZONE" A -b 127.0.0.4)" "198.51.100.1 "

serial=10
for i in $(seq 1 "$RELOADS"); do
    if [ $((i % 2)) = 1 ]; then command=reload; else command=reload_keep_cache; fi
    if [ $(( (i / 2) % 2 )) = 0 ]; then listed=b unlisted=a; else listed=a unlisted=b; fi
    serial=$((serial + 1))
    feed "$serial" "$listed" | install_file "$WORK/feed.json"
    loads=$(log_count "(built for")
    ctl "$command" > /dev/null || die "unbound-control $command failed"
    wait_for 300 ctl status || die "status does not answer after $command $i:
$(tail -20 "$WORK/unbound.log")"
    wait_log "(built for" $((loads + 1)) 120 || echo "  MISMATCH: no module load after reload $i"
    echo "reload $i ($command, feed $serial lists $listed):"
    queries "$listed" "$unlisted"
done

echo "leakcheck: unbound-control stop"
ctl stop > /dev/null || echo "leakcheck: unbound-control stop failed"
deadline=$(( $(date +%s) + 600 ))
while kill -0 "$VG_PID" 2>/dev/null; do
    [ "$(date +%s)" -ge "$deadline" ] && die "Unbound under valgrind did not exit 600 s after stop"
    sleep 1
done
wait "$VG_PID"
VG_STATUS=$?
VG_PID=
echo "leakcheck: valgrind exit status $VG_STATUS (99: valgrind found errors or definite leaks" \
     "anywhere, Unbound's own included); run took $(( $(date +%s) - START )) s;" \
     "$MISMATCHES answer mismatches"

# ---------------------------------------------------------------------------
# The report

python3 - "$WORK/valgrind.log" <<'PY'
import re, sys
text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
records, current = [], []
for line in text.splitlines():
    m = re.match(r"==\d+== ?(.*)$", line)
    if not m:
        continue
    body = m.group(1)
    if body.strip() == "":
        if current:
            records.append(current)
        current = []
    else:
        current.append(body)
if current:
    records.append(current)

MODULE = re.compile(r"dnsfilter|\bdnsf_")
ERROR_START = re.compile(
    r"^(Invalid (read|write|free)|Conditional jump|Use of uninitialised|Syscall param|"
    r"Mismatched free|Source and destination overlap|Argument '.*' of function|"
    r"Process terminating|Jump to the invalid|Thread \d+.*|Possible data race)")
LEAK = re.compile(r"^([\d,]+) (?:\(([\d,]+) direct, ([\d,]+) indirect\) )?bytes in ([\d,]+) "
                  r"blocks are (definitely|indirectly|possibly) lost")
module_errors, module_leaks, other_errors, other_leaks = [], [], [], []
for record in records:
    head = record[0]
    stack = "\n".join(record[1:])
    leak = LEAK.match(head)
    if leak:
        if leak.group(5) != "definitely":
            continue
        (module_leaks if MODULE.search(stack) else other_leaks).append(record)
    elif ERROR_START.match(head):
        if head.startswith("Thread "):
            continue
        (module_errors if MODULE.search(stack) else other_errors).append(record)

def nbytes(record):
    return int(LEAK.match(record[0]).group(1).replace(",", ""))

summary = [line for record in records for line in record
           if line.strip().startswith(("ERROR SUMMARY", "definitely lost", "indirectly lost",
                               "possibly lost", "still reachable"))]
print("valgrind summary: " + "; ".join(s.strip() for s in summary))
print("module (stack with dnsfilter): %d errors, %d definite leak records (%d bytes)" % (
    len(module_errors), len(module_leaks), sum(map(nbytes, module_leaks))))
print("Unbound itself (no dnsfilter in the stack, not counted): %d errors, "
      "%d definite leak records (%d bytes)" % (
          len(other_errors), len(other_leaks), sum(map(nbytes, other_leaks))))
for record in module_errors + module_leaks:
    print("---- module report ----")
    print("\n".join(record))
for record in other_errors + other_leaks:
    print("---- Unbound's own (first lines) ----")
    print("\n".join(record[:8]))
sys.exit(1 if module_errors or module_leaks else 0)
PY
REPORT=$?
if [ "$REPORT" = 0 ] && [ "$MISMATCHES" = 0 ]; then
    echo "leakcheck: PASS - no valgrind error or definite leak in the module"
    exit 0
fi
[ "$REPORT" != 0 ] && echo "leakcheck: FAIL - the module has valgrind errors or definite leaks (above)"
[ "$MISMATCHES" != 0 ] && echo "leakcheck: $MISMATCHES wrong answers (above)"
exit 1
