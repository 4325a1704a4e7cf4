#!/bin/sh
# The Debian packages as a user gets them: builds them from SOURCE
# (scripts/build-deb.sh: dpkg-buildpackage, then lintian with no error and
# no warning), installs them on this machine with dpkg -i, and checks
#   - the libraries are known to the dynamic linker by their SONAMEs;
#   - systemd-analyze verify passes on the installed units;
#   - the installed importanced starts with the installed configuration
#     (and its drop-in folder), on a private socket and state dir with
#     --backend nice, and the installed impctl and imp work;
#   - a program builds against the installed -dev alone, with pkg-config
#     and with find_package(importance), shared and static, and an echo
#     server and client built that way talk through the installed daemon;
# then purges them and checks that nothing they installed is left: their
# files, the systemd enablement links and deb-systemd-helper's state.
# The packages must not be installed before (the test would not know what
# to leave); two runs at once (another build dir, another engineer) take
# turns on a lock.  Unlike test-install.sh and install-tree.sh, which
# install into scratch prefixes, this one writes into /usr, /lib and /etc.
# Usage: test-deb.sh SOURCE CC
src=${1:?usage: test-deb.sh SOURCE CC}
cc=${2:?usage: test-deb.sh SOURCE CC}
set -u
packages="libimportance0 libimportance-client0 libimportance-dev importanced"
tmp=$(mktemp -d /tmp/imp-test-deb.XXXXXX)
pid=""
installed=""
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	# shellcheck disable=SC2086
	[ -n "$installed" ] && dpkg --purge $installed >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
. "$(dirname "$0")/daemon-lib.sh"
[ "$(id -u)" = 0 ] || fail "needs root (dpkg -i)"
for t in dpkg-buildpackage lintian systemd-analyze pkg-config cmake; do
	command -v "$t" >/dev/null || fail "$t is not installed (scripts/install-deps.sh)"
done

# the packages are built before the lock is taken: only installing is shared
sh "$src/scripts/build-deb.sh" "$tmp/deb" "$src" || fail "make deb"
echo "built and lintian-clean: $(cd "$tmp/deb" && ls ./*.deb | tr '\n' ' ')"

exec 9>/run/lock/importance-test-deb.lock
flock -w 600 9 || fail "another test-deb.sh held its lock for 10 minutes"
state() { dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null; }
for p in $packages; do
	case $(state "$p") in
	"" | not-installed) ;;
	*) fail "$p is already on this machine ($(state "$p")): purge it first" ;;
	esac
done
# what the maintainer scripts and dpkg touch, listed before
snapshot() {
	find /etc /lib/systemd /usr/lib/systemd /var/lib/systemd /usr/share/dbus-1 /usr/include \
		/usr/lib/x86_64-linux-gnu/cmake /usr/lib/x86_64-linux-gnu/pkgconfig 2>/dev/null |
		grep -i -e importance -e impctl -e importanced | sort
}
snapshot >"$tmp/before"

debs=""
for p in $packages; do debs="$debs $(ls "$tmp/deb/${p}"_*.deb)"; done
# the packages' paths not on the machine yet: none may be left after the purge
for d in $debs; do dpkg-deb -c "$d"; done | sed 's/.* \.\(\/[^ ]*\).*/\1/; s,/$,,' | sort -u |
	while read -r f; do
		if [ -n "$f" ] && [ ! -e "$f" ] && [ ! -L "$f" ]; then echo "$f"; fi
	done >"$tmp/new"
grep -qx /usr/sbin/importanced "$tmp/new" || fail "/usr/sbin/importanced is on this machine already, or the packages' contents were not read"
installed=$packages
# shellcheck disable=SC2086
dpkg -i $debs >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log"; fail "dpkg -i"; }
for p in $packages; do
	[ "$(state "$p")" = installed ] || fail "$p: $(state "$p") after dpkg -i"
done
echo "installed: $packages"
# the maintainer scripts enabled the units (undone by the purge, below)
snapshot >"$tmp/during"
for l in multi-user.target.wants/importanced.service sockets.target.wants/importanced.socket; do
	grep -qx "/etc/systemd/system/$l" "$tmp/during" || fail "dpkg -i did not enable $l"
done

# the libraries, by SONAME
for l in libimportance.so.0 libimportance-client.so.0; do
	ldconfig -p | grep -q "^[[:space:]]*$l " || fail "ldconfig does not know $l"
	path=$(ldconfig -p | sed -n "s/^[[:space:]]*$l .*=> //p" | head -n 1)
	objdump -p "$path" | grep -q "SONAME *$l\$" || fail "$path's SONAME is not $l"
done
echo "libraries: libimportance.so.0, libimportance-client.so.0 known to ldconfig"
# the configuration: a conffile, and its drop-in folder
dpkg-query -W -f='${Conffiles}\n' importanced | grep -q '^ /etc/importanced.conf ' ||
	fail "/etc/importanced.conf is not a conffile"
[ -d /etc/importanced.conf.d ] || fail "no /etc/importanced.conf.d"
for k in dbus dbus-receiver-name unix donor-foreground; do
	grep -q "^#$k " /etc/importanced.conf || fail "the sample configuration does not show $k"
done

# the units as installed (ExecStart=, Documentation= and all)
for u in importanced.service importanced.socket; do
	[ -f "/lib/systemd/system/$u" ] || fail "$u not installed in /lib/systemd/system"
done
out=$(systemd-analyze verify /lib/systemd/system/importanced.service /lib/systemd/system/importanced.socket 2>&1) ||
	fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify says: $out"
