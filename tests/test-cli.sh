#!/bin/sh
# Every wrong invocation of imp, impctl and importanced says what was wrong
# (and where to read more) and exits 2; --help and --version work without a
# daemon; impctl without a daemon names the socket it tried.
# Usage: test-cli.sh IMP IMPCTL EXAMPLES_DIR [IMPORTANCED]
imp=${1:?usage: test-cli.sh IMP IMPCTL EXAMPLES_DIR}
impctl=${2:?usage: test-cli.sh IMP IMPCTL EXAMPLES_DIR}
examples=${3:?usage: test-cli.sh IMP IMPCTL EXAMPLES_DIR}
importanced=${4:-}
pass=0 fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# no daemon may answer here, whatever the machine runs
IMPORTANCED_SOCKET=$tmp/no-daemon.sock
export IMPORTANCED_SOCKET

# expect STATUS 'TEXT' [stdout|stderr] -- COMMAND...: COMMAND exits STATUS
# and TEXT (a fixed string) is in the named output (stderr by default).
expect() {
	want_status=$1 text=$2
	shift 2
	where=stderr
	if [ "$1" != -- ]; then
		where=$1
		shift
	fi
	shift # --
	"$@" >"$tmp/stdout" 2>"$tmp/stderr"
	status=$?
	if [ "$status" = "$want_status" ] && grep -qF -- "$text" "$tmp/$where"; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		echo "FAIL: $*: exit $status (want $want_status), $where lacks '$text':"
		sed 's/^/  | /' "$tmp/$where" | head -5
	fi
}

ex=$examples/foreground-chain.imp
printf 'task A donor\nbogus_op\n' >"$tmp/bad.imp"
printf 'task A donor\ntask B receiver\nport P owner=B donate\nsend M from=A to=P\nreceive M voucher=V\nbogus_op\n' >"$tmp/boosted-then-bad.imp"
printf 'task A donor\ntask B receiver\nport P owner=B donate\nsend M from=A to=P\nsend N from=A to=P\nreceive M\nreceive N voucher=V\nvoucher_drop V 0\ndonating A\n' >"$tmp/donating.imp"

# imp
expect 2 "no command given" -- "$imp"
expect 2 "Try 'imp --help'" -- "$imp"
expect 2 "unknown command 'bogus'" -- "$imp" bogus
expect 2 "unknown option '--bogus'" -- "$imp" --bogus
expect 2 "unknown option '--bogus' for run" -- "$imp" run --bogus "$ex"
expect 2 "unknown option '--json' for graph" -- "$imp" graph --json "$ex"
expect 2 "no scenario given" -- "$imp" run
expect 2 "one scenario at a time" -- "$imp" run "$ex" "$ex"
expect 2 "is a directory" -- "$imp" run "$examples"
expect 2 "cannot open $tmp/missing.imp: No such file or directory" -- "$imp" run "$tmp/missing.imp"
expect 2 "--until needs a line number" -- "$imp" graph "$ex" --until
expect 2 "not 'abc'" -- "$imp" graph --until abc "$ex"
expect 2 "--until 999 is past the end of the scenario" -- "$imp" graph --until 999 "$ex"
expect 0 "usage: imp run" stdout -- "$imp" --help
expect 0 "imp (importance) " stdout -- "$imp" --version
# a scenario error stops the trace: nothing the teardown releases is printed
expect 2 "unknown operation 'bogus_op'" -- "$imp" run "$tmp/boosted-then-bad.imp"
if grep -q unboost "$tmp/stdout"; then
	fail=$((fail + 1)); echo "FAIL: teardown after a scenario error printed: $(cat "$tmp/stdout")"
else
	pass=$((pass + 1))
fi
# JSON: donating pids are a list
expect 0 '"pids":[' stdout -- "$imp" run --json "$tmp/donating.imp"

# impctl: all of these without a daemon
expect 0 "usage: impctl" stdout -- "$impctl" --help
expect 0 "impctl (importance) " stdout -- "$impctl" --version
expect 2 "no command given" -- "$impctl"
expect 2 "unknown command 'bogus'" -- "$impctl" bogus
expect 2 "Try 'impctl --help'" -- "$impctl" bogus
expect 2 "unknown option '--bogus'" -- "$impctl" --bogus status
expect 2 "--socket needs the path" -- "$impctl" --socket
expect 2 "status takes no arguments" -- "$impctl" status now
expect 2 "--count takes a number from 0" -- "$impctl" monitor --count abc
expect 2 "not '-1'" -- "$impctl" monitor --count -1
expect 2 "--count needs a number" -- "$impctl" monitor --count
expect 2 "donor takes a pid and on or off" -- "$impctl" donor 1
expect 2 "not 'maybe'" -- "$impctl" donor 1 maybe
expect 1 "cannot connect to importanced at $IMPORTANCED_SOCKET: No such file or directory (is importanced running? --socket PATH)" -- "$impctl" status
expect 1 "cannot connect to importanced at $tmp/other.sock" -- "$impctl" --socket "$tmp/other.sock" tasks

# importanced: its options are the configuration keys, checked alike
if [ -n "$importanced" ]; then
	expect 0 "--max-user-connections N" stdout -- "$importanced" --help
	expect 0 "importanced (importance) " stdout -- "$importanced" --version
	expect 2 "unknown option '--bogus' (importanced --help lists them)" -- "$importanced" --no-config --bogus 1
	expect 2 "'stray': not an option" -- "$importanced" --no-config stray
	expect 2 "--max-ports: needs a value" -- "$importanced" --no-config --max-ports
	expect 2 "max-ports: 'lots' is not a whole number" -- "$importanced" --no-config --max-ports lots
	expect 2 "boost-nice: -21 is out of range (-20..19)" -- "$importanced" --no-config --boost-nice -21
	expect 2 "donor-uid: 'nobody-such' is neither a uid nor a user name" -- "$importanced" --no-config --donor-uid nobody-such
	expect 2 "backend: 'fast' is not one of auto, cgroup, cgroup-v2, cgroup-v1, autogroup, nice, none" -- "$importanced" --no-config --backend fast
	expect 2 "--config and --no-config together" -- "$importanced" --no-config --config /dev/null
	expect 2 "$tmp/none.conf: No such file or directory" -- "$importanced" --config "$tmp/none.conf"
	printf 'max-ports 8\nbogus-key 1\n' >"$tmp/bad.conf"
	expect 2 "$tmp/bad.conf:2: unknown key 'bogus-key'" -- "$importanced" --config "$tmp/bad.conf"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
