#!/bin/sh
# importanced as the shipped unit runs it, its settings read from
# daemon/systemd/importanced.service: ExecStart's arguments (the config
# file: the shipped importanced.conf with this test's keys after it),
# CapabilityBoundingSet (setpriv --bounding-set, the inheritable and
# ambient sets cleared), NoNewPrivileges (setpriv --no-new-privs), User=
# (none: root), and in a mount namespace of its own (unshare -m):
# PrivateTmp=yes (a tmpfs on /tmp and /var/tmp), ProtectHome=yes (/home,
# /root and /run/user: an empty read-only tmpfs), ProtectSystem=strict
# (every mount but /dev, /proc and /sys read-only) with ReadWritePaths
# (bind mounts kept writable; the scratch folder stands for
# RuntimeDirectory= and the socket systemd would make).  Not reproduced:
# Delegate and socket activation (no systemd here).
#
# Under that sandbox, with real processes of two uids that are not root
# (a donor, impboxdonor, named by a donor-uid rule; receivers as
# impboxsvc at nice 10):
#   - the backend is the one the daemon picks unsandboxed, and the
#     Unix-socket source's BPF programs load;
#   - a non-root client's HELLO is answered;
#   - importanced's IPC: the donor's message boosts the receiver while it
#     is queued and while its voucher is held, and the receiver is
#     scheduled as before once the work is done;
#   - the Unix-socket source: redis-cli's request boosts redis-server;
#   - the donor's exit drops its boosts within EXIT_MS, over IPC (also
#     as an unreaped zombie with its connection still open in a child:
#     only its pidfd tells) and over the socket source.  The daemon has no CAP_KILL here: a
#     liveness check by signal 0 (kill, pidfd_send_signal) gets EPERM for
#     another uid's process; taken as "gone", every non-root HELLO is
#     refused (-ESRCH) and this test fails at the receiver's connect (tried
#     with such a build).  The daemon polls the pidfd, which needs no
#     permission over the process;
#   - D-Bus: importanced watches a private dbus-daemon running Debian's
#     stock system.conf (only its address changed, plus the service's
#     own policy file as a package would install it); busctl's call to a
#     python3-dbus service boosts the service until the reply.
# Usage: test-unit-sandbox.sh IMPORTANCED IMPCTL UNIT UNIT-PEER
set -u
daemon=${1:?usage: test-unit-sandbox.sh IMPORTANCED IMPCTL UNIT UNIT-PEER}
impctl=${2:?}
unit=${3:?}
peer=${4:?}
[ "$(id -u)" = 0 ] || { echo "FAIL: needs root (second uids and setpriv)"; exit 1; }
# how long a donor's exit may take to drop its boosts (a loaded machine:
# generous; the daemon sees it at its next event, in ms)
EXIT_MS=1000
# not in /tmp: PrivateTmp hides it from the daemon
tmp=$(mktemp -d /run/imp-unit-sandbox.XXXXXX)
chmod 0755 "$tmp"
pid=""
kids=""
cleanup() {
	exec 5>&- 6>&- 2>/dev/null
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	for k in $kids; do kill -9 "$k" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
. "$(dirname "$0")/daemon-lib.sh"

# the unit's settings, as systemd reads them (the last assignment wins)
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
# ExecStart: its arguments, the config file replaced by the test's
exec_start=$(setting ExecStart)
shipped_conf=${exec_start#* --config }
[ "$exec_start" = "${exec_start%% *} --config $shipped_conf" ] ||
	fail "ExecStart=$exec_start: this test knows only 'BINARY --config FILE'"
conf_src=$(dirname "$unit")/$(basename "$shipped_conf")
[ -f "$conf_src" ] || fail "no $conf_src (the shipped $shipped_conf)"

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

# the second uids: impattack (a plain client), impboxdonor (the donor rule's),
# impboxsvc (the receivers'); no other test's processes are of the last two
for u in impattack impboxdonor impboxsvc; do
	id "$u" >/dev/null 2>&1 || useradd -M -s /usr/sbin/nologin "$u" >/dev/null 2>&1 || fail "useradd $u"
done

# a private system bus: Debian's stock system.conf, at the test's address,
# and the test service's policy (what its package would put in system.d)
mkdir -m 0755 "$tmp/bus"
cat >"$tmp/bus/service.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <policy user="impboxsvc"><allow own="org.importance.UnitSandbox"/></policy>
  <policy context="default"><allow send_destination="org.importance.UnitSandbox"/></policy>
</busconfig>
EOF
cat >"$tmp/bus/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><include>/usr/share/dbus-1/system.conf</include><include>$tmp/bus/service.conf</include></busconfig>
EOF
bus="unix:path=$tmp/bus/system_bus_socket"
dbus-daemon --config-file="$tmp/bus/bus.conf" --nofork --nopidfile --address="$bus" 2>"$tmp/bus/log" &
kids="$kids $!"
i=0
while [ ! -S "$tmp/bus/system_bus_socket" ]; do
	i=$((i + 1)); [ $i -gt 200 ] && { cat "$tmp/bus/log"; fail "dbus-daemon did not start"; }
	sleep 0.1
done

# the config: the shipped one, then this test's keys (a later line wins)
mkdir -m 0700 "$tmp/state"
{
	cat "$conf_src"
	echo "socket $tmp/sock"
	echo "state-dir $tmp/state"
	echo "donor-uid impboxdonor"
	echo "unix yes"
	echo "unix-receiver-path $tmp/redis/*.sock"
	echo "dbus $bus"
	echo "verbose yes"
} >"$tmp/importanced.conf"
# the binary as the unit finds it, outside what the sandbox hides (a build
# tree may be under /tmp or /home; the installed one is in /usr/sbin)
mkdir -m 0755 "$tmp/sbin" && cp "$daemon" "$tmp/sbin/importanced" || fail "copy $daemon"
cp "$peer" "$tmp/sbin/unit-peer" || fail "copy $peer"
daemon=$tmp/sbin/importanced
peer=$tmp/sbin/unit-peer

# The backend and sources the daemon picks on this machine with no sandbox:
# the sandboxed one must pick the same (and load its BPF programs).
"$daemon" --config "$tmp/importanced.conf" >"$tmp/log" 2>&1 &
pid=$!
wait_socket "$tmp/sock"
free=$(sed -n 's/^importanced: backend \([^ ]*\) (asked: auto).*/\1/p' "$tmp/log")
kill "$pid"; wait "$pid"; pid=""
[ -n "$free" ] || fail "no backend named by the unsandboxed daemon"
echo "unsandboxed: backend $free"
rm -f "$tmp/sock"
# shellcheck disable=SC2086
unshare -m --propagation private sh -c "$ns exec \"\$0\" \"\$@\"" \
	setpriv --bounding-set="$bounding" --inh-caps=-all $nnp \
	"$daemon" --config "$tmp/importanced.conf" >"$tmp/log" 2>&1 &
pid=$!
wait_socket "$tmp/sock"
boxed=$(sed -n 's/^importanced: backend \([^ ]*\) (asked: auto).*/\1/p' "$tmp/log")
[ "$boxed" = "$free" ] || fail "under the unit's sandbox the backend is '$boxed', unsandboxed '$free'"
grep -q "cannot load the BPF programs" "$tmp/log" && fail "under the unit's sandbox the Unix-socket source cannot load"
grep -q "forks during a boost are not followed" "$tmp/log" && fail "under the unit's sandbox the fork tracker cannot load"
echo "under the unit's sandbox: backend $boxed, the Unix-socket source and the fork tracker loaded"
grep -q "^CapBnd:" /proc/$pid/status || fail "no CapBnd for the daemon"
echo "daemon's $(grep '^CapBnd:' /proc/$pid/status)"
# the daemon (setpriv's exec, the same pid) sees the sandbox
dpid=$pid
ls "/proc/$dpid/root/home" >/dev/null 2>&1 && [ -n "$(ls -A /proc/$dpid/root/home 2>/dev/null)" ] &&
	fail "ProtectHome: the daemon sees /home's contents"
touch "/proc/$dpid/root/usr/imp-sandbox-probe" 2>/dev/null && { rm -f /usr/imp-sandbox-probe; fail "ProtectSystem: /usr writable"; }
echo "daemon's mount namespace: /usr read-only, /home empty"
out=$(as impattack "$impctl" --socket "$tmp/sock" status 2>&1) ||
	fail "a non-root client's HELLO under the unit's bounding set: $out"
echo "non-root client (impattack): impctl status answered"

# ---- what the kernel says about a process ----
# a config key's value, the last line's (or $2 when none says it)
key() { v=$(sed -n "s/^$1 //p" "$tmp/importanced.conf" | tail -n 1); echo "${v:-$2}"; }
# its cpu cgroup (v1: the cpu hierarchy's line; v2: the unified one)
cpu_cgroup() {
	case $boxed in
	cgroup-v2) sed -n 's/^0:://p' "/proc/$1/cgroup" ;;
	*) sed -n 's/^[0-9]*:\([^:]*,\)\{0,1\}cpu\(,[^:]*\)\{0,1\}://p' "/proc/$1/cgroup" ;;
	esac
}
# how pid $1 is scheduled: its nice, its autogroup's nice, its cpu cgroup
# and that cgroup's weight
sched_of() {
	g=$(cpu_cgroup "$1")
	case $boxed in
	cgroup-v2) w=$(cat "/sys/fs/cgroup/unified$g/cpu.weight" 2>/dev/null || cat "/sys/fs/cgroup$g/cpu.weight") ;;
	*) w=$(cat "/sys/fs/cgroup/cpu$g/cpu.shares") ;;
	esac
	a=$(cat "/proc/$1/autogroup")
	echo "nice $(nice_of "$1"), ${a#* }, cpu cgroup $g (weight $w)"
}
# whether pid $1 has the boost the backend gives (docs/backends.md): the
# leaf's weight (cgroup-v1/v2), the autogroup's nice, or the nice value
is_boosted() {
	case $boxed in
	cgroup-v1) [ "$(cat "/sys/fs/cgroup/cpu$(cpu_cgroup "$1")/cpu.shares")" = "$(key boost-shares 10240)" ] ;;
	cgroup-v2) sched_of "$1" | grep -q "(weight $(key boost-weight 1000))\$" ;;
	autogroup) grep -q " nice $(key autogroup-nice -10)\$" "/proc/$1/autogroup" ;;
	*) [ "$(nice_of "$1")" = "$(key boost-nice -10)" ] ;;
	esac
}
# unboosted: no boost, and its own nice (10) and its autogroup's as before
is_unboosted() { ! is_boosted "$1" && [ "$(nice_of "$1")" = 10 ] && [ "$(cat "/proc/$1/autogroup")" = "$2" ]; }
# holds while pid $1 stays boosted (yes) or not (no) for $3 ms
stays() {
	t0=$(now_ms)
	while [ $(($(now_ms) - t0)) -lt "$3" ]; do
		if is_boosted "$1"; then [ "$2" = yes ] || return 1; else [ "$2" = no ] || return 1; fi
		sleep 0.02
	done
}

