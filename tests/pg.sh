#!/bin/sh
# pg.sh - a throwaway PostgreSQL for the tests, the bench and the demo.
#
#   eval "$(sh tests/pg.sh start DIR)"   initdb into DIR/data (or reuse the
#                                        cluster there) and start it; prints
#                                        export lines for PGHOST PGPORT
#                                        PGUSER PGDATABASE
#   sh tests/pg.sh env DIR               the export lines of a started cluster
#   sh tests/pg.sh status DIR            exit 0 when the cluster is running
#   sh tests/pg.sh restart DIR           restart it (fast shutdown)
#   sh tests/pg.sh stop DIR              stop it at once, then rm -rf DIR
#
# The server listens on a unix socket in DIR only (no TCP), with trust
# authentication and durability off: it is for data nobody needs to keep.
# Its shared_buffers are 256MB, or $AUDSYNC_PG_SHARED_BUFFERS at initdb
# (the bench's BENCH_SHARED_BUFFERS_MB).
# initdb and postgres refuse to run as root, so as root the cluster runs as
# the user "postgres" (or a system user "audsync-pg" created for it) and DIR
# is handed to that user.
#
# Other scripts reuse the functions: PG_SH_LIB=1 . ./tests/pg.sh
# then pg_start DIR, pg_env DIR, pg_running DIR, pg_stop DIR.
# Everything but the export lines goes to stderr.

pg_die() {
	echo "pg.sh: $*" >&2
	exit 1
}

# The directory of the server binaries: $PG_BINDIR, else pg_config's when it
# holds initdb (Debian's pg_config often points at the client only), else
# the newest /usr/lib/postgresql/*/bin.
pg_bindir() {
	if [ -n "${PG_BINDIR:-}" ] && [ -x "$PG_BINDIR/initdb" ]; then
		echo "$PG_BINDIR"
		return 0
	fi
	_d=$(pg_config --bindir 2>/dev/null) || _d=
	if [ -n "$_d" ] && [ -x "$_d/initdb" ] && [ -x "$_d/postgres" ]; then
		echo "$_d"
		return 0
	fi
	_best=
	for _d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null |
		sort -t/ -k5,5n); do
		[ -x "$_d/initdb" ] && [ -x "$_d/postgres" ] && _best=$_d
	done
	if [ -n "$_best" ]; then
		echo "$_best"
		return 0
	fi
	return 1
}

# The user the server runs as when we are root (creates it when needed).
pg_service_user() {
	if id -u postgres >/dev/null 2>&1; then
		echo postgres
		return 0
	fi
	if ! id -u audsync-pg >/dev/null 2>&1; then
		useradd --system --no-create-home --home-dir /nonexistent \
			--shell /usr/sbin/nologin audsync-pg >&2 ||
			pg_die "cannot create the system user audsync-pg"
	fi
	echo audsync-pg
}

# The user that owns PATH (ls -ld works everywhere).
pg_owner() {
	ls -ld "$1" 2>/dev/null | awk '{ print $3 }'
}

# Runs a command as the cluster's user (PG_RUNAS; empty: as ourselves),
# from a directory that user can read, so initdb and pg_ctl do not
# complain about the caller's working directory.
pg_as() {
	if [ -n "${PG_RUNAS:-}" ]; then
		(cd "$PG_HOME" && runuser -u "$PG_RUNAS" -- "$@")
	else
		(cd "$PG_HOME" && "$@")
	fi
}

# Where the cluster of DIR lives: DIR itself, or the short directory
# recorded in DIR/home when DIR was unusable (see pg_pick_home).
pg_home_of() {
	if [ -f "$1/home" ]; then
		cat "$1/home"
	else
		echo "$1"
	fi
}

