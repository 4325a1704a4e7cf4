#!/bin/sh
# importanced under the shipped unit's capability settings, read from
# daemon/systemd/importanced.service: CapabilityBoundingSet (setpriv
# --bounding-set, the inheritable and ambient sets cleared), NoNewPrivileges
# (setpriv --no-new-privs) and User= (none: root).  A non-root client
# (impattack, the attack tests' second uid) must be able to connect and
# say HELLO: the daemon tells whether a client lives by its pidfd, which
# needs no CAP_KILL.  Not reproduced here yet: ProtectSystem, ProtectHome,
# PrivateTmp, ReadWritePaths (mount namespaces), Delegate.
# Usage: test-unit-sandbox.sh IMPORTANCED IMPCTL UNIT
set -u
daemon=${1:?usage: test-unit-sandbox.sh IMPORTANCED IMPCTL UNIT}
impctl=${2:?}
unit=${3:?}
[ "$(id -u)" = 0 ] || { echo "FAIL: needs root (a second uid and setpriv)"; exit 1; }
tmp=$(mktemp -d /tmp/imp-unit-sandbox.XXXXXX)
chmod 0755 "$tmp"
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
. "$(dirname "$0")/daemon-lib.sh"

# the unit's settings, as systemd reads them (the last assignment wins)
setting() { sed -n "s/^$1=//p" "$unit" | tail -n 1; }
caps=$(setting CapabilityBoundingSet)
[ -n "$caps" ] || fail "$unit has no CapabilityBoundingSet"
bounding=-all
for c in $caps; do
	bounding="$bounding,+$(echo "${c#CAP_}" | tr 'A-Z' 'a-z')"
done
nnp=""
[ "$(setting NoNewPrivileges)" = yes ] && nnp=--no-new-privs
user=$(setting User)
[ -z "$user" ] || fail "User=$user: this test runs the daemon as root only"
echo "unit: CapabilityBoundingSet=$caps -> setpriv --bounding-set=$bounding --inh-caps=-all $nnp"

id impattack >/dev/null 2>&1 || useradd -M -s /usr/sbin/nologin impattack >/dev/null 2>&1 || fail "useradd impattack"
mkdir -m 0700 "$tmp/state"
# shellcheck disable=SC2086
setpriv --bounding-set="$bounding" --inh-caps=-all $nnp \
	"$daemon" --no-config --backend nice --socket "$tmp/sock" --state-dir "$tmp/state" >"$tmp/log" 2>&1 &
pid=$!
wait_socket "$tmp/sock"
grep -q "^CapBnd:" /proc/$pid/status || fail "no CapBnd for the daemon"
echo "daemon's $(grep '^CapBnd:' /proc/$pid/status)"
out=$(setpriv --reuid=impattack --regid=impattack --clear-groups "$impctl" --socket "$tmp/sock" status 2>&1) ||
	fail "a non-root client's HELLO under the unit's bounding set: $out"
echo "non-root client (impattack): impctl status answered"
kill "$pid"
wait "$pid"
pid=""
