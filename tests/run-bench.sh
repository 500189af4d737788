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
# fails. As root on Linux the server's shared memory is in huge pages
# (below; BENCH_HUGE_PAGES=0 for 4 KiB pages).
set -u

here=$(cd "$(dirname "$0")" && pwd)
if [ $# -eq 0 ]; then
	echo "run-bench: no bench binaries (tests/bench_*.c) to run"
	exit 0
fi
. "$here/harness.sh"

# The server's shared memory in huge pages, as the README advises for a
# production server: every audsync run is a fresh backend, and on 4 KiB
# pages it takes a page fault for each shared buffer it touches first
# (half the time of a rule's hourly run on the bench machine). As root on
# Linux the bench reserves the pages its server needs (its shared_buffers,
# 256 MB unless BENCH_SHARED_BUFFERS_MB says otherwise, and some more)
# for its own duration, then gives them back; BENCH_HUGE_PAGES=0
# measures on 4 KiB pages. The server's huge_pages is left at
# PostgreSQL's default, try. The first line says which was used.
sb_mb=${BENCH_SHARED_BUFFERS_MB:-256}
case $sb_mb in
'' | *[!0-9]*)
	echo "run-bench: BENCH_SHARED_BUFFERS_MB must be a number of MB," \
		"not '$sb_mb'" >&2
	exit 2
	;;
esac
AUDSYNC_PG_SHARED_BUFFERS=${sb_mb}MB
export AUDSYNC_PG_SHARED_BUFFERS
hp_file=/proc/sys/vm/nr_hugepages
hp_need=$((sb_mb / 2 + 32))
hp_restore=
hp_value() {
	awk -v k="$1:" '$1 == k { print $2 }' /proc/meminfo 2>/dev/null
}
hp_reserve() {
	[ "${BENCH_HUGE_PAGES:-1}" != 0 ] || return 1
	[ "$(id -u)" = 0 ] && [ -w "$hp_file" ] || return 1
	[ "$(hp_value Hugepagesize)" = 2048 ] || return 1
	_free=$(hp_value HugePages_Free)
	_total=$(cat "$hp_file")
	[ "$_free" -ge "$hp_need" ] && return 0
	hp_restore=$_total
	echo $((_total + hp_need - _free)) >"$hp_file" 2>/dev/null
	[ "$(hp_value HugePages_Free)" -ge "$hp_need" ]
}
hp_release() {
	if [ -n "$hp_restore" ]; then
		echo "$hp_restore" >"$hp_file" 2>/dev/null
		hp_restore=
	fi
}
hp_used() {
	_t=$(hp_value HugePages_Total)
	if [ -z "$_t" ]; then
		echo 0
		return
	fi
	echo $((_t - $(hp_value HugePages_Free) + $(hp_value HugePages_Rsvd)))
}

hp_reserve || hp_release
hp_before=$(hp_used)
harness_exit_hook=hp_release
harness_start bench
echo "run-bench: shared_buffers $AUDSYNC_PG_SHARED_BUFFERS" \
	"(BENCH_SHARED_BUFFERS_MB sets it)"
if [ "$(hp_used)" -gt "$hp_before" ]; then
	echo "run-bench: the server's shared memory is in huge pages" \
		"(BENCH_HUGE_PAGES=0 measures on 4 KiB pages)"
else
	echo "run-bench: the server's shared memory is in 4 KiB pages" \
		"(huge pages need root on Linux; see the README)"
fi

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
