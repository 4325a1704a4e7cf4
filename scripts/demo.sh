#!/bin/sh
# The importanced demo: a daemon, a background server at nice 10 and a
# foreground client (a donor by the daemon's policy: its uid).  Prints the
# server's nice value every 250 ms: 10 while idle, 0 while the client's
# request waits for it or is being worked on, 10 again once it is done.
set -eu
build=${1:-build}
sock=$(mktemp -u /tmp/importanced-demo.XXXXXX.sock)
export IMPORTANCED_SOCKET=$sock
donor_uid=65534
log=$(mktemp)
cleanup() {
	kill "$dpid" 2>/dev/null || true
	[ -n "${mpid:-}" ] && kill "$mpid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -f "$log"
}
trap cleanup EXIT
"$build/importanced" --socket "$sock" --donor-uid $donor_uid 2>"$log" &
dpid=$!
i=0
until "$build/impctl" status >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -lt 200 ] || { cat "$log"; exit 1; }; sleep 0.05
done
echo "== importanced $(sed -n 's/.*listening on [^,]*, //p' "$log")"
"$build/impctl" monitor | sed -u "s/^/monitor: /" &
mpid=$!

"$build/imp-demo" server demo.echo --busy-ms 1500 --work-ms 1000 --requests 2 &
spid=$!
sleep 0.3
"$build/imp-demo" client demo.echo --uid $donor_uid --requests 2 --interval-ms 1500 &
cpid=$!
start=$(date +%s.%N)
while kill -0 "$spid" 2>/dev/null; do
	ni=$(ps -o ni= -p "$spid" 2>/dev/null | tr -d ' ') || break
	[ -n "$ni" ] || break
	t=$(awk -v s="$start" -v n="$(date +%s.%N)" 'BEGIN { printf "%5.2f", n - s }')
	bar=$( [ "$ni" -lt 10 ] && echo "BOOSTED" || echo "background")
	printf 't=%ss  server nice %3s  %s\n' "$t" "$ni" "$bar"
	sleep 0.25
done
wait "$cpid" || true
echo "== impctl status"
"$build/impctl" status
