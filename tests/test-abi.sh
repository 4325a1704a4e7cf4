#!/bin/sh
# The shared libraries export their API and nothing else: every dynamic
# symbol they define is a function their header declares with IMP_EXTERN
# (IMPC_EXTERN), no internal imp__ name is among them, and every function
# so declared is exported.
# Usage: test-abi.sh INCLUDE_DIR LIBIMPORTANCE.so LIBIMPORTANCE-CLIENT.so
inc=${1:?usage: test-abi.sh INCLUDE_DIR LIBIMPORTANCE.so LIBIMPORTANCE-CLIENT.so}
lib=${2:?usage: test-abi.sh INCLUDE_DIR LIBIMPORTANCE.so LIBIMPORTANCE-CLIENT.so}
clib=${3:?usage: test-abi.sh INCLUDE_DIR LIBIMPORTANCE.so LIBIMPORTANCE-CLIENT.so}
command -v nm >/dev/null || { echo "nm not found"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0

# check LIB HEADER MACRO
check() {
	# names starting with __ are the compiler's (sanitizer instrumentation)
	nm -D --defined-only "$1" | awk '$2 ~ /^[TtDdBbRrWwVvi]$/ && $3 !~ /^__/ { print $3 }' |
		sort -u >"$tmp/exported"
	sed -n "s/^$3 [^(]*[ *]\\([a-z_0-9]*\\)(.*/\\1/p" "$2" | sort -u >"$tmp/declared"
	echo "$(basename "$1"): $(wc -l <"$tmp/exported") symbols exported"
	if [ ! -s "$tmp/exported" ] || [ ! -s "$tmp/declared" ]; then
		echo "FAIL: $(basename "$1"): nothing exported or nothing declared"; fail=$((fail + 1)); return
	fi
	if grep -q '^imp__' "$tmp/exported"; then
		echo "FAIL: $(basename "$1") exports internal names:"; grep '^imp__' "$tmp/exported"
		fail=$((fail + 1))
	else
		pass=$((pass + 1))
	fi
	if comm -23 "$tmp/exported" "$tmp/declared" | grep .; then
		echo "FAIL: $(basename "$1") exports the names above, which $(basename "$2") does not declare"
		fail=$((fail + 1))
	else
		pass=$((pass + 1))
	fi
	if comm -13 "$tmp/exported" "$tmp/declared" | grep .; then
		echo "FAIL: $(basename "$2") declares the names above, which $(basename "$1") does not export"
		fail=$((fail + 1))
	else
		pass=$((pass + 1))
	fi
}
check "$lib" "$inc/importance/importance.h" IMP_EXTERN
check "$clib" "$inc/importance/client.h" IMPC_EXTERN
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
