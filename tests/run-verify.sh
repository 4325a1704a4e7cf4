#!/bin/sh
# Runs every scenario of a folder with `imp run --verify`: the invariant
# checker runs after every operation.  Exit status 3 is a violation.
imp=${1:?usage: run-verify.sh IMP DIR}
dir=${2:?usage: run-verify.sh IMP DIR}
bad=0 n=0
for case in "$dir"/*.imp; do
	[ -f "$case" ] || continue
	n=$((n + 1))
	"$imp" run --verify "$case" >/dev/null 2>/tmp/imp-verify.$$
	if [ $? -eq 3 ]; then
		bad=$((bad + 1))
		echo "VIOLATION: $(basename "$case"): $(cat /tmp/imp-verify.$$)"
	fi
done
rm -f /tmp/imp-verify.$$
echo "$((n - bad)) passed, $bad failed"
[ "$bad" -eq 0 ] && [ "$n" -gt 0 ]
