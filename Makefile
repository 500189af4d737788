# audsync - keeps Mixpanel in step with audiences and traits in PostgreSQL
#
#   make                 build ./audsync
#   make test            unit + integration tests (real PostgreSQL, fake Mixpanel)
#   make check-unit      the unit tests alone: no database, a few seconds
#   make demo            throwaway PostgreSQL, sample data, one sync to stdout:
#   make bench           throughput and memory figures (not part of test)
#   make mutation        kill ratio of tests/mutations.txt (MUTATIONS=PATTERN)
#   make model           the randomized model test over 1 000 seeds
#   make model-rules     incremental rules against full, over 50 seeds
#   make install         PREFIX=/usr/local DESTDIR= (make uninstall undoes it)
#   make SANITIZER=address,undefined test   sanitized build and test run
#   make fuzz            each libFuzzer target for FUZZ_SECONDS (30) seconds
#   make valgrind        the unit tests that need no database, under valgrind
#   make chaos           the chaos test at 200 kill -9 points (make test: 20)

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share/audsync
MANDIR ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
# systemd reads units from /usr/local/lib/systemd/system as well as /lib.
UNITDIR ?= $(PREFIX)/lib/systemd/system
CC ?= cc
CFLAGS ?= -O2 -g
PKG_CONFIG ?= pkg-config
PKGS := libpq json-c libcurl zlib

# Project flags stay apart from the user's CFLAGS.
WARN := -std=c11 -Wall -Wextra -Wmissing-prototypes -Wstrict-prototypes \
	-Wformat=2 -Wundef -Wpointer-arith
ifeq ($(WERROR),1)
WARN += -Werror
endif
BUILD := build
ifneq ($(SANITIZER),)
BUILD := build-san
SANFLAGS := -fsanitize=$(SANITIZER) -fno-omit-frame-pointer \
	-fno-sanitize-recover=all
endif
# make fuzz builds the engine again with clang's libFuzzer coverage and
# ASan + UBSan (FUZZ=1, in build-fuzz/), then links each target.
ifeq ($(FUZZ),1)
BUILD := build-fuzz
CC := clang
SANFLAGS := -fsanitize=fuzzer-no-link,address,undefined \
	-fno-omit-frame-pointer -fno-sanitize-recover=all
endif
# pkg-config is asked when a recipe first needs its answer, never while the
# Makefile is read: on a fresh machine neither pkg-config nor the -dev
# packages exist until scripts/deps.sh has installed them (make test, demo
# and bench run it first, then build in a second make). Each answer is
# computed once and kept.
pkg_once = $(eval $(1) := $$(shell $$(PKG_CONFIG) $(2) 2>/dev/null))$($(1))
PKG_CFLAGS = $(call pkg_once,PKG_CFLAGS,--cflags $(PKGS))
PKG_LIBS = $(call pkg_once,PKG_LIBS,--libs $(PKGS))
CHECK_LIBS = $(call pkg_once,CHECK_LIBS,--libs check)
AS_CPPFLAGS = -D_GNU_SOURCE -Iinclude \
	-DAUDSYNC_VERSION='"$(shell cat VERSION 2>/dev/null || echo 0.0.0)"' \
	-DAUDSYNC_SQLDIR='"$(DATADIR)/sql"' $(PKG_CFLAGS)
AS_CFLAGS := $(WARN) $(SANFLAGS) $(CFLAGS)
AS_LDLIBS = $(SANFLAGS) $(PKG_LIBS) -lm

