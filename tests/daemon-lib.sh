# Sourced by the shell tests that start importanced: $tmp is their
# scratch folder (its log in $tmp/log), $pid the daemon's pid.
fail() { echo "FAIL: $*"; [ -f "$tmp/log" ] && sed 's/^/  log: /' "$tmp/log"; exit 1; }
# waits up to 20 s for the daemon's socket $1, failing if the daemon exits
wait_socket() {
	i=0
	while [ ! -S "$1" ]; do
		i=$((i + 1)); [ $i -gt 200 ] && fail "importanced did not start"
		kill -0 "$pid" 2>/dev/null || fail "importanced exited"
		sleep 0.1
	done
}
