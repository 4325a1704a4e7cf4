#!/bin/sh
# The session agent as its shipped user unit runs it
# (daemon/systemd/importanced-agent.service), as a user that is not root,
# boosting a python3-dbus service on that user's own session bus for an
# unmodified caller (busctl).  The bus is the one dbus-user-session gives a
# user: the user manager's dbus.socket at $XDG_RUNTIME_DIR/bus, dbus-daemon
# with Debian's stock session.conf.
#
# Part A, the unit as systemd runs it: a real user manager (Debian's
# `systemd --user`, started by the test: no systemd as PID 1 here) runs the
# shipped unit.  The manager believes it was booted with systemd (in a mount
# namespace of its own, /run/systemd/system exists) and is given cgroups of
# its own, delegated to the user, as user@.service would be.  The unit is
# installed as `make install` installs it (ExecStart= the agent's path, the
# only change), `systemd-analyze verify --user` must be silent about it, and
# the manager applies everything it applies to user units: NoNewPrivileges,
# and the seccomp filters (RestrictAddressFamilies, RestrictNamespaces,
# LockPersonality, MemoryDenyWriteExecute, SystemCallArchitectures,
# SystemCallFilter).  A probe unit with the same sandbox shows each of those
# refusing what it must.  (Settings that drop capabilities, PrivateDevices=
# and ProtectKernelModules= among them, make a user manager fail the unit
# with 218/CAPABILITIES: the unit has none.)
#
# Part B, the mount settings: a user manager cannot make mount namespaces
# (systemd.exec(5): ProtectSystem= and the like are "not available" in user
# services unless PrivateUsers= is on), so systemd 252 runs the agent without
# them; the test says so when it sees it.  They are reproduced here, in a
# mount namespace made for the agent (unshare -m) as tests/test-unit-sandbox.sh
# does for the system unit: PrivateTmp (tmpfs /tmp, /var/tmp), ProtectHome=
# read-only, ProtectSystem=strict (every mount but /dev, /proc, /sys
# read-only), ProtectKernelTunables (/proc/sys, /sys read-only),
# ProtectControlGroups (/sys/fs/cgroup read-only); the agent then as the user with
# NoNewPrivileges (setpriv --no-new-privs), and the same call is boosted.
#
# A setting of the unit this test does not know fails it: a new one must be
# reproduced here, or said why not.
# In both, the agent's X11 foreground source too (in part A the display is
# imported into the manager only after the agent started, as a desktop
# does: the agent asks the manager): an Xvfb and openbox of the
# user's (Xvfb on its default sockets: the abstract one is what PrivateTmp=
# leaves), a window claiming the service's pid made active with xdotool,
# and importanced told.
# Usage: test-agent-sandbox.sh IMPORTANCED IMPORTANCED-AGENT UNIT MANPAGE X11-WINDOW
set -u
daemon=${1:?usage: test-agent-sandbox.sh IMPORTANCED IMPORTANCED-AGENT UNIT MANPAGE X11-WINDOW}
agent=${2:?}
unit=${3:?}
manpage=${4:?}
window=${5:?}
[ "$(id -u)" = 0 ] || { echo "FAIL: needs root (a second uid, its cgroups, setpriv)"; exit 1; }
# not in /tmp: PrivateTmp hides it from the agent
tmp=$(mktemp -d /run/imp-agent-sandbox.XXXXXX)
chmod 0755 "$tmp"
user=impagentbox
pid=""
mgr=""
kids=""
cgs=""
cleanup() {
	[ -n "$mgr" ] && kill "$mgr" 2>/dev/null
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	for k in $kids; do kill "$k" 2>/dev/null; done
	wait 2>/dev/null
	# what the manager left in its cgroups (the units' processes)
	for cg in $cgs; do
		for i in 1 2 3 4 5; do
			p=$(cat $(find "$cg" -name cgroup.procs) 2>/dev/null)
			[ -z "$p" ] && break
			# shellcheck disable=SC2086
			kill -9 $p 2>/dev/null
			sleep 0.2
		done
		find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
. "$(dirname "$0")/daemon-lib.sh"

# ---- the unit's settings ----
known="ExecStart Restart RestartSec NoNewPrivileges ProtectSystem ProtectHome PrivateTmp
ProtectKernelTunables ProtectControlGroups RestrictAddressFamilies RestrictNamespaces
LockPersonality MemoryDenyWriteExecute SystemCallArchitectures SystemCallFilter SystemCallErrorNumber"
for k in $(sed -n '/^\[Service\]/,/^\[/ s/^\([A-Za-z]*\)=.*/\1/p' "$unit"); do
	case " $(echo $known) " in
	*" $k "*) ;;
	*) fail "$unit sets $k=, which this test does not reproduce" ;;
	esac
