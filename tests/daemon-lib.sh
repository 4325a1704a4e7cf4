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
# setting KEY: the unit file $unit's last KEY= value
setting() { sed -n "s/^$1=//p" "$unit" | tail -n 1; }
# as USER CMD...: CMD as USER (uid and gid), no supplementary groups; exec,
# so that run in the background, in $(...) or in a subshell, $! or the
# subshell is then CMD's process itself
as() { u=$1; shift; exec setpriv --reuid="$u" --regid="$u" --clear-groups "$@"; }
now_ms() { date +%s%3N; }
# a process's nice value (field 19 of /proc/PID/stat, the 17th after the name)
nice_of() {
	read -r line <"/proc/$1/stat" || return 1
	# shellcheck disable=SC2086
	set -- ${line##*) }
	echo "${17}"
}
# within MS CMD...: waits until CMD succeeds, up to MS ms; prints the ms taken
within() {
	limit=$1 t0=$(now_ms)
	shift
	until "$@"; do
		[ $(($(now_ms) - t0)) -gt "$limit" ] && return 1
		sleep 0.01
	done
	echo $(($(now_ms) - t0))
}
