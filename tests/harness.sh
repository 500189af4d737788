# harness.sh - sourced by run-tests.sh and run-bench.sh: a throwaway
# PostgreSQL and the environment the test and bench binaries expect.
#
#   here=DIR-OF-THIS-FILE; . "$here/harness.sh"; harness_start NAME
#
# Creates $tmp (removed on exit, interrupt or failure, with the server),
# starts PostgreSQL in $tmp/pg and exports PGHOST PGPORT PGUSER PGDATABASE,
# AUDSYNC_TEST_PGDIR, AUDSYNC_TEST_PGSH and AUDSYNC_TEST_TMPDIR ($tmp/scratch).
# AUDSYNC_DB and other PG* variables that would point elsewhere are unset;
# an empty AUDSYNC_BIN or FAKE_MIXPANEL means "not given".

tmp=
# A command to run on exit after the server has stopped (run-bench.sh gives
# back the huge pages it reserved).
harness_exit_hook=

harness_cleanup() {
	if [ -n "$tmp" ] && [ -d "$tmp" ]; then
		sh "$here/pg.sh" stop "$tmp/pg" >/dev/null 2>&1
		rm -rf "$tmp"
	fi
	[ -z "$harness_exit_hook" ] || $harness_exit_hook
}

harness_start() {
	trap harness_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
	trap 'exit 141' PIPE
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/audsync-$1.XXXXXX") || exit 1
	# As root the server runs as another user, who must reach it.
	chmod 755 "$tmp"
	mkdir "$tmp/scratch" "$tmp/logs"
	if ! pgenv=$(sh "$here/pg.sh" start "$tmp/pg"); then
		echo "run-$1: could not start PostgreSQL" >&2
		exit 1
	fi
	eval "$pgenv"
	unset AUDSYNC_DB PGHOSTADDR PGSERVICE PGSERVICEFILE PGPASSWORD \
		PGOPTIONS PGSSLMODE
	[ -n "${AUDSYNC_BIN:-}" ] || unset AUDSYNC_BIN
	[ -n "${FAKE_MIXPANEL:-}" ] || unset FAKE_MIXPANEL
	AUDSYNC_TEST_PGDIR=$tmp/pg
	AUDSYNC_TEST_PGSH=$here/pg.sh
	AUDSYNC_TEST_TMPDIR=$tmp/scratch
	export AUDSYNC_TEST_PGDIR AUDSYNC_TEST_PGSH AUDSYNC_TEST_TMPDIR
	echo "run-$1: PostgreSQL at $PGHOST port $PGPORT"
}
