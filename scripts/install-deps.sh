#!/bin/sh
# Installs the Debian packages the build, the tests and the demo need,
# only those missing.  Needs root (or sudo) when something is missing.
set -eu
# dbus-daemon, systemd (busctl) and libglib2.0-bin (gdbus): the D-Bus tests'
# bus and their unchanged callers; dbus-broker is unpacked, not installed
# (scripts/dbus-broker-root.sh).  libbpf-dev, bpftool: the socket source's
# BPF; redis-server, postgresql: real servers for its tests and bench;
# xvfb, xdotool, openbox, x11-utils, libxcb1-dev: the X11 foreground source and its tests;
# python3-dbus, python3-gi: unmodified D-Bus services; lintian, debhelper,
# dpkg-dev: make deb; util-linux: setpriv and unshare (the unit's sandbox);
# dbus-user-session: the user manager's session bus (the agent's unit's test).
pkgs="make cmake gcc clang libclang-rt-14-dev libcmocka-dev pkg-config graphviz libsystemd-dev libuv1-dev libglib2.0-dev procps valgrind
	dbus-daemon systemd libglib2.0-bin
	libbpf-dev bpftool redis-server redis-tools postgresql postgresql-contrib xvfb xdotool openbox x11-utils
	libxcb1-dev python3-dbus python3-gi lintian debhelper dpkg-dev util-linux dbus-user-session $*"
missing=""
for p in $pkgs; do
	dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
run=""
[ "$(id -u)" -ne 0 ] && run="sudo"
# Another apt or dpkg (another session, unattended-upgrades) may hold the
# lock: apt waits for it up to LOCK_WAIT seconds (DPkg::Lock::Timeout, the
# dpkg and the lists locks alike), and a run that still lost the race is
# tried again rather than failing at once.
wait=${LOCK_WAIT:-900}
apt() {
	tries=0
	while :; do
		if $run env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$wait" "$@" 2>"$log"; then
			return 0
		fi
		tries=$((tries + 1))
		if [ $tries -lt 5 ] && grep -qi 'lock' "$log"; then
			echo "install-deps: apt's lock is held by another process; waiting" >&2
			sleep 10
			continue
		fi
		cat "$log" >&2
		return 1
	done
}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
apt update -qq
apt install -y -qq $missing >/dev/null