# ---- unit-peer processes, driven through fifos ----
# peer_start NAME FD UID NICE ARGS...: its commands on fd FD, its answers
# in $tmp/NAME.out (the first: D or R); its pid in $NAME_pid
unreaped=no rx_pid="" tx_pid=""
peer_start() {
	n=$1 fd=$2 u=$3 ni=$4
	shift 4
	rm -f "$tmp/$n.in" "$tmp/$n.out"
	mkfifo "$tmp/$n.in"
	: >"$tmp/$n.out"
	if [ "$unreaped" = yes ]; then
		# its parent a sleep that never reaps it: once it exits it stays a
		# zombie until the sleep, $NAME_pid, is killed
		as "$u" sh -c 'exec 3<&0; "$0" "$@" <&3 3<&- & exec sleep 60 3<&-' nice -n "$ni" "$peer" "$tmp/sock" "$@" \
			<"$tmp/$n.in" >"$tmp/$n.out" 2>&1 &
	else
		as "$u" nice -n "$ni" "$peer" "$tmp/sock" "$@" <"$tmp/$n.in" >"$tmp/$n.out" 2>&1 &
	fi
	eval "${n}_pid=$!"
	kids="$kids $!"
	eval "exec $fd>\"$tmp/$n.in\""
}
# peer_answer NAME N: the Nth line NAME wrote (waits up to 10 s)
peer_answer() {
	i=0
	while [ "$(wc -l <"$tmp/$1.out")" -lt "$2" ]; do
		i=$((i + 1)); [ $i -gt 1000 ] && fail "$1 did not answer (line $2): $(cat "$tmp/$1.out")"
		sleep 0.01
	done
	sed -n "$2p" "$tmp/$1.out"
}
# order NAME FD OP: the command done ("K", what follows it in $said)
order() {
	lines=$(wc -l <"$tmp/$1.out")
	printf %s "$3" >&"$2"
	got=$(peer_answer "$1" $((lines + 1)))
	case $got in K) said="" ;; "K "*) said=${got#K } ;; *) fail "$1: '$3' answered '$got'" ;; esac
}

