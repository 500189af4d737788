#!/bin/sh
# mutation.sh - how many deliberate bugs the tests catch.
#
#   sh tests/mutation.sh [REGEX]        (make mutation [MUTATIONS=REGEX])
#   sh tests/mutation.sh --check        validates the rows only (no build)
#
# Reads tests/mutations.txt (its header says the row format). Copies the
# tree once to a temporary directory (the tree it was started from is never
# touched), builds it there, starts one throwaway PostgreSQL
# (tests/harness.sh), then for each row (or each row whose line matches
# REGEX, grep -E; MUTATIONS='check_decide|outbox' picks by test or file):
# puts the mutation in the copy, rebuilds, runs the row's test binaries,
# and puts the original file back. A mutation is
#   killed     when a named test binary fails (or times out, or crashes),
#   survived   when every named binary passes,
#   invalid    when its text is not found exactly once in its file, the
#              mutated copy does not build or a test binary is missing
#              (the row must be fixed; it counts against the ratio).
# Prints one line per mutation, then "mutation: K killed, S survived,
# I invalid of N (P% killed)". Exits 1 when anything survived or was
# invalid.
#
# The copy builds only the program, the fake Mixpanel and the row's test
# binaries, each test source compiled once; a mutant that does not build
# is reported with the compiler's first error, and the copy must build
# again once it is undone (else the run stops: every row after would be
# "invalid" for a reason of the copy, not of the row). The make that runs
# this script passes nothing down (no WERROR, SANITIZER or jobserver).
#
# Environment: MUTATION_TIMEOUT (seconds per test binary, 900),
# MUTATION_JOBS (make -j of the copy, 2), MUTATION_KEEP=1 keeps the copy
# and the logs (their path is printed).
# The machine may be shared: make mutation runs it under nice -n 15.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
list=$here/mutations.txt
check_only=
if [ "${1:-}" = --check ]; then
	check_only=1
	shift
fi
pattern=${1:-}
limit=${MUTATION_TIMEOUT:-900}
tab=$(printf '\t')
us=$(printf '\037') # splits a row's fields, which may hold tabs

# Counts the occurrences of fixed text $2 in file $1.
occurrences() {
	S=$2 awk 'BEGIN { n = 0; s = ENVIRON["S"] }
		{ line = $0
		  while ((i = index(line, s)) > 0) {
			n++; line = substr(line, i + length(s))
		  } }
		END { print n }' "$1"
}

# Replaces the one occurrence of fixed text $2 by $3 in file $1.
substitute() {
	S=$2 R=$3 awk 'BEGIN { s = ENVIRON["S"]; r = ENVIRON["R"] }
		{ i = index($0, s)
		  if (i > 0)
			$0 = substr($0, 1, i - 1) r substr($0, i + length(s))
		  print }' "$1" >"$1.mut" && cat "$1.mut" >"$1" && rm -f "$1.mut"
}

