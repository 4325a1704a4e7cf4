#!/bin/sh
# Runs every NAME.imp of a folder through imp and compares standard output
# with NAME.out byte for byte and the exit status with NAME.err's first
# line (0 without); the conformance suite's runner too (tests/conformance).
# Usage: run-scenarios.sh IMP DIR
imp=${1:?usage: run-scenarios.sh IMP DIR}
dir=${2:?usage: run-scenarios.sh IMP DIR}
[ -d "$dir" ] || { echo "run-scenarios.sh: $dir: no such folder"; exit 1; }
pass=0 fail=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for case in "$dir"/*.imp; do
	name=${case%.imp}
	want=0
	[ -f "$name.err" ] && want=$(head -n 1 "$name.err")
	timeout 20 "$imp" run "$case" >"$out" 2>/dev/null
	got=$?
	if [ "$got" = "$want" ] && cmp -s "$out" "$name.out"; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		echo "FAIL: $(basename "$case"): exit $got, want $want"
		diff "$name.out" "$out" | head -20
	fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
