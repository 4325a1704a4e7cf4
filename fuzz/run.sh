#!/bin/sh
# run.sh TARGET SCRATCH_CORPUS ARGS...: runs a libFuzzer target, prints the
# closing statistics, and fails (with the log's end) when it found a bug.
target=$1; shift
log=$(mktemp)
if "$target" "$@" -print_final_stats=1 >"$log" 2>&1; then
	grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log"
	rm -f "$log"
else
	rc=$?
	tail -40 "$log"
	rm -f "$log"
	echo "fuzzer $(basename "$target") failed (exit $rc)"
	exit 1
fi