# ---- importanced's IPC: a donor of one uid, a receiver of another ----
peer_start rx 5 impboxsvc 10 receive impboxsvc.work
[ "$(peer_answer rx 1)" = R ] || fail "receiver: $(cat "$tmp/rx.out")"
peer_start tx 6 impboxdonor 0 send impboxsvc.work
[ "$(peer_answer tx 1)" = D ] ||
	fail "under the unit's bounding set the donor (uid impboxdonor) is not believed a donor: $(cat "$tmp/tx.out")"
[ "$(nice_of "$rx_pid")" = 10 ] || fail "receiver not at nice 10"
auto=$(cat "/proc/$rx_pid/autogroup")
echo "IPC: receiver (impboxsvc) before: $(sched_of "$rx_pid")"
is_boosted "$rx_pid" && fail "IPC: the receiver is boosted before any message"
order tx 6 s
ms=$(within 5000 is_boosted "$rx_pid") || fail "IPC: the queued message did not boost the receiver: $(sched_of "$rx_pid")"
echo "IPC: impboxdonor's queued message boosted it in $ms ms: $(sched_of "$rx_pid")"
order rx 5 v
stays "$rx_pid" yes 300 || fail "IPC: the receiver lost its boost while holding the voucher"
order rx 5 x
ms=$(within 3000 is_unboosted "$rx_pid" "$auto") || fail "IPC: the receiver is still boosted after its work: $(sched_of "$rx_pid")"
echo "IPC: the work done (voucher released), unboosted in $ms ms: $(sched_of "$rx_pid")"

