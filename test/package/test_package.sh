#!/usr/bin/env bash
# test/package/test_package.sh: the Debian packages of scripts/package, as an
# operator gets them. Builds them when absent (scripts/package, cached),
# installs the Debian 12 pair (unbound with dynlib, unbound-dnsfilter) with
# dpkg -i, starts the packaged /usr/sbin/unbound with the packaged module and
# the packaged example configuration on 127.0.0.1 (a free port, a work folder
# of its own, root hints pinned to 127.0.0.1, which Unbound never queries, so
# nothing leaves the machine), asks for a listed name and expects the
# sinkhole, then purges both packages.
#
# It changes the machine's packages only for its run, and leaves alone:
#   - an unbound or unbound-dnsfilter package installed before it (it skips);
#   - the Unbound builds in build/unbound-*/ (other paths);
#   - services: no unbound service is started (policy-rc.d says no, as in a
#     container; one is put in place for the run when there is none).
# Run by ctest as package_debian (label "package"); exit 77 = skipped.
#
# Environment:
#   DNSFILTER_BUILD            build folder (default <repo>/build)
#   DNSFILTER_PACKAGE_VERSION  the Unbound version of the pair (default: the
#                              Debian 12 one of scripts/unbound-versions)
#   DNSFILTER_PACKAGE_BUILD    0: do not run scripts/package; skip when the
#                              packages are absent
set -euo pipefail
shopt -s inherit_errexit

repo=$(cd "$(dirname "$0")/../.." && pwd)
build=${DNSFILTER_BUILD:-$repo/build}
version=${DNSFILTER_PACKAGE_VERSION:-$(awk '$1 !~ /^#/ && $2 == "apt" { print $1; exit }' "$repo/scripts/unbound-versions")}
out=$build/package/$version
listed=c2.dnsfilter-package-test.net
started=$SECONDS

say() { printf 'package test: %s\n' "$*"; }
fail() { printf 'package test: FAIL: %s\n' "$*" >&2; exit 1; }
skip() { printf 'package test: SKIPPED: %s\n' "$*"; exit 77; }

[ "$(id -u)" = 0 ] || skip "needs root (dpkg -i)"
. /etc/os-release
[ "${VERSION_CODENAME:-}" = bookworm ] ||
	skip "the $version pair is built from Debian 12's source and installed on Debian 12; this is ${PRETTY_NAME:-not Debian 12}"

# ---- the packages -----------------------------------------------------------------
if [ "${DNSFILTER_PACKAGE_BUILD:-1}" != 0 ]; then
	say "scripts/package $version (builds only what changed)"
	"$repo/scripts/package" "$version" || fail "scripts/package $version failed"
fi
unbound_deb=$(ls "$out"/unbound_*.deb 2>/dev/null | head -n 1 || true)
module_deb=$(ls "$out"/unbound-dnsfilter_*.deb 2>/dev/null | head -n 1 || true)
[ -n "$unbound_deb" ] && [ -n "$module_deb" ] ||
	skip "no packages in $out (dpkg-buildpackage's output): run scripts/package $version"
unbound_version=$(dpkg-deb -f "$unbound_deb" Version)
depends=$(dpkg-deb -f "$module_deb" Depends)
case ", $depends," in
*", unbound (= $unbound_version),"*) ;;
*) fail "$(basename "$module_deb") does not depend on unbound (= $unbound_version): Depends: $depends" ;;
esac

# One run at a time on this machine (the packages are system-wide).
exec 9>/run/lock/dnsfilter-package-test.lock
flock -w 3600 9 || fail "another package test holds /run/lock/dnsfilter-package-test.lock"

installed() { [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == *" installed" ]]; }

# Run a dpkg or apt-get command ($2...) with its output in $1; while another
# one holds dpkg's lock (an apt-get build-dep of scripts/package, say), wait
# and try again, up to 10 minutes.
dpkg_run() {
	local log=$1 i
	shift
	for i in $(seq 120); do
		"$@" >"$log" 2>&1 && return 0
		grep -qE 'dpkg frontend lock|Could not get lock|dpkg status database is locked' "$log" || return 1
		sleep 5
	done
	return 1
}
for p in unbound unbound-dnsfilter; do
	if installed "$p"; then
		skip "the $p package ($(dpkg-query -W -f='${Version}' "$p")) is installed on this machine; this test installs and purges its own, so it leaves that one alone"
	fi