# Splits row $1 into file orig repl tests desc and checks them against the
# tree in $2; sets why and returns 1 when the row is not usable.
parse_row() {
	_f=$(printf '%s\n' "$1" | awk -F ' [|] ' -v OFS="$us" \
		'{ n = NF; $1 = $1; print n OFS $0 }')
	_nf=${_f%%"$us"*}
	if [ "$_nf" != 5 ]; then
		why="$_nf fields, not 5"
		return 1
	fi
	_f=${_f#*"$us"}
	file=${_f%%"$us"*}
	_f=${_f#*"$us"}
	orig=${_f%%"$us"*}
	_f=${_f#*"$us"}
	repl=${_f%%"$us"*}
	_f=${_f#*"$us"}
	tests=${_f%%"$us"*}
	desc=${_f#*"$us"}
	if [ -z "$orig" ] || [ -z "$tests" ]; then
		why="empty ORIGINAL or TESTS"
		return 1
	fi
	if [ ! -f "$2/$file" ]; then
		why="no file $file"
		return 1
	fi
	_n=$(occurrences "$2/$file" "$orig")
	if [ "$_n" != 1 ]; then
		why="text found $_n times in $file"
		return 1
	fi
	if [ "$orig" = "$repl" ]; then
		why="the replacement is the original"
		return 1
	fi
	if [ "$tests" != all ]; then
		for _t in $(printf '%s\n' "$tests" | tr ',' '\n' | sed 's/:.*//'); do
			if [ ! -f "$2/tests/unit/$_t.c" ] &&
				[ ! -f "$2/tests/integration/$_t.c" ]; then
				why="no test $_t.c in tests/unit or tests/integration"
				return 1
			fi
		done
	fi
	return 0
}

# The rows to run, as "LINENO<tab>ROW" lines.
rows() {
	awk -v OFS="$tab" '!/^#/ && !/^[ \t]*$/ { print NR, $0 }' "$list" |
		if [ -n "$pattern" ]; then grep -E -- "$pattern"; else cat; fi
}

if [ -n "$check_only" ]; then
	bad=0
	n=0
	while IFS= read -r line; do
		n=$((n + 1))
		if ! parse_row "${line#*"$tab"}" "$top"; then
			echo "tests/mutations.txt:${line%%"$tab"*}: $why"
			bad=1
		fi
	done <<EOF
$(rows)
EOF
	[ "$bad" = 0 ] && echo "mutation: all $n rows are usable"
	exit "$bad"
fi

. "$here/harness.sh"
harness_start mutation
work=$tmp/tree
mkdir "$work"
if [ "${MUTATION_KEEP:-}" = 1 ]; then
	trap 'sh "$here/pg.sh" stop "$tmp/pg" >/dev/null 2>&1
		echo "mutation: kept $tmp"' EXIT
fi

# The tree as it is (committed or not), without build products.
(cd "$top" && tar cf - --exclude=./build --exclude=./build-san \
	--exclude=./audsync --exclude=./.git --exclude=./.demo \
	--exclude='*.o' --exclude=./tests/fake_mixpanel \
	--exclude=./tests/check_fake_mixpanel .) |
	(cd "$work" && tar xf -) || {
	echo "mutation: cannot copy the tree" >&2
	exit 1
}
# The copy's own rules: each test source and test support file compiled
# once to an object (the Makefile's rule compiles them all again for every
# binary, and the engine's library changes with every mutation), and one
# target for everything. Static pattern rules are explicit, so they win over
# the Makefile's pattern rule.
cat >>"$work/Makefile" <<'EOF'

MUT_TEST_OBJ := $(INTEG_SUPPORT:tests/integration/%.c=$(BUILD)/tests/%.o)
MUT_UNIT := $(call tests_bin,$(UNIT_SRC))
MUT_INTEG := $(call tests_bin,$(INTEG_SRC))
$(MUT_UNIT): $(BUILD)/tests/%: $(BUILD)/tests/%.o $(LIB)
	$(CC) $(AS_CFLAGS) -o $@ $^ $(LDFLAGS) $(AS_LDLIBS) $(CHECK_LIBS)
$(MUT_INTEG): $(BUILD)/tests/%: $(BUILD)/tests/%.o $(MUT_TEST_OBJ) $(LIB)
	$(CC) $(AS_CFLAGS) -o $@ $^ $(LDFLAGS) $(AS_LDLIBS) $(CHECK_LIBS)
vpath %.c tests/unit tests/integration tests
$(MUT_UNIT:=.o) $(MUT_INTEG:=.o) $(MUT_TEST_OBJ): $(BUILD)/tests/%.o: %.c \
		$(TEST_HDR) $(wildcard include/audsync/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(AS_CPPFLAGS) $(TEST_INC) $(AS_CFLAGS) -c -o $@ $<

.PHONY: mutation-build
mutation-build: $(BIN) $(TEST_BIN) $(FAKE_MIXPANEL)
EOF

# Builds targets $2... in the copy, the log in $1; 0 on success. The make
# that started this script must not reach the copy's: its MAKEFLAGS would
# carry WERROR=1 (a mutant that leaves a variable unused is still a
# mutant), SANITIZER (the binaries would go to build-san/) or a jobserver.
build() {
	_log=$1
	shift
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES \
		make -C "$work" --no-print-directory -j"${MUTATION_JOBS:-2}" \
		WERROR= SANITIZER= FUZZ= "$@" </dev/null >"$_log" 2>&1
}

# The targets a row's tests ($1) need: the program, the fake Mixpanel and
# the named test binaries (or all of them).
targets() {
	if [ "$1" = all ]; then
		echo mutation-build
		return
	fi
	echo audsync build/tests/fake_mixpanel
	printf '%s\n' "$1" | tr ',' '\n' | sed 's/:.*//; s|^|build/tests/|'
}

# The first line of build log $1 that says what went wrong.
build_error() {
	grep -m 1 -E 'error|Error|No rule' "$1" || tail -n 1 "$1"
}

if ! build "$tmp/logs/build.log" mutation-build; then
	tail -n 30 "$tmp/logs/build.log" >&2
	echo "mutation: the unmutated tree does not build" >&2
	exit 1
fi
AUDSYNC_BIN=$work/audsync
FAKE_MIXPANEL=$work/build/tests/fake_mixpanel
CK_FORK=yes
CK_DEFAULT_TIMEOUT=300
CK_VERBOSITY=silent
export AUDSYNC_BIN FAKE_MIXPANEL CK_FORK CK_DEFAULT_TIMEOUT CK_VERBOSITY

# Runs the test binaries named by $1 ("a,b", "bin:TCase name" or "all").
# 0 when all pass, 1 when one fails (named in logs/why), 2 when one is
# missing.
run_tests() {
	if [ "$1" = all ]; then
		_ts=$(cd "$work/tests" &&
			ls unit/check_*.c integration/check_*.c \
				fake/check_*.c | sed 's|.*/||; s/[.]c$//' |
			tr '\n' ',')
		if [ -z "$_ts" ]; then
			echo "no test source under tests/" >"$tmp/logs/why"
			return 2
		fi
	else
		_ts=$1,
	fi
	while [ -n "$_ts" ]; do
		t=${_ts%%,*}
		_ts=${_ts#*,}
		[ -n "$t" ] || continue
		bin=${t%%:*}
		case_name=
		[ "$bin" != "$t" ] && case_name=${t#*:}
		if [ ! -x "$work/build/tests/$bin" ]; then
			echo "no test binary $bin" >"$tmp/logs/why"
			return 2
		fi
		if [ -n "$case_name" ]; then
			CK_RUN_CASE=$case_name
			export CK_RUN_CASE
		else
			unset CK_RUN_CASE
		fi
		if ! (cd "$work" && timeout -k 10 "$limit" \
			"build/tests/$bin") </dev/null >"$tmp/logs/run.log" 2>&1
		then
			echo "$t" >"$tmp/logs/why"
			return 1
		fi
	done
	return 0
}

total=0
killed=0
survived=0
invalid=0
survivors=
while IFS= read -r line; do
	[ -n "$line" ] || continue
	lineno=${line%%"$tab"*}
	total=$((total + 1))
	if ! parse_row "${line#*"$tab"}" "$work"; then
		echo "INVALID  line $lineno: $why"
		invalid=$((invalid + 1))
		continue
	fi
	name="line $lineno $file: $desc"
	cp -p "$work/$file" "$tmp/orig"
	substitute "$work/$file" "$orig" "$repl"
	# shellcheck disable=SC2046 # the targets are words
	if ! build "$tmp/logs/build-$lineno.log" $(targets "$tests"); then
		echo "INVALID  $name (does not build:" \
			"$(build_error "$tmp/logs/build-$lineno.log"))"
		invalid=$((invalid + 1))
		build_failed=1
	else
		build_failed=
		run_tests "$tests"
		case $? in
		0)
			echo "SURVIVED $name"
			survived=$((survived + 1))
			survivors="$survivors  line $lineno $file: $desc
"
			;;
		1)
			echo "killed   $name (by $(cat "$tmp/logs/why"))"
			killed=$((killed + 1))
			;;
		*)
			echo "INVALID  $name ($(cat "$tmp/logs/why"))"
			invalid=$((invalid + 1))
			;;
		esac
	fi
	# The original back, newer than its object, so make rebuilds it.
	cat "$tmp/orig" >"$work/$file"
	touch "$work/$file"
	# A mutant that did not build must not leave the copy broken for the
	# rows after it: the restored tree must build again, or nothing after
	# this row would mean anything.
	if [ -n "$build_failed" ] &&
		! build "$tmp/logs/rebuild-$lineno.log" mutation-build; then
		echo "mutation: the copy does not build after line $lineno was" \
			"undone: $(build_error "$tmp/logs/rebuild-$lineno.log")" >&2
		exit 2
	fi
done <<EOF
$(rows)
EOF

if [ "$total" = 0 ]; then
	echo "mutation: no mutation matched"
	exit 1
fi
if [ -n "$survivors" ]; then
	echo
	echo "survivors:"
	printf '%s' "$survivors"
fi
echo "mutation: $killed killed, $survived survived, $invalid invalid of" \
	"$total ($((killed * 100 / total))% killed)"
[ "$survived" = 0 ] && [ "$invalid" = 0 ]