done
exec_start=$(setting ExecStart)
[ "$exec_start" = /usr/local/bin/importanced-agent ] ||
	fail "ExecStart=$exec_start: this test knows only the agent with no arguments"
[ "$(setting RestrictAddressFamilies)" = AF_UNIX ] || fail "RestrictAddressFamilies=$(setting RestrictAddressFamilies)"
echo "unit: $(sed -n '/^\[Service\]/,/^\[/ s/^\([A-Za-z]*=.*\)/\1/p' "$unit" | tr '\n' ' ')"

id "$user" >/dev/null 2>&1 || useradd -M -s /usr/sbin/nologin "$user" >/dev/null 2>&1 || fail "useradd $user"
uid=$(id -u "$user")
home=$tmp/home rt=$tmp/rt
mkdir -p "$home/.config/systemd/user" "$rt" "$tmp/man/man1" "$tmp/bin"
chmod 0700 "$rt"
# the binary as the unit finds it, outside what the sandbox hides (a build
# tree may be under /tmp or /home); the unit as cmake/install.cmake installs
# it, its ExecStart= that path
cp "$agent" "$tmp/bin/importanced-agent" || fail "copy $agent"
sed "s|^ExecStart=/usr/local/bin/importanced-agent\$|ExecStart=$tmp/bin/importanced-agent|" "$unit" \
	>"$home/.config/systemd/user/importanced-agent.service"
ln -s "$(readlink -f "$manpage")" "$tmp/man/man1/importanced-agent.1"
chown -R "$user:" "$home" "$rt"
user_env="HOME=$home XDG_RUNTIME_DIR=$rt PATH=/usr/bin:/bin"

# ---- systemd-analyze verify --user ----
# shellcheck disable=SC2086
out=$(as "$user" env -i $user_env MANPATH="$tmp/man" systemd-analyze verify --user \
	"$home/.config/systemd/user/importanced-agent.service" 2>&1) || fail "systemd-analyze verify --user: $out"
[ -z "$out" ] || fail "systemd-analyze verify --user says: $out"
echo "systemd-analyze verify --user: clean"

# ---- importanced (root) ----
"$daemon" --no-config --socket "$tmp/imp.sock" --backend nice --donor-uid "$user" --verbose >"$tmp/log" 2>&1 &
pid=$!
wait_socket "$tmp/imp.sock"

is_nice() { [ "$(nice_of "$1")" = "$2" ]; }
# busctl's call to the service boosts it (nice -10) until the reply
boosted_call() {
	[ "$(nice_of "$svc")" = 10 ] || fail "$1: the service is at nice $(nice_of "$svc") before the call"
	as "$user" busctl --address="$bus" call org.example.Slow /org/example/Slow org.example.Slow Wait u 2500 \
		>"$tmp/call.out" 2>&1 &
	call=$!
	ms=$(within 2000 is_nice "$svc" -10) || fail "$1: busctl's call did not boost the service (nice $(nice_of "$svc"))"
	echo "$1: busctl's pending call boosted the python3-dbus service to nice -10 in $ms ms"
	wait "$call" || fail "$1: busctl's call failed: $(cat "$tmp/call.out")"
	ms=$(within 2000 is_nice "$svc" 10) || fail "$1: the service still boosted after the reply"
	echo "$1: back at nice 10 $ms ms after the reply"
}
# waits for the daemon's log to say an agent attached (the nth time)
attached() {
	i=0
	until [ "$(grep -c 'attached by pid' "$tmp/log")" -ge "$1" ]; do
		i=$((i + 1)); [ $i -gt 500 ] && fail "no agent attached ($2)"
		sleep 0.02
	done
}

# ---- part A: the shipped unit under a real systemd --user ----
# (a session bus of its own, the user's: dbus-user-session's units)
[ -f /usr/lib/systemd/user/dbus.socket ] || fail "no dbus-user-session (/usr/lib/systemd/user/dbus.socket)"
# cgroups of its own, delegated to the user (user@.service's Delegate=yes)
for h in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified; do
	[ -f "$h/cgroup.procs" ] && cgs="$cgs $h/imp-agent-sandbox.$$"
