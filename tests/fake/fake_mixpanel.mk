# tests/fake_mixpanel.mk - build rules for the fake Mixpanel server.
#
# Included by the main Makefile, or used alone from the repository root:
#   make -f tests/fake_mixpanel.mk            # build both binaries
#   make -f tests/fake_mixpanel.mk fake-mixpanel-check   # build and run
#
# Targets: tests/fake_mixpanel, tests/check_fake_mixpanel,
#          fake-mixpanel (both), fake-mixpanel-check, fake-mixpanel-clean.

FAKE_MP_MK := $(lastword $(MAKEFILE_LIST))
FAKE_MP_DIR := $(patsubst %/,%,$(dir $(FAKE_MP_MK)))
FAKE_MP_SAVED_GOAL := $(.DEFAULT_GOAL)

# Defaults when used on its own; the main Makefile's values win.
CC ?= cc
CFLAGS ?= -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra \
	-Wmissing-prototypes -Wstrict-prototypes -Wformat=2 -Wundef \
	-Wpointer-arith -Werror
PKG_CONFIG ?= pkg-config
# Where the binaries and objects go, and the compiler flags: the main
# Makefile sets both (its build directory, its warnings and sanitizers).
FAKE_MP_OUT ?= $(FAKE_MP_DIR)
FAKE_MP_FLAGS ?= $(CFLAGS)

FAKE_MP_SERVER_PKGS := libmicrohttpd json-c zlib
FAKE_MP_CHECK_PKGS := check libcurl json-c zlib
FAKE_MP_SERVER_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(FAKE_MP_SERVER_PKGS))
FAKE_MP_SERVER_LIBS = $(shell $(PKG_CONFIG) --libs $(FAKE_MP_SERVER_PKGS)) \
	-lpthread -lm
FAKE_MP_CHECK_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(FAKE_MP_CHECK_PKGS))
FAKE_MP_CHECK_LIBS = $(shell $(PKG_CONFIG) --libs $(FAKE_MP_CHECK_PKGS)) \
	-lpthread -lm

FAKE_MP_BIN := $(FAKE_MP_OUT)/fake_mixpanel
FAKE_MP_CHECK_BIN := $(FAKE_MP_OUT)/check_fake_mixpanel
FAKE_MP_OBJS := $(FAKE_MP_OUT)/fake_mixpanel.o $(FAKE_MP_OUT)/fake_store.o
FAKE_MP_CHECK_OBJS := $(FAKE_MP_OUT)/check_fake_mixpanel.o

.PHONY: fake-mixpanel fake-mixpanel-check fake-mixpanel-clean

fake-mixpanel: $(FAKE_MP_BIN) $(FAKE_MP_CHECK_BIN)

$(FAKE_MP_BIN): $(FAKE_MP_OBJS)
	$(CC) $(FAKE_MP_FLAGS) $(LDFLAGS) -o $@ $(FAKE_MP_OBJS) \
		$(FAKE_MP_SERVER_LIBS)

$(FAKE_MP_CHECK_BIN): $(FAKE_MP_CHECK_OBJS)
	$(CC) $(FAKE_MP_FLAGS) $(LDFLAGS) -o $@ $(FAKE_MP_CHECK_OBJS) \
		$(FAKE_MP_CHECK_LIBS)

$(FAKE_MP_OUT)/fake_mixpanel.o: $(FAKE_MP_DIR)/fake_mixpanel.c \
		$(FAKE_MP_DIR)/fake_store.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(FAKE_MP_FLAGS) $(FAKE_MP_SERVER_CFLAGS) -c -o $@ $<

$(FAKE_MP_OUT)/fake_store.o: $(FAKE_MP_DIR)/fake_store.c \
		$(FAKE_MP_DIR)/fake_store.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(FAKE_MP_FLAGS) $(FAKE_MP_SERVER_CFLAGS) -c -o $@ $<

$(FAKE_MP_OUT)/check_fake_mixpanel.o: $(FAKE_MP_DIR)/check_fake_mixpanel.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(FAKE_MP_FLAGS) $(FAKE_MP_CHECK_CFLAGS) -c -o $@ $<

# The test finds the server binary next to itself.
fake-mixpanel-check: $(FAKE_MP_BIN) $(FAKE_MP_CHECK_BIN)
	$(FAKE_MP_CHECK_BIN)

fake-mixpanel-clean:
	rm -f $(FAKE_MP_BIN) $(FAKE_MP_CHECK_BIN) $(FAKE_MP_OBJS) \
		$(FAKE_MP_CHECK_OBJS)

# Do not steal the default goal of the Makefile that includes this one.
ifeq ($(firstword $(MAKEFILE_LIST)),$(FAKE_MP_MK))
.DEFAULT_GOAL := fake-mixpanel
else
.DEFAULT_GOAL := $(FAKE_MP_SAVED_GOAL)
endif