done

work= unbound_pid= policy_made=0 dpkg_touched=0
cleanup() {
	local rc=$?
	set +e
	if [ -n "$unbound_pid" ] && kill -0 "$unbound_pid" 2>/dev/null; then
		kill -TERM "$unbound_pid"
		for _ in $(seq 50); do kill -0 "$unbound_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$unbound_pid" 2>/dev/null
		wait "$unbound_pid" 2>/dev/null
	fi
	if [ $rc != 0 ] && [ -n "$work" ] && [ -f "$work/unbound.log" ]; then
		printf -- '--- %s ---\n' "$work/unbound.log" >&2
		tail -n 30 "$work/unbound.log" >&2
	fi
	[ -z "$work" ] || rm -rf "$work"
	if [ $dpkg_touched = 1 ]; then
		dpkg_run "$build/package-test-purge.log" dpkg --purge unbound-dnsfilter unbound ||
			{ cat "$build/package-test-purge.log" >&2; rc=1; }
	fi
	[ $policy_made = 0 ] || rm -f /usr/sbin/policy-rc.d
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# No service start from the packages' scripts (invoke-rc.d, deb-systemd-invoke).
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\n# put here by test/package/test_package.sh for its run\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	policy_made=1
fi

# ---- install ------------------------------------------------------------------------
# Their dependencies first (Debian 12's unbound needs lsb-base, say), but for
# the pair itself: apt-get satisfy installs only what is missing.
deps=$(dpkg-deb -f "$unbound_deb" Depends)
deps="$deps, $(dpkg-deb -f "$module_deb" Depends | sed 's/unbound (= [^)]*),\? *//')"
if ! DEBIAN_FRONTEND=noninteractive dpkg_run "$build/package-test-deps.log" \
	apt-get satisfy -y -qq --no-install-recommends "$deps"; then
	cat "$build/package-test-deps.log" >&2
	fail "cannot install the packages' dependencies: $deps"
fi
say "dpkg -i $(basename "$unbound_deb") $(basename "$module_deb")"
dpkg_touched=1
if ! dpkg_run "$build/package-test-install.log" dpkg -i "$unbound_deb" "$module_deb"; then
	cat "$build/package-test-install.log" >&2
	fail "dpkg -i failed (missing dependencies are listed above; scripts/setup installs them)"
fi
for p in unbound unbound-dnsfilter; do
	installed "$p" || fail "$p is not installed after dpkg -i"
done
unbound_v=$(/usr/sbin/unbound -V)
grep -q '^Linked modules:.* dynlib' <<<"$unbound_v" || fail "the packaged unbound has no dynlib module: $unbound_v"
examples=/usr/share/doc/unbound-dnsfilter/examples
for f in /usr/lib/unbound/dnsfilter.so /usr/bin/dnsfilter-check /usr/bin/dnsfilter-refresh \
	/usr/bin/dnsfilter-report /lib/systemd/system/dnsfilter-refresh.timer \
	"$examples/unbound.conf.example" "$examples/dnsfilter.json.example"; do
	[ -e "$f" ] || fail "$f is not installed"
done
/usr/bin/dnsfilter-refresh --help >/dev/null || fail "dnsfilter-refresh --help"
/usr/bin/dnsfilter-report --help >/dev/null || fail "dnsfilter-report --help"

# ---- the example configuration, on loopback --------------------------------------------
# Below /var/lib/unbound: where Debian's AppArmor profile for unbound lets it
# read and write (where AppArmor is on).
work=$(mktemp -d /var/lib/unbound/dnsfilter-package-test.XXXXXX)
port=$(python3 -c '
import socket
while True:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        t.bind(("127.0.0.1", u.getsockname()[1])); print(u.getsockname()[1]); break
    except OSError:
        pass
    finally:
        u.close(); t.close()
')
grep -q 'dynlib-file: "/usr/lib/unbound/dnsfilter.so"' "$examples/unbound.conf.example" ||
	fail "the packaged unbound.conf.example does not load /usr/lib/unbound/dnsfilter.so"
# The example, with what ties it to a production machine replaced: addresses,
# folders, user, trust anchor, remote control; and pinned root hints.
sed -e 's|^\(\s*interface:\).*0\.0\.0\.0|\1 127.0.0.1|' -e '/^\s*interface: ::0/d' \
	-e "s|^\(\s*directory:\).*|\1 \"$work\"|" -e 's|^\(\s*username:\).*|\1 ""|' \
	-e 's|^\(\s*auto-trust-anchor-file:\)|#\1|' -e 's|^\(\s*control-enable:\).*|\1 no|' \
	-e 's|^\(\s*verbosity:\).*|\1 2|' \
	-e "s|^server:|server:\n\tport: $port\n\tdo-ip6: no\n\tpidfile: \"$work/unbound.pid\"\n\tlogfile: \"$work/unbound.log\"\n\tuse-syslog: no\n\troot-hints: \"$work/root.hints\"|" \
	"$examples/unbound.conf.example" >"$work/unbound.conf"
printf '.\t3600000\tNS\tloopback.root.\nloopback.root.\t3600000\tA\t127.0.0.1\n' >"$work/root.hints"
cat >"$work/feed.json" <<EOF
{"format": "dnsfilter-feed/1", "serial": 1,
 "entries": [{"id": "PKG-TEST-0001", "behavior": "backdoor", "fqdns": ["$listed"], "start": "2020-01-01"}]}
EOF
: >"$work/optout.txt"
python3 - "$examples/dnsfilter.json.example" "$work" >"$work/dnsfilter.json" <<'PY'
import json, sys
settings = json.load(open(sys.argv[1]))
work = sys.argv[2]
settings["state-dir"] = work
settings["log"]["path"] = work + "/events.jsonl"
settings["stats"]["path"] = work + "/stats.jsonl"
settings["metrics"]["path"] = work + "/dnsfilter.prom"
json.dump(settings, sys.stdout, indent=2)
PY
/usr/bin/dnsfilter-check --config "$work/dnsfilter.json" >/dev/null || fail "dnsfilter-check rejects the test's settings"
/usr/sbin/unbound-checkconf "$work/unbound.conf" >"$work/checkconf.log" 2>&1 ||
	{ cat "$work/checkconf.log" >&2; fail "unbound-checkconf rejects $work/unbound.conf"; }

# ---- run ---------------------------------------------------------------------------
say "starting /usr/sbin/unbound with /usr/lib/unbound/dnsfilter.so on 127.0.0.1:$port"
/usr/sbin/unbound -d -c "$work/unbound.conf" >"$work/unbound.stderr" 2>&1 &
unbound_pid=$!
answer=
for _ in $(seq 100); do
	kill -0 "$unbound_pid" 2>/dev/null ||
		{ cat "$work/unbound.stderr" >&2; fail "the packaged unbound exited at start"; }
	answer=$(kdig @127.0.0.1 -p "$port" +time=1 +retry=0 "$listed" A 2>/dev/null || true)
	case $answer in *'status: '*) break ;; esac
	sleep 0.2
done
grep -q 'status: NOERROR' <<<"$answer" || fail "no NOERROR answer for $listed A: $answer"
grep -qE "^$listed\.\s+[0-9]+\s+IN\s+A\s+0\.0\.0\.0$" <<<"$answer" ||
	fail "no sinkhole (0.0.0.0) for $listed A: $answer"
grep -q "dnsfilter: block $listed\. A PKG-TEST-0001" "$work/unbound.log" ||
	fail "the module did not log the block in $work/unbound.log"
say "sinkhole answer from the packaged unbound and module: $listed A 0.0.0.0"
# Nothing else resolves: the root hints point at loopback, which is never queried.
other=$(kdig @127.0.0.1 -p "$port" +time=5 +retry=0 www.dnsfilter-package-test.net A 2>/dev/null || true)
grep -q 'status: SERVFAIL' <<<"$other" || fail "a name not listed did not fail offline: $other"

kill -TERM "$unbound_pid"
wait "$unbound_pid" 2>/dev/null || true
unbound_pid=

# ---- remove -------------------------------------------------------------------------
rm -rf "$work"
work=
dpkg_run "$build/package-test-purge.log" dpkg --purge unbound-dnsfilter unbound ||
	{ cat "$build/package-test-purge.log" >&2; fail "dpkg --purge failed"; }
dpkg_touched=0
for p in unbound unbound-dnsfilter; do
	! installed "$p" || fail "$p is still installed after dpkg --purge"
done
[ ! -e /usr/lib/unbound/dnsfilter.so ] || fail "/usr/lib/unbound/dnsfilter.so left after purge"
say "passed in $((SECONDS - started)) s (installed, answered, purged)"