done
[ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ] && cgs="$cgs /sys/fs/cgroup/imp-agent-sandbox.$$"
[ -n "$cgs" ] || fail "no cgroup hierarchy for a user manager"
for cg in $cgs; do
	mkdir "$cg" && chown -R "$user:" "$cg" || fail "cannot make $cg"
done
cat >"$tmp/manager.sh" <<EOF
mount -t tmpfs -o mode=0755 tmpfs /run/systemd && mkdir /run/systemd/system || exit 3
for cg in $cgs; do echo \$\$ >"\$cg/cgroup.procs" || exit 4; done
exec setpriv --reuid=$user --regid=$user --clear-groups env -i $user_env /lib/systemd/systemd --user
EOF
unshare -m --propagation private sh "$tmp/manager.sh" >"$tmp/manager.log" 2>&1 &
mgr=$!
# shellcheck disable=SC2086
sctl() ( as "$user" env -i $user_env systemctl --user "$@" )
i=0
until sctl show-environment >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -gt 300 ] && fail "systemd --user did not come up: $(cat "$tmp/manager.log")"
	kill -0 "$mgr" 2>/dev/null || fail "systemd --user exited: $(cat "$tmp/manager.log")"
	sleep 0.1
done
echo "systemd --user (systemd $(/lib/systemd/systemd --version | sed -n '1s/systemd \([0-9]*\).*/\1/p')) up as $user"
# the user's session bus as dbus-user-session gives it: the manager's
# dbus.socket at $XDG_RUNTIME_DIR/bus, dbus-daemon with Debian's stock
# session.conf started by the first connection
bus="unix:path=$rt/bus"
sctl is-active --quiet dbus.socket || fail "the user manager's dbus.socket is not listening: $(sctl status dbus.socket 2>&1)"
# ---- the python3-dbus service at nice 10, and busctl's call ----
cat >"$tmp/service.py" <<'EOF'
import sys
import dbus, dbus.service, dbus.mainloop.glib
from gi.repository import GLib

class Slow(dbus.service.Object):
    @dbus.service.method("org.example.Slow", in_signature="u", out_signature="u", async_callbacks=("ok", "err"))
    def Wait(self, ms, ok, err):
        GLib.timeout_add(ms, lambda: (ok(ms), False)[1])

dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
bus = dbus.bus.BusConnection(sys.argv[1])
name = dbus.service.BusName("org.example.Slow", bus)
Slow(bus, "/org/example/Slow")
print("ready", flush=True)
GLib.MainLoop().run()
EOF
as "$user" nice -n 10 /usr/bin/python3 "$tmp/service.py" "$bus" >"$tmp/service.out" 2>&1 &
svc=$!
kids="$kids $svc"
i=0
until grep -q ready "$tmp/service.out"; do
	i=$((i + 1)); [ $i -gt 1000 ] && fail "the service did not start: $(cat "$tmp/service.out")"
	kill -0 "$svc" 2>/dev/null || fail "the service exited: $(cat "$tmp/service.out")"
	sleep 0.02
done
# the user's X display: an Xvfb of the user's, and a window claiming the
# service's pid
as "$user" Xvfb -displayfd 1 -nolisten tcp -screen 0 320x240x24 >"$tmp/xvfb.num" 2>"$tmp/xvfb.log" &
kids="$kids $!"
i=0
until grep -q '^[0-9]' "$tmp/xvfb.num" 2>/dev/null; do
	i=$((i + 1)); [ $i -gt 300 ] && fail "Xvfb did not start: $(cat "$tmp/xvfb.log")"
	sleep 0.05
done
display=:$(head -n 1 "$tmp/xvfb.num")
HOME=$home as "$user" env DISPLAY="$display" openbox --sm-disable >"$tmp/openbox.log" 2>&1 &
kids="$kids $!"
i=0
until DISPLAY=$display xprop -root _NET_SUPPORTING_WM_CHECK 2>/dev/null | grep -q 'window id'; do
	i=$((i + 1)); [ $i -gt 300 ] && fail "openbox did not come up: $(cat "$tmp/openbox.log")"
	sleep 0.05
