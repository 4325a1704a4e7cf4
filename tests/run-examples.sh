#!/bin/sh
# Every example must run cleanly, pass the verifier and draw a graph.
imp=${1:?usage: run-examples.sh IMP DIR}
dir=${2:?usage: run-examples.sh IMP DIR}
n=0 bad=0
for ex in "$dir"/*.imp; do
	[ -f "$ex" ] || continue
	n=$((n + 1))
	if ! "$imp" run --verify "$ex" >/dev/null; then
		bad=$((bad + 1)); echo "FAIL: run $(basename "$ex")"; continue
	fi
	if ! "$imp" graph "$ex" | grep -q '^digraph importance'; then
		bad=$((bad + 1)); echo "FAIL: graph $(basename "$ex")"
	fi
done
echo "$((n - bad)) passed, $bad failed"
[ "$bad" -eq 0 ] && [ "$n" -gt 0 ]
