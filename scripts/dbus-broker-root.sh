#!/bin/sh
# dbus-broker-root.sh BUILD: prints where dbus-broker's files are for the
# benchmarks and tests that start a private dbus-broker (DBUS_BROKER_ROOT,
# tools/buslaunch): nothing when it is installed; else the Debian package
# unpacked into BUILD/dbus-broker-root (installing it would make it the
# machine's system bus at the next boot).  Prints nothing, and says why on
# stderr, when it cannot be had.
set -eu
build=${1:?usage: dbus-broker-root.sh BUILD}
command -v dbus-broker-launch >/dev/null 2>&1 && exit 0
mkdir -p "$build"
root=$build/dbus-broker-root
if [ ! -x "$root/usr/bin/dbus-broker-launch" ]; then
	rm -f "$build"/dbus-broker_*.deb
	( cd "$build" && { apt-get download dbus-broker >/dev/null 2>&1 ||
		{ apt-get update -qq >/dev/null 2>&1 && apt-get download dbus-broker >/dev/null 2>&1; }; } ) &&
		dpkg-deb -x "$build"/dbus-broker_*.deb "$root" ||
		echo "could not fetch dbus-broker; what needs it reports it as not run" >&2
fi
[ -x "$root/usr/bin/dbus-broker-launch" ] && (cd "$root" && pwd)
exit 0