LIB_SRC := $(filter-out engine/main.c,$(wildcard engine/*.c))
LIB_OBJ := $(LIB_SRC:engine/%.c=$(BUILD)/engine/%.o) $(BUILD)/sql_embed.o
SQL_FILES := $(sort $(wildcard sql/[0-9]*.sql))
LIB := $(BUILD)/libaudsync.a
ifeq ($(SANITIZER),)
BIN := audsync
else
BIN := $(BUILD)/audsync
endif

# Tests mirror the sources: tests/unit/ needs no database (make
# check-unit), tests/integration/ runs against a real PostgreSQL and the
# fake Mixpanel of tests/fake/, tests/bench/ prints figures. Every binary
# is $(BUILD)/tests/NAME whatever its folder.
UNIT_SRC := $(wildcard tests/unit/check_*.c)
INTEG_SRC := $(wildcard tests/integration/check_*.c tests/check_*.c)
INTEG_SUPPORT := $(filter-out tests/integration/check_%.c,\
	$(wildcard tests/integration/*.c))
TEST_HDR := $(wildcard tests/*.h tests/unit/*.h tests/integration/*.h)
TEST_INC := -Itests -Itests/unit -Itests/integration
tests_bin = $(patsubst %.c,$(BUILD)/tests/%,$(notdir $(1)))
UNIT_BIN := $(call tests_bin,$(UNIT_SRC))
TEST_BIN := $(UNIT_BIN) $(call tests_bin,$(INTEG_SRC))
BENCH_SRC := $(wildcard tests/bench/bench_*.c)
BENCH_BIN := $(call tests_bin,$(BENCH_SRC))

.PHONY: all test test-run unit-test demo demo-run demo-clean bench bench-run \
	install uninstall units check-deploy format format-check deps clean lint \
	check-unit check-unit-run fuzz fuzz-deps fuzz-run valgrind valgrind-run chaos chaos-run mutation \
	mutation-run model model-run model-rules model-rules-run
all: $(BIN)

$(BUILD)/engine/%.o: engine/%.c $(wildcard include/audsync/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(AS_CPPFLAGS) $(AS_CFLAGS) -c -o $@ $<

$(BUILD)/sql_embed.c: $(SQL_FILES) scripts/embed-sql.sh
	@mkdir -p $(dir $@)
	sh scripts/embed-sql.sh $@ $(SQL_FILES)

$(BUILD)/sql_embed.o: $(BUILD)/sql_embed.c include/audsync/migrate.h
	$(CC) $(AS_CPPFLAGS) $(AS_CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJ)
	$(AR) rcs $@ $^

$(BIN): $(BUILD)/engine/main.o $(LIB)
	$(CC) $(AS_CFLAGS) -o $@ $^ $(LDFLAGS) $(AS_LDLIBS)

TEST_LINK = $(LIB) $(LDFLAGS) $(AS_LDLIBS) $(CHECK_LIBS)
$(BUILD)/tests/%: tests/unit/%.c $(TEST_HDR) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(AS_CPPFLAGS) $(TEST_INC) $(AS_CFLAGS) -o $@ $< $(TEST_LINK)

$(BUILD)/tests/%: tests/integration/%.c $(INTEG_SUPPORT) $(TEST_HDR) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(AS_CPPFLAGS) $(TEST_INC) $(AS_CFLAGS) -o $@ $< \
		$(INTEG_SUPPORT) $(TEST_LINK)

$(BUILD)/tests/%: tests/bench/%.c $(INTEG_SUPPORT) $(TEST_HDR) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(AS_CPPFLAGS) $(TEST_INC) $(AS_CFLAGS) -o $@ $< \
		$(INTEG_SUPPORT) $(TEST_LINK)

$(BUILD)/tests/%: tests/%.c $(INTEG_SUPPORT) $(TEST_HDR) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(AS_CPPFLAGS) $(TEST_INC) $(AS_CFLAGS) -o $@ $< \
		$(INTEG_SUPPORT) $(TEST_LINK)

# The fake Mixpanel server has its own fragment (libmicrohttpd); it is
# built here with the project's warnings and sanitizers, into $(BUILD).
FAKE_MP_OUT := $(BUILD)/tests
FAKE_MP_FLAGS = -D_GNU_SOURCE $(AS_CFLAGS)
-include tests/fake/fake_mixpanel.mk
FAKE_MIXPANEL := $(FAKE_MP_BIN)
TEST_BIN += $(FAKE_MP_CHECK_BIN)

deps:
	@sh scripts/deps.sh

# test, demo and bench install what is missing first, then build in a make
# of their own, which reads the Makefile again with everything present.
test: deps
	@$(MAKE) --no-print-directory test-run

# The unit tests alone: no PostgreSQL, no audsync binary, no fake.
check-unit: deps
	@$(MAKE) --no-print-directory check-unit-run

check-unit-run: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do CK_FORK=yes CK_VERBOSITY=minimal \
		$$t || { echo "check-unit: $$t failed"; exit 1; }; done; \
		echo "check-unit: $(words $(UNIT_BIN)) binaries passed"

test-run: $(BIN) $(TEST_BIN) $(FAKE_MIXPANEL)
	@AUDSYNC_BIN=$(abspath $(BIN)) FAKE_MIXPANEL=$(abspath $(FAKE_MIXPANEL)) \
		sh tests/run-tests.sh $(TEST_BIN)

# The chaos test (tests/check_crash.c) alone, at CHAOS_POINTS points;
# AUDSYNC_CHAOS_SEED=N replays a printed seed.
CHAOS_POINTS ?= 200
chaos: deps
	@$(MAKE) --no-print-directory chaos-run

chaos-run: $(BIN) $(BUILD)/tests/check_crash $(FAKE_MIXPANEL)
	@AUDSYNC_BIN=$(abspath $(BIN)) FAKE_MIXPANEL=$(abspath $(FAKE_MIXPANEL)) \
		AUDSYNC_CHAOS_POINTS=$(CHAOS_POINTS) CK_RUN_CASE=chaos \
		sh tests/run-tests.sh $(BUILD)/tests/check_crash

# The randomized model test at length: 1 000 seeds (make test runs 50).
# MODEL_SEED=N starts elsewhere; a failure prints its seed.
MODEL_SEEDS ?= 1000
MODEL_SEED ?= 1
model: deps
	@$(MAKE) --no-print-directory model-run

model-run: $(BIN) $(BUILD)/tests/check_model $(FAKE_MIXPANEL)
	@AUDSYNC_MODEL_SEEDS=$(MODEL_SEEDS) AUDSYNC_MODEL_SEED=$(MODEL_SEED) \
		AUDSYNC_BIN=$(abspath $(BIN)) \
		FAKE_MIXPANEL=$(abspath $(FAKE_MIXPANEL)) \
		sh tests/run-tests.sh $(BUILD)/tests/check_model

# Incremental rule evaluation against full at length: 50 seeds of 10 runs
# (make test runs 2 of 6). RULES_SEED=N starts elsewhere.
RULES_SEEDS ?= 50
RULES_SEED ?= 1
model-rules: deps
	@$(MAKE) --no-print-directory model-rules-run

model-rules-run: $(BIN) $(BUILD)/tests/check_rules_incr $(FAKE_MIXPANEL)
	@AUDSYNC_INCR_SEEDS=$(RULES_SEEDS) AUDSYNC_INCR_SEED=$(RULES_SEED) \
		AUDSYNC_INCR_STEPS=10 AUDSYNC_BIN=$(abspath $(BIN)) \
		FAKE_MIXPANEL=$(abspath $(FAKE_MIXPANEL)) \
		sh tests/run-tests.sh $(BUILD)/tests/check_rules_incr

demo: deps
	@$(MAKE) --no-print-directory demo-run

demo-run: $(BIN)
	@sh scripts/demo.sh

demo-clean:
	@sh scripts/demo.sh clean

bench: deps
	@$(MAKE) --no-print-directory bench-run

bench-run: $(BIN) $(BENCH_BIN) $(FAKE_MIXPANEL)
	@AUDSYNC_BIN=$(abspath $(BIN)) FAKE_MIXPANEL=$(abspath $(FAKE_MIXPANEL)) \
		sh tests/run-bench.sh $(BENCH_BIN)

# Fuzzing: every tests/fuzz/fuzz_NAME.c is a libFuzzer target (it defines
# LLVMFuzzerTestOneInput) linked with the engine; its seeds live in
# tests/fuzz/corpus/NAME/. A new target needs nothing else here. Inputs
# libFuzzer finds go to build-fuzz/corpus/NAME/, crashes to build-fuzz/.
FUZZ_SECONDS ?= 30
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/%)

fuzz: deps fuzz-deps
	@$(MAKE) --no-print-directory FUZZ=1 fuzz-run

fuzz-deps:
	@sh scripts/deps.sh fuzz

build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(LIB)
	$(CC) $(AS_CPPFLAGS) $(AS_CFLAGS) -fsanitize=fuzzer -o $@ $< $(LIB) \
		$(LDFLAGS) $(AS_LDLIBS)

fuzz-run: $(FUZZ_BIN)
	@set -e; for t in $(FUZZ_BIN); do \
		n=$${t#build-fuzz/fuzz_}; \
		mkdir -p build-fuzz/corpus/$$n tests/fuzz/corpus/$$n; \
		echo "== fuzz $$n: $(FUZZ_SECONDS) s"; \
		$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
			-artifact_prefix=build-fuzz/$$n- -print_final_stats=1 \
			build-fuzz/corpus/$$n tests/fuzz/corpus/$$n \
			2>build-fuzz/$$n.log || { tail -n 40 build-fuzz/$$n.log; \
			exit 1; }; \
		grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units)' \
			build-fuzz/$$n.log | tail -n 2; \
	done

# The unit tests that need no database run under valgrind's memcheck too:
# it sees uninitialised reads that ASan does not (CI runs both).
VALGRIND_TESTS := $(patsubst %,$(BUILD)/tests/%,check_json_doc \
	check_mp_answer check_mp_body check_mp_client check_mp_dest \
	check_mp_payload check_segment_map)

valgrind: deps
	@$(MAKE) --no-print-directory valgrind-run

valgrind-run: $(VALGRIND_TESTS)
	@set -e; for t in $(VALGRIND_TESTS); do echo "== valgrind $$t"; \
		if ! CK_FORK=no valgrind -q --error-exitcode=1 \
			--leak-check=full --errors-for-leak-kinds=definite \
			$$t >$$t.valgrind.log 2>&1; then \
			grep -v ' level=' $$t.valgrind.log | tail -n 60; exit 1; \
		fi; tail -n 1 $$t.valgrind.log; \
	done

# Builds its own copy of the tree in a temporary directory; niced, as it
# runs the test binaries once per mutation.
mutation: deps
	@$(MAKE) --no-print-directory mutation-run

mutation-run:
	@nice -n 15 sh tests/mutation.sh "$(MUTATIONS)"

# The units and the cron file name the paths of this installation: they
# are made from deploy/*.in for the PREFIX (and SYSCONFDIR) given.
DEPLOY_IN := $(wildcard deploy/*.in)
DEPLOY_PLAIN := $(filter-out $(DEPLOY_IN),$(wildcard deploy/*))
UNITS := $(notdir $(basename $(filter %.service.in,$(DEPLOY_IN)))) \
	audsync.timer
subst_paths = sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@DATADIR@|$(DATADIR)|g' \
	-e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g'

# make units: the files for this PREFIX in $(BUILD)/deploy (CI scores them).
units:
	@mkdir -p $(BUILD)/deploy
	@for f in $(DEPLOY_IN); do \
		$(subst_paths) $$f > $(BUILD)/deploy/$$(basename $$f .in); done
	@cp $(DEPLOY_PLAIN) $(BUILD)/deploy/

# The unit scores, the man page's lint, the cron line (CI runs it).
check-deploy: units
	@sh scripts/check-deploy.sh $(BUILD)/deploy doc/audsync.1

install: $(BIN) units
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/sql \
		$(DESTDIR)$(DATADIR)/deploy $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(UNITDIR)
	install -m 755 $(BIN) $(DESTDIR)$(BINDIR)/audsync
	install -m 644 sql/*.sql $(DESTDIR)$(DATADIR)/sql/
	install -m 644 $(BUILD)/deploy/* $(DESTDIR)$(DATADIR)/deploy/
	install -m 644 doc/audsync.1 $(DESTDIR)$(MANDIR)/man1/audsync.1
	install -m 644 $(addprefix $(BUILD)/deploy/,$(UNITS)) \
		$(DESTDIR)$(UNITDIR)/

# Removes what install put there; never the configuration in
# $(SYSCONFDIR)/audsync, nor the database.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/audsync $(DESTDIR)$(MANDIR)/man1/audsync.1
	rm -f $(addprefix $(DESTDIR)$(UNITDIR)/,$(UNITS))
	rm -rf $(DESTDIR)$(DATADIR)

FORMAT_FILES := $(wildcard engine/*.c include/audsync/*.h tests/*.h \
	tests/*/*.c tests/*/*.h)
format:
	clang-format -i $(FORMAT_FILES)
format-check:
	clang-format --dry-run --Werror $(FORMAT_FILES)

# The house rules a script can check (doc/HOUSE-RULES.md), then cppcheck.
lint:
	@sh scripts/deps.sh lint
	sh scripts/lint.sh
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability \
		--inline-suppr --suppress=missingIncludeSystem -Iinclude \
		--library=scripts/cppcheck-json-c.cfg \
		engine

clean:
	rm -rf build build-san build-fuzz audsync
