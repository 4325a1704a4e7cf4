#!/bin/sh
# importanced under the shipped unit's capability settings, read from
# daemon/systemd/importanced.service: CapabilityBoundingSet (setpriv
# --bounding-set, the inheritable and ambient sets cleared), NoNewPrivileges
# (setpriv --no-new-privs), User= (none: root), and in a mount namespace
# of its own (unshare -m): PrivateTmp=yes (a tmpfs on /tmp and /var/tmp),
# ProtectHome=yes (/home, /root and /run/user: an empty read-only tmpfs),
# ProtectSystem=strict (every mount but /dev, /proc and /sys read-only)
# with ReadWritePaths (bind mounts kept writable; the scratch folder stands
# for RuntimeDirectory= and the socket systemd would make).  A non-root
# client (impattack, the attack tests' second uid) must be able to connect
# and say HELLO: the daemon tells whether a client lives by its pidfd,
# which needs no CAP_KILL.  Not reproduced: Delegate (no systemd here).
# Usage: test-unit-sandbox.sh IMPORTANCED IMPCTL UNIT
set -u
daemon=${1:?usage: test-unit-sandbox.sh IMPORTANCED IMPCTL UNIT}
impctl=${2:?}
unit=${3:?}
[ "$(id -u)" = 0 ] || { echo "FAIL: needs root (a second uid and setpriv)"; exit 1; }
# not in /tmp: PrivateTmp hides it from the daemon
tmp=$(mktemp -d /run/imp-unit-sandbox.XXXXXX)
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

# the mounts, as a script run in the daemon's mount namespace
ns=""
if [ "$(setting PrivateTmp)" = yes ]; then
	ns="$ns mount -t tmpfs tmpfs /tmp && mount -t tmpfs tmpfs /var/tmp &&"
fi
if [ "$(setting ProtectHome)" = yes ]; then
	for d in /home /root /run/user; do
		[ -d "$d" ] && ns="$ns mount -t tmpfs -o ro,mode=0755 tmpfs $d &&"
	done
fi
rw="$(setting ReadWritePaths) $tmp"
for d in $rw; do
	[ -d "$d" ] && ns="$ns mount --rbind $d $d &&"
done
case $(setting ProtectSystem) in
strict)
	# every mount but the API file systems, read-only (the binds above too
	# would be: they are made writable again after)
	for m in $(awk '$6 !~ /^ro(,|$)/ {print $5}' /proc/self/mountinfo | sort -u); do
		case $m in /dev|/dev/*|/proc|/proc/*|/sys|/sys/*) continue ;; esac
		ns="$ns mount -o bind,remount,ro $m &&"
	done
	for d in $rw; do
		case $d in /dev/*|/proc/*|/sys/*) continue ;; esac
		[ -d "$d" ] && ns="$ns mount -o bind,remount,rw $d &&"
	done
	;;
"") ;;
*) fail "ProtectSystem=$(setting ProtectSystem): not reproduced by this test" ;;
esac
echo "unit: mounts in the daemon's namespace:$ns"

id impattack >/dev/null 2>&1 || useradd -M -s /usr/sbin/nologin impattack >/dev/null 2>&1 || fail "useradd impattack"
mkdir -m 0700 "$tmp/state"
# the binary as the unit finds it, outside what the sandbox hides (a build
# tree may be under /tmp or /home; the installed one is in /usr/sbin)
mkdir -m 0755 "$tmp/sbin" && cp "$daemon" "$tmp/sbin/importanced" || fail "copy $daemon"
daemon=$tmp/sbin/importanced
# The backend and sources the daemon picks on this machine with no sandbox:
# the sandboxed one must pick the same (and load its BPF programs).
args="--no-config --socket $tmp/sock --state-dir $tmp/state --unix yes --unix-receiver-uid nobody"
# shellcheck disable=SC2086
"$daemon" $args >"$tmp/log" 2>&1 &
pid=$!
wait_socket "$tmp/sock"
free=$(sed -n 's/^importanced: backend \([^ ]*\) (asked: auto).*/\1/p' "$tmp/log")
kill "$pid"; wait "$pid"; pid=""
[ -n "$free" ] || fail "no backend named by the unsandboxed daemon"
echo "unsandboxed: backend $free"
# shellcheck disable=SC2086
unshare -m --propagation private sh -c "$ns exec \"\$0\" \"\$@\"" \
	setpriv --bounding-set="$bounding" --inh-caps=-all $nnp \
	"$daemon" $args >"$tmp/log" 2>&1 &
pid=$!
wait_socket "$tmp/sock"
boxed=$(sed -n 's/^importanced: backend \([^ ]*\) (asked: auto).*/\1/p' "$tmp/log")
[ "$boxed" = "$free" ] || fail "under the unit's sandbox the backend is '$boxed', unsandboxed '$free'"
grep -q "cannot load the BPF programs" "$tmp/log" && fail "under the unit's sandbox the Unix-socket source cannot load"
echo "under the unit's sandbox: backend $boxed, the Unix-socket source loaded"
grep -q "^CapBnd:" /proc/$pid/status || fail "no CapBnd for the daemon"
echo "daemon's $(grep '^CapBnd:' /proc/$pid/status)"
# the daemon (setpriv's exec, the same pid) sees the sandbox
dpid=$pid
ls "/proc/$dpid/root/home" >/dev/null 2>&1 && [ -n "$(ls -A /proc/$dpid/root/home 2>/dev/null)" ] &&
	fail "ProtectHome: the daemon sees /home's contents"
touch "/proc/$dpid/root/usr/imp-sandbox-probe" 2>/dev/null && { rm -f /usr/imp-sandbox-probe; fail "ProtectSystem: /usr writable"; }
echo "daemon's mount namespace: /usr read-only, /home empty"
out=$(setpriv --reuid=impattack --regid=impattack --clear-groups "$impctl" --socket "$tmp/sock" status 2>&1) ||
	fail "a non-root client's HELLO under the unit's bounding set: $out"
echo "non-root client (impattack): impctl status answered"
kill "$pid"
wait "$pid"
pid=""
