#!/bin/sh
# deps.sh - checks that the build, the tests and the demo have what they
# need; as root, installs what is missing (Debian/Ubuntu, apt-get).
# Quiet when everything is present. `make deps` runs it, and so do
# `make test`, `make demo` and `make bench`. `deps.sh fuzz` checks and
# installs what `make fuzz` needs instead: clang and its libFuzzer;
# `deps.sh lint` what `make lint` needs: cppcheck.
set -u

PACKAGES="build-essential pkg-config libpq-dev libjson-c-dev \
libcurl4-openssl-dev zlib1g-dev check libmicrohttpd-dev postgresql \
postgresql-client ca-certificates valgrind"
MODULES="libpq json-c libcurl zlib check libmicrohttpd"

# The PostgreSQL server binaries, found as tests/pg.sh finds them.
pg_server_bindir() {
	d=$(pg_config --bindir 2>/dev/null) || d=
	if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] &&
		[ -x "$d/postgres" ]; then
		echo "$d"
		return 0
	fi
	best=
	for d in /usr/lib/postgresql/*/bin; do
		[ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ] &&
			best="$best$d
"
	done
	[ -n "$best" ] || return 1
	printf '%s' "$best" | sort -t/ -k5,5n | tail -n 1
}

# Prints what is missing, one item a line; nothing when all is there.
missing() {
	for c in cc make pkg-config psql; do
		command -v "$c" >/dev/null 2>&1 || echo "command $c"
	done
	if command -v pkg-config >/dev/null 2>&1; then
		for m in $MODULES; do
			pkg-config --exists "$m" 2>/dev/null ||
				echo "pkg-config module $m"
		done
	else
		echo "pkg-config modules $MODULES"
	fi
	pg_server_bindir >/dev/null ||
		echo "PostgreSQL server (initdb, pg_ctl, postgres)"
}

# clang that links a libFuzzer target (Debian: clang, libclang-rt-14-dev).
fuzz_missing() {
	if ! command -v clang >/dev/null 2>&1; then
		echo "command clang"
		return
	fi
	d=$(mktemp -d) || return
	printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
		'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
		'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)' \
		'{ (void)d; (void)n; return 0; }' >"$d/t.c"
	clang -fsanitize=fuzzer,address,undefined -o "$d/t" "$d/t.c" \
		>/dev/null 2>&1 || echo "libFuzzer (clang -fsanitize=fuzzer)"
	rm -rf "$d"
}

if [ "${1:-}" = fuzz ]; then
	PACKAGES="clang libclang-rt-14-dev"
	missing() { fuzz_missing; }
fi
# `deps.sh lint`: cppcheck, for `make lint`.
if [ "${1:-}" = lint ]; then
	PACKAGES="cppcheck"
	missing() {
		command -v cppcheck >/dev/null 2>&1 || echo "command cppcheck"
	}
fi

gone=$(missing)
[ -z "$gone" ] && exit 0

echo "deps: missing:" >&2
printf '%s\n' "$gone" | sed 's/^/  /' >&2
# shellcheck disable=SC2086,SC2116 # PACKAGES is a word list
cmd="apt-get install -y --no-install-recommends $(echo $PACKAGES)"

if [ "$(id -u)" != 0 ]; then
	echo "deps: install them as root:" >&2
	echo "  apt-get update && DEBIAN_FRONTEND=noninteractive $cmd" >&2
	exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "deps: no apt-get here; install the equivalents of: $PACKAGES" >&2
	exit 1
fi

echo "deps: installing with apt-get" >&2
apt-get update || exit 1
# The postgresql package may start a system cluster; audsync's tests and
# demo never use it (they start their own in a temporary directory).
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	$PACKAGES || exit 1

gone=$(missing)
if [ -n "$gone" ]; then
	echo "deps: still missing after apt-get install:" >&2
	printf '%s\n' "$gone" | sed 's/^/  /' >&2
	exit 1
fi
echo "deps: all present" >&2