done
DISPLAY=$display "$window" sbx-app "$svc" >"$tmp/window.out" 2>&1 &
kids="$kids $!"
i=0
until grep -q mapped "$tmp/window.out"; do
	i=$((i + 1)); [ $i -gt 300 ] && fail "the window was not mapped: $(cat "$tmp/window.out")"
	sleep 0.05
done
win=$(DISPLAY=$display xdotool search --name '^sbx-app$' | head -n 1)
[ -n "$win" ] || fail "xdotool does not find the window"
activate() {
	DISPLAY=$display timeout 20 xdotool windowactivate --sync "$1" >/dev/null 2>&1 || fail "xdotool could not activate the window"
}
told() {
	i=0
	until [ "$(grep -c "foreground of uid $uid: pid $svc\$" "$tmp/log")" -ge "$1" ]; do
		i=$((i + 1)); [ $i -gt 500 ] && fail "$2: the agent did not tell importanced the active window's pid $svc"
		sleep 0.02
	done
	echo "$2: the active window (pid $svc) told to importanced"
}
# what a session gives the manager (import-environment): importanced's
# socket now, the display later (a desktop imports it once it is up)
sctl set-environment IMPORTANCED_SOCKET="$tmp/imp.sock" || fail "systemctl --user set-environment"
sctl start importanced-agent.service || fail "the unit did not start: $(sctl status importanced-agent.service)"
attached 1 "the unit's agent: $(sctl status importanced-agent.service 2>&1)"
apid=$(sctl show -p MainPID --value importanced-agent.service)
[ -n "$apid" ] && [ "$apid" != 0 ] || fail "no MainPID for the unit"
st=/proc/$apid/status
grep -q "^Uid:[[:space:]]*$uid[[:space:]]" "$st" || fail "the unit's agent is not uid $uid"
grep -q '^NoNewPrivs:[[:space:]]*1$' "$st" || fail "NoNewPrivileges=yes not applied"
grep -q '^Seccomp:[[:space:]]*2$' "$st" || fail "no seccomp filter on the unit's agent"
grep -q '^CapEff:[[:space:]]*0*$' "$st" || fail "the unit's agent has capabilities: $(grep CapEff "$st")"
echo "part A: the unit's agent (pid $apid): uid $uid, NoNewPrivs 1, Seccomp 2 ($(sed -n 's/^Seccomp_filters:[[:space:]]*//p' "$st") filters), no capabilities"
# the unit's sandbox, on a probe: each seccomp setting refuses what it must
{
	echo "[Service]"
	sed -n '/^\[Service\]/,/^\[/ p' "$unit" | grep -v '^\[\|^#\|^$\|^ExecStart=\|^Restart'
	echo "ExecStart=/usr/bin/python3 $tmp/probe.py $rt/probe.out"
	echo "Type=oneshot"
} >"$home/.config/systemd/user/imp-probe.service"
cat >"$tmp/probe.py" <<'EOF'
import ctypes, errno, mmap, os, socket, sys
out = []
def check(what, fn):
    try:
        fn()
        out.append(what + " allowed")
    except OSError as e:
        out.append(what + " " + errno.errorcode.get(e.errno, str(e.errno)))
libc = ctypes.CDLL(None, use_errno=True)
def call(f, *a):
    if f(*a) == -1:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
