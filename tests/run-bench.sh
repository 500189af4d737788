#!/bin/sh
# run-bench.sh - runs the bench binaries against a throwaway PostgreSQL and
# prints what they measure.
#
#   AUDSYNC_BIN=... FAKE_MIXPANEL=... sh tests/run-bench.sh BENCHBIN...
#
# (`make bench` calls it so.) The server and the environment are those of
# tests/run-tests.sh: PGHOST PGPORT PGUSER PGDATABASE, AUDSYNC_TEST_PGDIR,
# AUDSYNC_TEST_PGSH, AUDSYNC_TEST_TMPDIR; all removed on exit, interrupt or
# failure. Figures are printed, never judged; exits 1 when a bench binary
# fails.
set -u

here=$(cd "$(dirname "$0")" && pwd)
if [ $# -eq 0 ]; then
	echo "run-bench: no bench binaries (tests/bench_*.c) to run"
	exit 0
fi
. "$here/harness.sh"
harness_start bench

failed=0
for bin in "$@"; do
	name=$(basename "$bin")
	echo "== $name"
	if [ ! -x "$bin" ]; then
		echo "run-bench: $bin is not an executable" >&2
		failed=$((failed + 1))
		continue
	fi
	"$bin"
	rc=$?
	if [ "$rc" != 0 ]; then
		echo "run-bench: $name failed (exit $rc)" >&2
		failed=$((failed + 1))
	fi
done

echo
if [ "$failed" -gt 0 ]; then
	echo "run-bench: $failed of $# bench binaries failed"
	exit 1
fi
echo "run-bench: $# bench binaries done"
exit 0
