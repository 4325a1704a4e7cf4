#!/bin/sh
# ctest for `make test`: a suite that cannot run fails the run.  Runs
# ctest in BUILD with the arguments given, then fails if any test was
# skipped (exit 77, SKIP_RETURN_CODE) or not run, or if a cmocka test in
# it reported "[  SKIPPED ]" (a case that could not run on this machine),
# naming each.  Usage: ctest-strict.sh BUILD [CTEST-ARGS...]
set -u
build=${1:?usage: ctest-strict.sh BUILD [CTEST-ARGS...]}
shift
junit=ctest-strict.xml
rm -f "$build/$junit"
(cd "$build" && ctest --output-junit "$junit" --test-output-size-passed 1048576 --test-output-size-failed 1048576 "$@")
rc=$?
[ -f "$build/$junit" ] || { echo "ctest-strict: ctest wrote no $build/$junit"; exit 1; }
# one line per test case: its name, its status, whether its output says SKIPPED
skipped=$(awk '
	/<testcase / { match($0, /name="[^"]*"/); name = substr($0, RSTART + 6, RLENGTH - 7)
		match($0, /status="[^"]*"/); status = substr($0, RSTART + 8, RLENGTH - 9); inner = 0 }
	/<skipped/ { if (name != "") print name ": not run (" status ", skipped)" }
	/\[  SKIPPED \] [^0-9]/ { if (name != "") { line = $0; sub(/.*\[  SKIPPED \] */, "", line); if (!seen[name, line]++) print name ": case " line " skipped" } }
	/<\/testcase>/ { name = "" }
' "$build/$junit")
if [ -n "$skipped" ]; then
	echo "ctest-strict: suites that could not run (make test requires every suite):"
	echo "$skipped" | sed 's/^/  /'
	exit 1
fi
exit $rc
