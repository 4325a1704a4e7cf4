#!/bin/sh
# The client library as a program outside this tree uses it: installs the
# build into a temporary prefix, builds the echo examples against what
# was installed (pkg-config, or find_package(importance)), and runs them
# with the installed importanced: an sd-event server, a libuv server and,
# when GLib is there, a GLib server, each serving two names and two
# clients at once, across a restart of the daemon (the servers and clients
# reconnect and go on), then once more.
#
#   install-tree.sh pkg-config|find-package BUILD SOURCE CC [CFLAGS]
set -eu
mode=${1:?usage: install-tree.sh pkg-config|find-package BUILD SOURCE CC [CFLAGS]}
build=${2:?} src=${3:?} cc=${4:?} cflags=${5:-}

tmp=$(mktemp -d /tmp/impc-install.XXXXXX)
pids=""
cleanup() {
	for p in $pids; do kill -9 "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$tmp"/*.log; do echo "== $f"; cat "$f"; done; exit 1; }

prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
bin=$tmp/bin
mkdir -p "$bin"
case $mode in
pkg-config)
	pc=$(find "$prefix" -name importance-client.pc | head -n 1)
	[ -n "$pc" ] || fail "no importance-client.pc installed"
	export PKG_CONFIG_PATH="$(dirname "$pc")"
	# the .pc files name the prefix configured, not the one installed to
	impc="$(pkg-config --define-variable=prefix="$prefix" --cflags --libs importance-client)"
	ex=$src/examples/client
	# shellcheck disable=SC2086
	$cc -Wall -Wextra -Werror $cflags -o "$bin/echo-server-sd-event" "$ex/echo-server-sd-event.c" "$ex/echo-service.c" \
		$impc $(pkg-config --cflags --libs libsystemd) -lpthread
	# shellcheck disable=SC2086
	$cc -Wall -Wextra -Werror $cflags -o "$bin/echo-server-uv" "$ex/echo-server-uv.c" "$ex/echo-service.c" \
		$impc $(pkg-config --cflags --libs libuv) -lpthread
	# shellcheck disable=SC2086
	$cc -Wall -Wextra -Werror $cflags -o "$bin/echo-client" "$ex/echo-client.c" $impc -lpthread
	if pkg-config --exists glib-2.0; then
		# shellcheck disable=SC2086
		$cc -Wall -Wextra -Werror $cflags -o "$bin/echo-server-glib" "$ex/echo-server-glib.c" "$ex/echo-service.c" \
			$impc $(pkg-config --cflags --libs glib-2.0) -lpthread
	fi
	;;
find-package)
	config=$(find "$prefix" -name importanceConfig.cmake -o -name importance-config.cmake | head -n 1)
	if [ -z "$config" ]; then
		echo "SKIP: the installed tree has no importanceConfig.cmake or importance-config.cmake:" \
			"find_package(importance) is not installed by this build"
		exit 77
	fi
	cmake -S "$src/examples/client" -B "$tmp/echo-build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" \
		-DCMAKE_C_FLAGS="$cflags" >/dev/null
	cmake --build "$tmp/echo-build" >/dev/null
	cp "$tmp/echo-build"/echo-* "$bin"
	;;
*)
	fail "unknown mode $mode"
	;;
esac
# shared libraries, if that is what was installed
LD_LIBRARY_PATH=$(dirname "$(find "$prefix" -name 'libimportance-client*' | head -n 1)")
export LD_LIBRARY_PATH

export IMPORTANCED_SOCKET="$tmp/importanced.sock"
daemon_pid=""
daemon_up() {
	"$prefix/sbin/importanced" --no-config --socket "$IMPORTANCED_SOCKET" --backend none >>"$tmp/daemon.log" 2>&1 &
	daemon_pid=$!
	pids="$pids $daemon_pid"
	for _ in $(seq 200); do
		[ -S "$IMPORTANCED_SOCKET" ] && return 0
		sleep 0.02
	done
	fail "importanced did not come up"
}
daemon_down() {
	kill "$daemon_pid"
	wait "$daemon_pid" || fail "importanced did not exit cleanly"
}
wait_line() { # FILE TEXT: until FILE has a line starting with TEXT
	for _ in $(seq 250); do
		grep -q "^$2" "$1" 2>/dev/null && return 0
		sleep 0.02
	done
	fail "$1: no '$2'"
}
servers="sd-event uv"
names="a b c d"
if [ -x "$bin/echo-server-glib" ]; then
	servers="$servers glib"
	names="$names e f"
fi
clients() { # COUNT DELAY_MS ROUND: one client per name, all at once
	cpids=""
	for n in $names; do
		timeout 60 "$bin/echo-client" "$n" "$1" "$2" >"$tmp/client-$n-$3.log" 2>&1 &
		cpids="$cpids $!"
	done
	pids="$pids $cpids"
}
stacks() { # where each server is, when a round fails (gdb, where installed)
	command -v gdb >/dev/null || return 0
	for p in $spids; do
		echo "== stack of server $p"
		gdb -batch -ex 'thread apply all bt' -p "$p" 2>&1 | grep -E '^#|^Thread'
	done
}
clients_done() { # ROUND
	for p in $cpids; do wait "$p" || { st=$?; stacks; fail "a client of round $1 failed (exit status $st)"; }; done
	for n in $names; do grep -q '^ok ' "$tmp/client-$n-$1.log" || fail "client $n of round $1"; done
}

daemon_up
set -- a b c d e f
spids=""
for s in $servers; do
	"$bin/echo-server-$s" "$1" "$2" >"$tmp/server-$s.log" 2>&1 &
	spids="$spids $!"
	shift 2
done
pids="$pids $spids"
for s in $servers; do wait_line "$tmp/server-$s.log" ready; done

# round 1 spans a restart of the daemon
clients 40 20 1
sleep 0.3
daemon_down
sleep 0.1
daemon_up
clients_done 1
for s in $servers; do wait_line "$tmp/server-$s.log" "reconnected 0"; done

# round 2: the restored servers serve new clients
clients 10 0 2
clients_done 2

# shellcheck disable=SC2086
kill $spids
for p in $spids; do wait "$p" || fail "a server did not exit cleanly"; done
for s in $servers; do
	line=$(grep '^served ' "$tmp/server-$s.log") || fail "server $s said nothing"
	set -- $line
	[ "$2" -ge 100 ] || fail "server $s served $2 requests, not 100"
	[ "$6" -eq 1 ] || fail "server $s reconnected $6 times"
done
daemon_down
echo "install tree ($mode): servers ($servers) x 2 clients each, across a daemon restart: ok"