grep -q '^ExecStart=/usr/sbin/importanced --config /etc/importanced.conf$' /lib/systemd/system/importanced.service ||
	fail "the unit's ExecStart= is not the installed daemon and configuration"
echo "systemd-analyze verify: clean"

# the installed daemon with the installed configuration (and drop-ins)
mkdir -m 0700 "$tmp/state"
printf 'max-ports 200\n' >/etc/importanced.conf.d/50-test-deb.conf
/usr/sbin/importanced --config /etc/importanced.conf --socket "$tmp/sock" --state-dir "$tmp/state" \
	--backend nice >"$tmp/log" 2>&1 &
pid=$!
wait_socket "$tmp/sock"
rm -f /etc/importanced.conf.d/50-test-deb.conf
grep -q '^importanced: backend nice' "$tmp/log" || fail "the installed daemon did not take --backend nice"
out=$(/usr/bin/impctl --socket "$tmp/sock" status 2>&1) || fail "impctl status: $out"
echo "installed importanced: up on $tmp/sock (backend nice); impctl status answered"
out=$(/usr/bin/imp run "$src/examples/foreground-chain.imp" 2>&1) || fail "imp run: $out"

# programs built against the installed -dev only (nothing from the tree's
# build; the system's pkg-config path and CMake's default prefixes)
unset PKG_CONFIG_PATH CMAKE_PREFIX_PATH
[ "$(readlink -f "$(pkg-config --variable=libdir importance)")" = /usr/lib/x86_64-linux-gnu ] ||
	fail "pkg-config importance: libdir $(pkg-config --variable=libdir importance)"
# shellcheck disable=SC2046
$cc -Wall -Werror -o "$tmp/engine-pc" "$src/examples/readme.c" $(pkg-config --cflags --libs importance) ||
	fail "examples/readme.c with pkg-config importance"
lib=$(ldd "$tmp/engine-pc" | sed -n 's/.*libimportance\.so\.0 => \([^ ]*\).*/\1/p')
[ -n "$lib" ] && [ "$(readlink -f "$lib")" = "$(readlink -f /usr/lib/x86_64-linux-gnu/libimportance.so.0)" ] ||
	fail "engine-pc runs with '$lib', not the installed library"
"$tmp/engine-pc" >/dev/null || fail "engine-pc"
if cmake -S "$src/tests/install" -B "$tmp/cmake" -DCMAKE_C_COMPILER="$cc" >"$tmp/cmake.log" 2>&1 &&
	cmake --build "$tmp/cmake" >>"$tmp/cmake.log" 2>&1; then :; else
	cat "$tmp/cmake.log"; fail "find_package(importance) against the installed -dev"
fi
grep -q '^importance_DIR:PATH=/usr/lib/x86_64-linux-gnu/cmake/importance$' "$tmp/cmake/CMakeCache.txt" ||
	fail "find_package(importance) found $(grep '^importance_DIR' "$tmp/cmake/CMakeCache.txt")"
for p in engine-shared engine-static; do "$tmp/cmake/$p" >/dev/null || fail "$p (find_package)"; done
for p in client-shared client-static; do "$tmp/cmake/$p" "$tmp/no-daemon.sock" >/dev/null || fail "$p (find_package)"; done
echo "-dev: examples/readme.c (pkg-config), tests/install (find_package, shared and static): built and ran"
ex=$src/examples/client
impc=$(pkg-config --cflags --libs importance-client)
# shellcheck disable=SC2086
$cc -Wall -Werror -o "$tmp/echo-server" "$ex/echo-server-sd-event.c" "$ex/echo-service.c" $impc \
	$(pkg-config --cflags --libs libsystemd) -lpthread || fail "echo-server-sd-event with pkg-config"
# shellcheck disable=SC2086
$cc -Wall -Werror -o "$tmp/echo-client" "$ex/echo-client.c" $impc -lpthread || fail "echo-client with pkg-config"
export IMPORTANCED_SOCKET="$tmp/sock"
"$tmp/echo-server" deb-a deb-b >"$tmp/server.log" 2>&1 &
spid=$!
i=0
until grep -q '^ready' "$tmp/server.log"; do
	i=$((i + 1)); [ $i -gt 200 ] && { kill $spid; fail "echo server: $(cat "$tmp/server.log")"; }
	sleep 0.1
done
out=$(timeout 60 "$tmp/echo-client" deb-a 20 2>&1) || { kill $spid; fail "echo client: $out"; }
kill $spid; wait $spid 2>/dev/null
case $out in ok*) ;; *) fail "echo client: $out" ;; esac
echo "echo server and client (installed libimportance-client): 20 requests through the installed daemon"
kill "$pid"
wait "$pid" || fail "the installed daemon did not exit cleanly"
pid=""

# shellcheck disable=SC2086
dpkg --purge $packages >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log"; fail "dpkg --purge"; }
installed=""
for p in $packages; do
	case $(state "$p") in "" | not-installed) ;; *) fail "$p: $(state "$p") after the purge" ;; esac
done
# every path in the packages that was not on the machine before is gone
while read -r f; do
	if [ -e "$f" ] || [ -L "$f" ]; then echo "$f"; fi
done <"$tmp/new" >"$tmp/left"
[ -s "$tmp/left" ] && fail "left after the purge: $(cat "$tmp/left")"
snapshot >"$tmp/after"
diff "$tmp/before" "$tmp/after" >"$tmp/diff" || fail "the purge left: $(cat "$tmp/diff")"
ldconfig -p | grep -q libimportance && fail "ldconfig still knows libimportance"
echo "purged: no file, unit link or helper state left"
echo "deb: ok"