# the donor's exit while its message is queued: the boost goes
order tx 6 s
within 5000 is_boosted "$rx_pid" >/dev/null || fail "IPC: the second message did not boost the receiver"
t0=$(now_ms)
printf k >&6
within $EXIT_MS is_unboosted "$rx_pid" "$auto" >/dev/null ||
	fail "IPC: the donor exited and the receiver is still boosted after $EXIT_MS ms: $(sched_of "$rx_pid")"
echo "IPC: the donor's exit (its message still queued) dropped the boost in $(($(now_ms) - t0)) ms"
exec 6>&-
wait "$tx_pid" 2>/dev/null
# The same with the donor's connection kept open by its child, and the
# donor left unreaped: no end of file, and the exited donor is a zombie,
# which signal 0 still finds (without CAP_KILL: EPERM, "it exists").  Only
# its pidfd, readable once it has exited, says it is gone.  A build whose
# liveness is asked by signal (pidfd_send_signal, EPERM taken as alive) and
# not watched on the pidfd keeps this boost: tried, it fails here.
unreaped=yes
peer_start tx 6 impboxdonor 0 send impboxsvc.work
unreaped=no
[ "$(peer_answer tx 1)" = D ] || fail "the second donor is not believed a donor: $(cat "$tmp/tx.out")"
order tx 6 f
holder=$said
kids="$kids $holder"
order tx 6 s
within 5000 is_boosted "$rx_pid" >/dev/null || fail "IPC: the third message did not boost the receiver"
t0=$(now_ms)
printf k >&6
within $EXIT_MS is_unboosted "$rx_pid" "$auto" >/dev/null ||
	fail "IPC: the donor exited (its socket open in pid $holder) and the receiver is still boosted after $EXIT_MS ms: $(sched_of "$rx_pid")"
echo "IPC: the donor's exit (a zombie), its connection still open in its child, dropped the boost in $(($(now_ms) - t0)) ms"
kill "$holder" "$tx_pid"
exec 6>&-
wait "$tx_pid" 2>/dev/null
printf q >&5
exec 5>&-
wait "$rx_pid" 2>/dev/null

# ---- the Unix-socket source: redis-cli (impboxdonor) to redis-server (impboxsvc) ----
redis=$tmp/redis/redis.sock
mkdir -m 0777 "$tmp/redis"
as impboxsvc nice -n 10 redis-server --port 0 --unixsocket "$redis" --unixsocketperm 777 --save "" \
	--appendonly no --enable-debug-command yes --dir "$tmp/redis" >"$tmp/redis/log" 2>&1 &
srv=$!
kids="$kids $srv"
i=0
until redis-cli -s "$redis" ping >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -gt 500 ] && fail "redis-server did not start: $(cat "$tmp/redis/log")"
	sleep 0.02