# DIR as an absolute path: it names the socket directory.
pg_abs() {
	case "$1" in
	/*) echo "$1" ;;
	*) echo "$(pwd)/$1" ;;
	esac
}

# Sets PG_HOME, PG_RUNAS and PG_BIN for the cluster of DIR.
pg_locate() {
	PG_HOME=$(pg_home_of "$(pg_abs "$1")")
	PG_RUNAS=
	if [ "$(id -u)" = 0 ] && [ -d "$PG_HOME/data" ]; then
		PG_RUNAS=$(pg_owner "$PG_HOME/data")
		[ "$PG_RUNAS" = root ] && PG_RUNAS=
	fi
	PG_BIN=$(pg_bindir) || PG_BIN=
}

# Decides PG_HOME for a new cluster in DIR (which exists): DIR, unless the
# service user cannot write there (a repository under /root) or a socket
# path in it would be too long for a unix socket (107 bytes); then a fresh
# directory under /tmp, recorded in DIR/home so that stop removes it too.
pg_pick_home() {
	PG_HOME=$1
	if [ -n "$PG_RUNAS" ]; then
		chown "$PG_RUNAS" "$PG_HOME" || pg_die "cannot chown $PG_HOME"
		if runuser -u "$PG_RUNAS" -- test -w "$PG_HOME" -a -x "$PG_HOME" \
			2>/dev/null && [ ${#PG_HOME} -le 90 ]; then
			return 0
		fi
	elif [ ${#PG_HOME} -le 90 ]; then
		return 0
	fi
	PG_HOME=$(mktemp -d /tmp/audsync-pg.XXXXXX) ||
		pg_die "cannot create a directory under /tmp"
	echo "$PG_HOME" >"$1/home"
	[ -n "$PG_RUNAS" ] && chown "$PG_RUNAS" "$PG_HOME"
	echo "pg.sh: $1 is not usable for the server's socket; using $PG_HOME" >&2
}

# A port number. Sockets are per directory, so clusters in different
# directories never clash whatever the number; random keeps logs apart.
pg_pick_port() {
	_n=$(od -An -N2 -tu2 /dev/urandom 2>/dev/null | tr -d ' \n')
	[ -n "$_n" ] || _n=$$
	echo $((54000 + _n % 1000))
}

# Quotes a value for a shell (single quotes; inner ones escaped).
pg_quote() {
	printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}

pg_env() {
	pg_locate "$1"
	[ -f "$PG_HOME/port" ] || pg_die "no cluster in $1 (run: pg.sh start $1)"
	echo "export PGHOST=$(pg_quote "$PG_HOME")"
	echo "export PGPORT=$(cat "$PG_HOME/port")"
	echo "export PGUSER=postgres"
	echo "export PGDATABASE=postgres"
}

# Exit 0 when the cluster of DIR is running and answers on its socket
# (a stale pid file after a reboot may name a live, unrelated process).
pg_running() {
	pg_locate "$1"
	[ -n "$PG_BIN" ] && [ -f "$PG_HOME/data/postmaster.pid" ] || return 1
	pg_as "$PG_BIN/pg_ctl" -D "$PG_HOME/data" status >/dev/null 2>&1 ||
		return 1
	[ -x "$PG_BIN/pg_isready" ] && [ -f "$PG_HOME/port" ] || return 0
	"$PG_BIN/pg_isready" -q -h "$PG_HOME" -p "$(cat "$PG_HOME/port")"
	[ $? != 2 ]
}

pg_initdb() {
	_port=$(pg_pick_port)
	if ! pg_as "$PG_BIN/initdb" -D "$PG_HOME/data" -A trust --nosync \
		-E UTF8 --locale=C -U postgres >"$PG_HOME/initdb.log" 2>&1; then
		cat "$PG_HOME/initdb.log" >&2
		pg_die "initdb failed in $PG_HOME/data"
	fi
	_sock=$(printf '%s' "$PG_HOME" | sed "s/'/''/g")
	cat >>"$PG_HOME/data/postgresql.conf" <<EOF

# pg.sh: a throwaway cluster; nothing here needs to survive a crash.
port = $_port
listen_addresses = ''
unix_socket_directories = '$_sock'
fsync = off
full_page_writes = off
synchronous_commit = off
shared_buffers = ${AUDSYNC_PG_SHARED_BUFFERS:-256MB}
max_connections = 100
log_min_messages = warning
log_line_prefix = '%m [%p] %d '
EOF
	echo "$_port" >"$PG_HOME/port"
	if [ -n "$PG_RUNAS" ]; then
		chown "$PG_RUNAS" "$PG_HOME/port" "$PG_HOME/initdb.log"
	fi
}

pg_start() {
	[ -n "${1:-}" ] || pg_die "usage: pg.sh start DIR"
	set -- "$(pg_abs "$1")"
	if pg_running "$1"; then
		pg_env "$1"
		return 0
	fi
	PG_BIN=$(pg_bindir) || pg_die "PostgreSQL server binaries not found" \
		"(initdb in pg_config --bindir or /usr/lib/postgresql/*/bin);" \
		"run: sh scripts/deps.sh"
	PG_RUNAS=
	if [ "$(id -u)" = 0 ]; then
		command -v runuser >/dev/null 2>&1 ||
			pg_die "runuser is needed to start PostgreSQL as root"
		PG_RUNAS=$(pg_service_user) || exit 1
	fi
	mkdir -p "$1" || pg_die "cannot create $1"
	: >"$1/.pg.sh"
	PG_HOME=
	[ -f "$1/home" ] && PG_HOME=$(cat "$1/home")
	if [ -z "$PG_HOME" ] || [ ! -d "$PG_HOME" ]; then
		# New, or its /tmp home is gone (a reboot): start afresh.
		rm -f "$1/home"
		[ -L "$1/log" ] && rm -f "$1/log"
		pg_pick_home "$1"
	fi
	if [ ! -f "$PG_HOME/data/PG_VERSION" ]; then
		pg_initdb
	elif [ -n "$PG_RUNAS" ]; then
		PG_RUNAS=$(pg_owner "$PG_HOME/data")
	fi
	# The log file is opened by pg_ctl, as the cluster's user.
	if [ -n "$PG_RUNAS" ] && [ -e "$PG_HOME/log" ]; then
		chown "$PG_RUNAS" "$PG_HOME/log"
	fi
	if ! pg_as "$PG_BIN/pg_ctl" -D "$PG_HOME/data" -l "$PG_HOME/log" \
		-w -t 120 start >/dev/null 2>&1; then
		tail -n 30 "$PG_HOME/log" >&2 2>/dev/null
		pg_die "PostgreSQL did not start (log: $PG_HOME/log)"
	fi
	[ "$PG_HOME" = "$1" ] || ln -sf "$PG_HOME/log" "$1/log"
	pg_env "$1"
}

