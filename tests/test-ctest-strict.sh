#!/bin/sh
# scripts/ctest-strict.sh, which `make test` runs ctest through, fails the
# run and names the suite when a test exits 77 (SKIP_RETURN_CODE) or a
# cmocka case in it says "[  SKIPPED ]", and passes a run where all ran.
# Usage: test-ctest-strict.sh SOURCE-DIR
set -u
src=${1:?usage: test-ctest-strict.sh SOURCE-DIR}
tmp=$(mktemp -d /tmp/imp-ctest-strict.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; cat "$tmp/out" 2>/dev/null; exit 1; }
project() {
	mkdir -p "$tmp/$1"
	{
		echo 'cmake_minimum_required(VERSION 3.16)'
		echo 'project(strict NONE)'
		echo 'enable_testing()'
		echo 'add_test(NAME fine COMMAND sh -c "echo [  PASSED  ] 1 test")'
		echo "$2"
	} >"$tmp/$1/CMakeLists.txt"
	cmake -S "$tmp/$1" -B "$tmp/$1/build" >/dev/null || fail "cmake $1"
}
project clean ''
project exit77 'add_test(NAME cannot-run COMMAND sh -c "exit 77")
set_tests_properties(cannot-run PROPERTIES SKIP_RETURN_CODE 77)'
# what a cmocka run with a skipped case prints (the case, then the summary)
printf '[  SKIPPED ] test_needs_a_bus\n[  SKIPPED ] 1 test(s), listed below:\n[  SKIPPED ] test_needs_a_bus\n' \
	>"$tmp/cases.sh.out"
printf 'cat "%s"\n' "$tmp/cases.sh.out" >"$tmp/cases.sh"
project cmocka "add_test(NAME some-cases COMMAND sh $tmp/cases.sh)"

sh "$src/scripts/ctest-strict.sh" "$tmp/clean/build" >"$tmp/out" 2>&1 || fail "a run where everything ran failed"
sh "$src/scripts/ctest-strict.sh" "$tmp/exit77/build" >"$tmp/out" 2>&1 && fail "a test that exited 77 passed the run"
grep -q "cannot-run: not run" "$tmp/out" || fail "the skipped test is not named"
sh "$src/scripts/ctest-strict.sh" "$tmp/cmocka/build" >"$tmp/out" 2>&1 && fail "a skipped cmocka case passed the run"
[ "$(grep -c 'some-cases: case test_needs_a_bus skipped' "$tmp/out")" = 1 ] || fail "the skipped case is not named once"
echo "ctest-strict: skips fail the run, each named"
