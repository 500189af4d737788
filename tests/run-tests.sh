#!/bin/sh
# run-tests.sh - runs the Check test binaries against a throwaway PostgreSQL.
#
#   AUDSYNC_BIN=... FAKE_MIXPANEL=... sh tests/run-tests.sh TESTBIN...
#
# (`make test` calls it so.) Starts one PostgreSQL in a temporary directory
# (tests/pg.sh) and removes it on exit, interrupt or failure. Each test
# binary then runs in turn, with these in its environment:
#   PGHOST PGPORT PGUSER PGDATABASE   the server (libpq reads them)
#   AUDSYNC_TEST_PGDIR    the cluster's directory: sh tests/pg.sh restart DIR
#   AUDSYNC_TEST_PGSH     the path of tests/pg.sh
#   AUDSYNC_TEST_TMPDIR   a scratch directory, removed afterwards
#   AUDSYNC_BIN FAKE_MIXPANEL   as given (unset when empty); no AUDSYNC_DB
#   CK_FORK=yes CK_DEFAULT_TIMEOUT=300
# Then every tests/*.test.sh (shell tests; their last line must read
# "N passed, M failed"). The last line printed is "N passed, M failed" over
# everything: a binary that ends without Check's summary counts as one
# failure. Exits 1 when anything failed.
set -u

here=$(cd "$(dirname "$0")" && pwd)
. "$here/harness.sh"
harness_start tests
CK_FORK=yes
CK_DEFAULT_TIMEOUT=300
CK_VERBOSITY=normal
export CK_FORK CK_DEFAULT_TIMEOUT CK_VERBOSITY

passed=0
failed=0
bad=0
results=

# Adds one line to the per-binary results.
result() {
	results="$results$(printf '  %-28s %s' "$1" "$2")
"
}

# Check's first failure lines of a log, under its row of the results:
# what a CI page that shows only the end of the output needs.
failures() {
	results="$results$(grep -E '^[^ ]+:[0-9]+:[EF]:' "$1" | head -n 3 |
		cut -c 1-300 | sed 's/^/      /')
"
}

# Runs "$@" with its output shown and kept in $log; sets $rc.
run_logged() {
	{
		"$@" 2>&1
		echo $? >"$tmp/rc"
	} | tee "$log"
	rc=$(cat "$tmp/rc")
}

for bin in "$@"; do
	name=$(basename "$bin")
	log=$tmp/logs/$name.log
	echo "== $name"
	if [ ! -x "$bin" ]; then
		echo "run-tests: $bin is not an executable" >&2
		failed=$((failed + 1))
		bad=1
		result "$name" "missing"
		continue
	fi
	run_logged "$bin"
	# One summary per srunner run; a binary may run several.
	counts=$(awk '
		/^[0-9]+%: Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+/ {
			gsub(/,/, "")
			n += $3; f += $5; e += $7; s = 1
		}
		END { if (s) print n - f - e, f + e }' "$log")
	if [ -z "$counts" ]; then
		failed=$((failed + 1))
		bad=1
		result "$name" "CRASHED: exit $rc without a Check summary"
		continue
	fi
	p=${counts% *}
	f=${counts#* }
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$rc" != 0 ]; then
		bad=1
		result "$name" "$p passed, $f failed (exit $rc)"
	else
		result "$name" "$p passed, $f failed"
	fi
	[ "$f" = 0 ] || failures "$log"
done

# Shell tests: tests/*.test.sh report their own counts.
for t in "$here"/*.test.sh; do
	[ -f "$t" ] || continue
	name=$(basename "$t")
	log=$tmp/logs/$name.log
	echo "== $name"
	if [ -x "$t" ]; then
		run_logged "$t"
	else
		run_logged sh "$t"
	fi
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
	if [ -z "$line" ]; then
		failed=$((failed + 1))
		bad=1
		result "$name" "CRASHED: exit $rc without a 'N passed, M failed' line"
		continue
	fi
	p=${line%% passed*}
	f=${line#*, }
	f=${f%% failed}
	passed=$((passed + p))
	failed=$((failed + f))
	[ "$rc" = 0 ] || bad=1
	result "$name" "$line$([ "$rc" = 0 ] || echo " (exit $rc)")"
done

if [ "$failed" -gt 0 ] || [ "$bad" != 0 ]; then
	echo
	echo "== PostgreSQL log (last 30 lines)"
	tail -n 30 "$tmp/pg/log" 2>/dev/null
fi
echo
echo "== results"
printf '%s' "$results"
echo "$passed passed, $failed failed"
if [ "$failed" -eq 0 ] && [ "$bad" = 0 ]; then
	exit 0
fi
exit 1