done
[ "$(nice_of "$srv")" = 10 ] || fail "redis-server not at nice 10"
auto=$(cat "/proc/$srv/autogroup")
echo "unix: redis-server (impboxsvc) before: $(sched_of "$srv")"
as impboxdonor redis-cli -s "$redis" DEBUG SLEEP 2 >/dev/null &
cli=$!
ms=$(within 1800 is_boosted "$srv") || fail "unix: redis-cli's request did not boost redis-server: $(sched_of "$srv")"
echo "unix: redis-cli's (impboxdonor) request boosted it in $ms ms: $(sched_of "$srv")"
wait "$cli" || fail "redis-cli failed"
ms=$(within 2000 is_unboosted "$srv" "$auto") || fail "unix: redis-server still boosted after the reply: $(sched_of "$srv")"
echo "unix: after the reply, unboosted in $ms ms: $(sched_of "$srv")"
# the donor killed while redis still works on its request
as impboxdonor redis-cli -s "$redis" DEBUG SLEEP 3 >/dev/null &
cli=$!
within 1000 is_boosted "$srv" >/dev/null || fail "unix: the second request did not boost redis-server"
t0=$(now_ms)
kill -9 "$cli"
within $EXIT_MS is_unboosted "$srv" "$auto" >/dev/null ||
	fail "unix: redis-cli was killed and redis-server is still boosted after $EXIT_MS ms: $(sched_of "$srv")"
echo "unix: redis-cli killed (redis still sleeping): redis-server unboosted in $(($(now_ms) - t0)) ms"
wait "$cli" 2>/dev/null

# ---- D-Bus: busctl (impboxdonor) calling a python3-dbus service (impboxsvc) ----
cat >"$tmp/bus/service.py" <<'EOF'
import sys, time
import dbus, dbus.service, dbus.mainloop.glib
from gi.repository import GLib

class Work(dbus.service.Object):
    @dbus.service.method("org.importance.UnitSandbox", in_signature="u", out_signature="u")
    def Work(self, ms):
        time.sleep(ms / 1000.0)
        return ms

dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
conn = dbus.bus.BusConnection(sys.argv[1])
name = dbus.service.BusName("org.importance.UnitSandbox", conn)
Work(conn, "/w")
print("ready", flush=True)
GLib.MainLoop().run()
EOF
as impboxsvc nice -n 10 /usr/bin/python3 "$tmp/bus/service.py" "$bus" >"$tmp/bus/service.out" 2>&1 &
svc=$!
kids="$kids $svc"
i=0
until grep -q ready "$tmp/bus/service.out"; do
	i=$((i + 1)); [ $i -gt 1000 ] && fail "the D-Bus service did not start: $(cat "$tmp/bus/service.out")"
	kill -0 "$svc" 2>/dev/null || fail "the D-Bus service exited: $(cat "$tmp/bus/service.out")"
	sleep 0.02
done
[ "$(nice_of "$svc")" = 10 ] || fail "the D-Bus service not at nice 10"
auto=$(cat "/proc/$svc/autogroup")
echo "D-Bus: the python3-dbus service (impboxsvc) before: $(sched_of "$svc")"
# importanced has seen the service's name (its NameOwnerChanged) and
# boosts nothing for it yet
stays "$svc" no 300 || fail "D-Bus: the service was boosted before any call"
as impboxdonor busctl --address="$bus" call org.importance.UnitSandbox /w org.importance.UnitSandbox Work u 2000 \
	>"$tmp/bus/call.out" 2>&1 &
call=$!
ms=$(within 1800 is_boosted "$svc") || fail "D-Bus: busctl's pending call did not boost the service: $(sched_of "$svc")"
echo "D-Bus (stock system.conf): busctl's (impboxdonor) call boosted it in $ms ms: $(sched_of "$svc")"
wait "$call" || fail "busctl's call failed: $(cat "$tmp/bus/call.out")"
ms=$(within 2000 is_unboosted "$svc" "$auto") || fail "D-Bus: the service still boosted after its reply: $(sched_of "$svc")"
echo "D-Bus: after the reply, unboosted in $ms ms: $(sched_of "$svc")"

kill "$pid"
wait "$pid" || fail "importanced exited with status $? when stopped"
pid=""
grep -q "Sanitizer" "$tmp/log" && fail "a sanitizer's report in the daemon's log"
echo "PASS"
