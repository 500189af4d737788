#!/bin/sh
# check-deploy.sh DEPLOY_DIR MAN_PAGE - what no test binary can reach:
# systemd-analyze security scores every unit of DEPLOY_DIR at 2.0 or
# lower (offline, as a packager's CI would), mandoc -T lint finds nothing
# in the man page, and the cron line keeps audsync's exit status and each
# line's priority. `make check-deploy` runs it; so does CI.
set -u
dir=$1
man=$2
fail=0

for unit in "$dir"/*.service; do
	out=$(cd "$dir" && systemd-analyze security --offline=true \
		"$(basename "$unit")" 2>&1)
	score=$(printf '%s\n' "$out" | sed -n \
		's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
	if [ -z "$score" ]; then
		printf '%s\n' "$out" >&2
		echo "check-deploy: no score for $unit" >&2
		fail=1
	elif awk "BEGIN { exit !($score > 2.0) }"; then
		printf '%s\n' "$out" | grep '✗' >&2
		echo "check-deploy: $(basename "$unit") scores $score (> 2.0)" >&2
		fail=1
	else
		echo "check-deploy: $(basename "$unit") scores $score"
	fi
done

# mandoc -T lint at warning level: its style notes include "manual not
# found" for a SEE ALSO page the machine lacks.
if ! mandoc -T lint -W warning "$man"; then
	echo "check-deploy: mandoc -T lint complains about $man" >&2
	fail=1
else
	echo "check-deploy: $man is lint-clean"
fi

# The cron line, run with stand-ins for audsync and logger: the exit
# status is audsync's, every line reaches logger with its <N> prefix,
# and a failure adds an error line.
tmp=$(mktemp -d)
cmd=$(sed -n 's/^\* \* \* \* \* audsync flock -n [^ ]* //p' \
	"$dir/audsync.cron")
bindir=$(sed -n 's/^PATH=\([^:]*\):.*/\1/p' "$dir/audsync.cron")
mkdir -p "$tmp/bin"
cat > "$tmp/bin/audsync" <<'END'
#!/bin/sh
[ "$AUDSYNC_LOG_PRIORITY_PREFIX" = 1 ] || echo "no prefix asked" >&2
echo '<3>ts=x level=error msg="sync run failed"' >&2
exit 1
END
cat > "$tmp/bin/logger" <<END
#!/bin/sh
echo "logger \$*" >> "$tmp/logged"
cat >> "$tmp/logged"
END
chmod +x "$tmp/bin/audsync" "$tmp/bin/logger"
: > "$tmp/audsync.env"
cmd=$(printf '%s' "$cmd" | sed -e "s|$bindir/audsync|$tmp/bin/audsync|g" \
	-e "s|[^ ]*/audsync/audsync.env|$tmp/audsync.env|")
PATH="$tmp/bin:$PATH" sh -c "$cmd"
status=$?
if [ "$status" != 1 ] ||
	! grep -q '^<3>ts=x level=error' "$tmp/logged" ||
	! grep -q '^<3>audsync run exited with status 1' "$tmp/logged" ||
	grep -q 'no prefix asked' "$tmp/logged" ||
	[ "$(grep -c -- '^logger --prio-prefix -t audsync' "$tmp/logged")" != 2 ]; then
	echo "check-deploy: the cron line lost the status ($status) or" \
		"the priorities:" >&2
	cat "$tmp/logged" >&2
	fail=1
else
	echo "check-deploy: the cron line keeps the exit status and priorities"
fi
rm -rf "$tmp"
exit $fail
