#!/bin/sh
# The importanced demo: what importance donation changes for a person
# waiting on a background service.  A server at nice 10 does 10 ms of CPU
# work per request.  A client sends it the same requests three times: on an
# idle machine; with four busy loops running elsewhere, as a client that is
# not a donor; and with the same load as a donor (a foreground app, by the
# daemon's policy: its uid).  The latencies are printed side by side.
set -eu
build=${1:-build}
sock=$(mktemp -u /tmp/importanced-demo.XXXXXX.sock)
export IMPORTANCED_SOCKET=$sock
donor_uid=65534
other_uid=65533
requests=10
work=$(mktemp -d)
loads=""
cleanup() {
	for p in $loads; do kill "$p" 2>/dev/null || true; done
	kill "$dpid" 2>/dev/null || true
	[ -n "${spid:-}" ] && kill "$spid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
"$build/importanced" --socket "$sock" --donor-uid $donor_uid --state-dir "$work/state" 2>"$work/log" &
dpid=$!
i=0
until "$build/impctl" status >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -lt 200 ] || { cat "$work/log"; exit 1; }; sleep 0.05
done
echo "== importanced: how it boosts here"
sed -n 's/^importanced: backend/backend/p; /^  /p' "$work/log"
echo
"$build/imp-demo" server demo.echo --busy-ms 0 --cpu-ms 10 --requests $((requests * 3)) &
spid=$!
sleep 0.3
echo "== a background server at nice 10, 10 ms of CPU work per request; $requests requests each time"
"$build/imp-demo" client demo.echo --uid $donor_uid --requests $requests --interval-ms 50 --times > "$work/idle"
for n in 1 2 3 4; do
	"$build/imp-demo" load & loads="$loads $!"
done
sleep 0.5
"$build/imp-demo" client demo.echo --uid $other_uid --requests $requests --interval-ms 50 --times > "$work/other"
"$build/imp-demo" client demo.echo --uid $donor_uid --requests $requests --interval-ms 50 --times > "$work/donor"
for p in $loads; do kill "$p" 2>/dev/null || true; done
loads=""
echo
printf '%-9s %14s %24s %24s\n' request "idle machine" "4 busy loops, no donor" "4 busy loops, a donor"
paste "$work/idle" "$work/other" "$work/donor" |
	awk -v n=$requests '{ printf "%-9d %11.1f ms %21.1f ms %21.1f ms\n", NR, $1, $2, $3
		a[NR] = $1; b[NR] = $2; c[NR] = $3 }
	function med(v,   i, j, t, s) { for (i = 1; i <= n; i++) s[i] = v[i]
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (s[j] < s[i]) { t = s[i]; s[i] = s[j]; s[j] = t }
		return (s[int((n + 1) / 2)] + s[int(n / 2) + 1]) / 2 }
	END { printf "%-9s %11.1f ms %21.1f ms %21.1f ms\n", "median", med(a), med(b), med(c)
	      printf "\nUnder load the donor'\''s requests take %.1fx the idle time, the others %.1fx.\n", med(c) / med(a), med(b) / med(a) }'
wait "$spid" 2>/dev/null || true
spid=""
echo
echo "== impctl status"
"$build/impctl" status
