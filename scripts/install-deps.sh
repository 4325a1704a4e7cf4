#!/bin/sh
# Installs the Debian packages the build, the tests and the demo need,
# only those missing.  Needs root (or sudo) when something is missing.
set -eu
# dbus-daemon, systemd (busctl) and libglib2.0-bin (gdbus): the D-Bus tests'
# bus and their unchanged callers; dbus-broker is unpacked, not installed
# (scripts/dbus-broker-root.sh)
pkgs="make cmake gcc clang libclang-rt-14-dev libcmocka-dev pkg-config graphviz libsystemd-dev libuv1-dev libglib2.0-dev procps valgrind
	dbus-daemon systemd libglib2.0-bin
	libxcb1-dev xvfb openbox xdotool x11-utils $*"
missing=""
for p in $pkgs; do
	dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
run=""
[ "$(id -u)" -ne 0 ] && run="sudo"
$run apt-get update -qq
DEBIAN_FRONTEND=noninteractive $run apt-get install -y -qq $missing >/dev/null