pg_restart() {
	pg_locate "$1"
	[ -n "$PG_BIN" ] || pg_die "PostgreSQL server binaries not found"
	pg_as "$PG_BIN/pg_ctl" -D "$PG_HOME/data" -l "$PG_HOME/log" -m fast \
		-w -t 120 restart >/dev/null 2>&1 ||
		pg_die "PostgreSQL did not restart (log: $PG_HOME/log)"
}

# Stops the cluster of DIR at once and removes DIR (and its /tmp home).
# Refuses to remove a non-empty directory that pg.sh did not make.
pg_stop() {
	[ -n "${1:-}" ] || pg_die "usage: pg.sh stop DIR"
	set -- "$(pg_abs "$1")"
	[ -e "$1" ] || return 0
	pg_locate "$1"
	if [ -f "$PG_HOME/data/postmaster.pid" ]; then
		_pid=$(head -n 1 "$PG_HOME/data/postmaster.pid")
		if [ -n "$PG_BIN" ]; then
			pg_as "$PG_BIN/pg_ctl" -D "$PG_HOME/data" -m immediate \
				-w -t 60 stop >/dev/null 2>&1
		fi
		# A postmaster that outlived pg_ctl must not outlive its
		# directory; it is ours when its command line names our data
		# directory (after a reboot the pid may be someone else's).
		if [ -n "$_pid" ] && [ -f "$PG_HOME/data/postmaster.pid" ] &&
			tr '\0' ' ' <"/proc/$_pid/cmdline" 2>/dev/null |
			grep -qF -- "$PG_HOME/data"; then
			kill -9 "$_pid" 2>/dev/null
			sleep 1
		fi
	fi
	if [ ! -e "$1/.pg.sh" ] && [ -n "$(ls -A "$1" 2>/dev/null)" ]; then
		pg_die "$1 does not look like a pg.sh cluster; not removing it"
	fi
	[ "$PG_HOME" = "$1" ] || rm -rf "$PG_HOME"
	rm -rf "$1"
}

pg_main() {
	if [ -z "${2:-}" ]; then
		echo "usage: pg.sh start|stop|restart|status|env DIR" >&2
		exit 2
	fi
	case "$1" in
	start) pg_start "$2" ;;
	stop) pg_stop "$2" ;;
	restart) pg_restart "$2" ;;
	env) pg_env "$2" ;;
	status) pg_running "$2" ;;
	*)
		echo "usage: pg.sh start|stop|restart|status|env DIR" >&2
		exit 2
		;;
	esac
}

if [ -z "${PG_SH_LIB:-}" ]; then
	set -u
	pg_main "$@"
fi
