#!/bin/sh
# Installs the build into a scratch prefix and builds programs against that
# tree only, as a user of the installed package would: with pkg-config and
# with CMake's find_package(importance).  Also checks that the systemd unit
# names the installed daemon and configuration.
# Usage: test-install.sh BUILD_DIR SOURCE_DIR CONFIGURED_PREFIX CC
build=${1:?usage: test-install.sh BUILD_DIR SOURCE_DIR CONFIGURED_PREFIX CC}
src=${2:?usage: test-install.sh BUILD_DIR SOURCE_DIR CONFIGURED_PREFIX CC}
configured=${3:?usage: test-install.sh BUILD_DIR SOURCE_DIR CONFIGURED_PREFIX CC}
cc=${4:?usage: test-install.sh BUILD_DIR SOURCE_DIR CONFIGURED_PREFIX CC}
set -u
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; exit 1; }
pcdir=$(dirname "$(find "$prefix" -name importance.pc | head -n 1)")
libdir=$(dirname "$pcdir")
export PKG_CONFIG_PATH="$pcdir" LD_LIBRARY_PATH="$libdir"
checks=$src/tests/install

# pkg-config, shared libraries; the engine program is the README's example
# shellcheck disable=SC2046
if $cc -o "$tmp/engine-pc" "$src/examples/readme.c" $(pkg-config --cflags --libs importance) &&
	"$tmp/engine-pc"; then ok; else bad "examples/readme.c with pkg-config importance"; fi
header_version=$(sed -n 's/^#define IMP_VERSION_STRING "\(.*\)"/\1/p' "$prefix/include/importance/importance.h")
if [ "$(pkg-config --modversion importance)" = "$header_version" ]; then ok; else
	bad "importance.pc says $(pkg-config --modversion importance), importance.h $header_version"; fi
# shellcheck disable=SC2046
if $cc -o "$tmp/client-pc" "$checks/client.c" $(pkg-config --cflags --libs importance-client) &&
	"$tmp/client-pc" "$tmp/no-daemon.sock"; then ok; else bad "client.c with pkg-config importance-client"; fi
case "$(pkg-config --variable=includedir importance)" in
"$prefix"/*) ok ;;
*) bad "importance.pc's includedir is not in the install: $(pkg-config --variable=includedir importance)" ;;
esac

# find_package(importance), shared and static
if cmake -S "$checks" -B "$tmp/cmake" -DCMAKE_C_COMPILER="$cc" -DCMAKE_PREFIX_PATH="$prefix" \
	>"$tmp/cmake.log" 2>&1 && cmake --build "$tmp/cmake" >>"$tmp/cmake.log" 2>&1; then
	ok
	for p in engine-shared engine-static; do
		if "$tmp/cmake/$p"; then ok; else bad "$p (find_package)"; fi
	done
	for p in client-shared client-static; do
		if "$tmp/cmake/$p" "$tmp/no-daemon.sock"; then ok; else bad "$p (find_package)"; fi
	done
else
	cat "$tmp/cmake.log"
	bad "find_package(importance) project"
fi

# the systemd unit runs what was installed, as it was configured
unit=$prefix/lib/systemd/system/importanced.service
if [ -f "$prefix/sbin/importanced" ] || [ -f "$unit" ]; then
	exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
	daemon=${exec_start%% *}
	config=${exec_start##* }
	for path in "$daemon" "$config"; do
		case "$path" in
		"$configured"/*)
			if [ -e "$prefix${path#"$configured"}" ]; then ok; else bad "the unit names $path, not installed"; fi ;;
		*) bad "the unit names $path, outside the prefix $configured" ;;
		esac
	done
	[ -f "$prefix/lib/systemd/system/importanced.socket" ] && ok || bad "importanced.socket not installed"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