check("AF_INET", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
check("AF_UNIX", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
check("unshare-user", lambda: call(libc.unshare, 0x10000000))
check("personality", lambda: call(libc.personality, 0x0008))
check("mmap-wx", lambda: mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC))
check("ptrace", lambda: call(libc.ptrace, 0, 0, None, None))
open(sys.argv[1], "w").write("\n".join(out) + "\n")
EOF
chmod 0644 "$tmp/probe.py"
chown "$user:" "$home/.config/systemd/user/imp-probe.service"
sctl daemon-reload && sctl start imp-probe.service || fail "the probe unit failed: $(sctl status imp-probe.service)"
probe=$(cat "$rt/probe.out")
wants="AF_INET EAFNOSUPPORT|AF_UNIX allowed|unshare-user EPERM|personality EPERM|mmap-wx EPERM"
[ "$(setting SystemCallFilter)" = @system-service ] && wants="$wants|ptrace EPERM"
IFS='|'
for want in $wants; do
	echo "$probe" | grep -qx "$want" || fail "the unit's sandbox on a probe: want '$want', got: $(echo $probe)"
done
unset IFS
echo "part A: the unit's sandbox on a probe unit: $(echo "$probe" | tr '\n' ';')"
if [ "$(readlink /proc/$apid/ns/mnt)" = "$(readlink /proc/$mgr/ns/mnt)" ]; then
	echo "part A: the manager made the agent no mount namespace (ProtectSystem=, ProtectHome=, PrivateTmp=, ProtectKernelTunables=, ProtectControlGroups= are not available to user units without PrivateUsers=, systemd.exec(5)): part B reproduces them"
fi
boosted_call "part A (the unit under systemd --user)"
sctl set-environment DISPLAY="$display" || fail "systemctl --user set-environment DISPLAY"
activate "$win"
told 1 "part A (the unit under systemd --user)"
sctl stop importanced-agent.service || fail "systemctl --user stop"

# ---- part B: the unit's mount settings, reproduced ----
ns=""
[ "$(setting PrivateTmp)" = yes ] && ns="$ns mount -t tmpfs tmpfs /tmp && mount -t tmpfs tmpfs /var/tmp &&"
case $(setting ProtectHome) in
read-only)
	for d in /home /root /run/user; do
		[ -d "$d" ] && ns="$ns mount --rbind $d $d && mount -o bind,remount,ro $d &&"
	done ;;
yes) for d in /home /root /run/user; do [ -d "$d" ] && ns="$ns mount -t tmpfs -o ro,mode=0755 tmpfs $d &&"; done ;;
"" | no) ;;
*) fail "ProtectHome=$(setting ProtectHome): not reproduced" ;;
esac
# the agent's runtime dir (the bus socket) stays as it is: it is under $tmp
case $(setting ProtectSystem) in
strict)
	for m in $(awk '$6 !~ /^ro(,|$)/ {print $5}' /proc/self/mountinfo | sort -u); do
		case $m in /dev | /dev/* | /proc | /proc/* | /sys | /sys/*) continue ;; esac
		ns="$ns mount -o bind,remount,ro $m &&"
	done ;;
"" | no) ;;
*) fail "ProtectSystem=$(setting ProtectSystem): not reproduced" ;;
esac
[ "$(setting ProtectKernelTunables)" = yes ] && ns="$ns mount --bind /proc/sys /proc/sys && mount -o bind,remount,ro /proc/sys && mount --rbind /sys /sys && mount -o bind,remount,ro /sys &&"
[ "$(setting ProtectControlGroups)" = yes ] && ns="$ns mount --rbind /sys/fs/cgroup /sys/fs/cgroup && mount -o bind,remount,ro /sys/fs/cgroup &&"
# and the namespace checked from inside before the agent starts
ns="$ns { touch /usr/.imp-probe 2>/dev/null && exit 5 || true; } && { [ -w /proc/sys/kernel/hostname ] && exit 6 || true; } && { [ -z \"\$(ls -A /tmp)\" ] || exit 7; } &&"
nnp=""
[ "$(setting NoNewPrivileges)" = yes ] && nnp=--no-new-privs
# shellcheck disable=SC2086
unshare -m --propagation private sh -c "$ns exec \"\$0\" \"\$@\"" \
	setpriv --reuid="$user" --regid="$user" --clear-groups $nnp \
	env -i $user_env IMPORTANCED_SOCKET="$tmp/imp.sock" DISPLAY="$display" "$tmp/bin/importanced-agent" \
	>"$tmp/agent-b.log" 2>&1 &
bpid=$!
kids="$kids $bpid"
attached 2 "the agent in the reproduced mounts: $(cat "$tmp/agent-b.log")"
[ "$(readlink /proc/$bpid/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" ] || fail "part B: no mount namespace"
grep -q '^NoNewPrivs:[[:space:]]*1$' "/proc/$bpid/status" || fail "part B: no NoNewPrivs"
echo "part B: the agent (pid $bpid) as $user, NoNewPrivs, in a mount namespace with the unit's mount settings:$ns"
boosted_call "part B (the unit's mount settings)"
told 2 "part B (the unit's mount settings, /tmp/.X11-unix hidden)"
kill "$bpid"
wait "$bpid"
kill "$pid"
wait "$pid" || fail "importanced exited with status $? when stopped"
pid=""
grep -q "Sanitizer" "$tmp/log" && fail "a sanitizer's report in the daemon's log"
echo "PASS"
