#!/bin/sh
# importanced reads FILE.d/NAME.conf after FILE at start and again on
# SIGHUP: a bad drop-in stops the start, naming file:line; a drop-in made
# bad while running has its reload refused (the configuration in force
# stays), naming file:line; fixed, the next SIGHUP reloads.
# Usage: test-dropin-reload.sh IMPORTANCED
set -u
daemon=${1:?usage: test-dropin-reload.sh IMPORTANCED}
tmp=$(mktemp -d /tmp/imp-dropin.XXXXXX)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
. "$(dirname "$0")/daemon-lib.sh"
# waits up to 20 s for the log to say $1
wait_log() {
	i=0
	while ! grep -q -- "$1" "$tmp/log" 2>/dev/null; do
		i=$((i + 1)); [ $i -gt 200 ] && return 1
		sleep 0.1
	done
}
mkdir -m 0700 "$tmp/state"
conf=$tmp/importanced.conf
printf 'backend nice\nsocket %s\nstate-dir %s\n' "$tmp/sock" "$tmp/state" >"$conf"
mkdir "$conf.d"

# a bad drop-in stops the start, naming the file and the line
printf 'max-ports 8\n\nmax-vouchers lots\n' >"$conf.d/10-bad.conf"
"$daemon" --config "$conf" >"$tmp/log" 2>&1 && fail "started with a bad drop-in"
grep -q "$conf.d/10-bad.conf:3: max-vouchers" "$tmp/log" || fail "the start's error does not name 10-bad.conf:3"

# a directory as --config is refused, saying so
"$daemon" --config "$conf.d" >"$tmp/log" 2>&1 && fail "started with --config DIR"
grep -q "not a regular file" "$tmp/log" || fail "--config DIR: no clear error"

# good: starts; made bad: the reload is refused with file:line; fixed: reloads
printf 'max-ports 8\n' >"$conf.d/10-bad.conf"
"$daemon" --config "$conf" >"$tmp/log" 2>&1 &
pid=$!
wait_socket "$tmp/sock"
printf 'max-ports 8\nmax-ports 0\n' >"$conf.d/10-bad.conf"
kill -HUP "$pid"
wait_log "reload refused.*10-bad.conf:2: max-ports" || fail "SIGHUP did not read the drop-in"
kill -0 "$pid" 2>/dev/null || fail "importanced died on a bad reload"
printf 'max-ports 9\n' >"$conf.d/10-bad.conf"
kill -HUP "$pid"
wait_log "configuration reloaded" || fail "SIGHUP did not reload the fixed drop-in"
kill "$pid"
wait "$pid"
pid=""
echo "drop-ins: start, refusal and reload as expected"
