# Build, test and install llamacloud-lua. LUA_VERSION is 5.1, 5.2, 5.3, 5.4 or jit.
LUA_VERSION ?= 5.4
PREFIX ?= /usr/local
VERSION := $(shell cat VERSION)

ifeq ($(LUA_VERSION),jit)
LUA_PC := luajit
LUA ?= luajit
LUA_ABI := 5.1
else
LUA_PC := lua$(LUA_VERSION)
LUA ?= lua$(LUA_VERSION)
LUA_ABI := $(LUA_VERSION)
endif

CC ?= cc
CFLAGS ?= -O2 -g
WARNFLAGS := -Wall -Wextra -Wshadow -Wstrict-prototypes
# libcrypto (webhooks.verify) where pkg-config finds it; without it, or with LC_NO_CRYPTO=1, verify raises.
CRYPTO_PC := $(if $(LC_NO_CRYPTO),,$(shell pkg-config --exists libcrypto && echo libcrypto))
MODCFLAGS := -fPIC -std=gnu99 $(WARNFLAGS) $(shell pkg-config --cflags $(LUA_PC) libcurl $(CRYPTO_PC)) -DLC_VERSION='"$(VERSION)"' $(if $(CRYPTO_PC),,-DLC_NO_CRYPTO)
MODLDFLAGS := -shared $(shell pkg-config --libs libcurl $(CRYPTO_PC))

BUILD := build/$(LUA_VERSION)
SO := $(BUILD)/llamacloud/core.so
SRC := $(wildcard src/*.c src/*.h)

LUA_ENV := LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='$(BUILD)/?.so;;'

LUA_VERSIONS ?= 5.1 5.2 5.3 5.4 jit
TALLY ?= $(CURDIR)/build/tally.txt
BUSTED := /usr/bin/busted --lpath='lua/?.lua;lua/?/init.lua' -o spec/support/tally_output.lua
# Specs that spawn real nvim and nginx (both embed LuaJIT, so they load build/jit): run once, by test-hosts.
HOST_SPECS := spec/nvim_spec.lua spec/ngx_spec.lua spec/webhook_ngx_spec.lua spec/health_nvim_spec.lua
HOST_EXCLUDE := --exclude-pattern='nvim_spec' --exclude-pattern='ngx_spec'
# The specs' servers listen on 127.0.0.1, where no proxy from the environment could reach them.
NO_ENV_PROXY := env -u http_proxy -u HTTP_PROXY -u https_proxy -u HTTPS_PROXY -u all_proxy -u ALL_PROXY

.PHONY: all test test-one test-hosts test-hardening test-steps demo install clean deps bench bench-callgrind lint nvim release-rockspec

all: $(SO)

$(SO): $(SRC) VERSION Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(MODCFLAGS) src/core.c -o $@ $(MODLDFLAGS) $(LDFLAGS)

# Every test: the spec suite on each interpreter, then the other checks; ends with "N passed, N failed".
test:
	@mkdir -p build && rm -f $(TALLY) $(TALLY).failures
	@status=0; $(NO_ENV_PROXY) $(MAKE) --no-print-directory test-steps TALLY=$(TALLY) || status=1; \
	sh scripts/tally.sh $(TALLY) || status=1; exit $$status

test-steps:
	@status=0; for v in $(LUA_VERSIONS); do \
	  $(MAKE) --no-print-directory test-one LUA_VERSION=$$v TALLY=$(TALLY) || status=1; \
	done; \
	$(MAKE) --no-print-directory test-hosts TALLY=$(TALLY) || status=1; \
	LLAMACLOUD_TALLY=$(TALLY) sh scripts/luarocks-check.sh || status=1; \
	LLAMACLOUD_TALLY=$(TALLY) sh scripts/step.sh lint $(MAKE) --no-print-directory lint || status=1; \
	$(MAKE) --no-print-directory test-hardening TALLY=$(TALLY) || status=1; \
	exit $$status

# The hardening checks of make test, each one step in the tally: the suite under ASan+UBSan and under
# valgrind (their specs count too), every fuzz target for TEST_FUZZ_SECONDS, the soak, the key scan, and
# the failure-injection sweeps (out of memory at every budget, raising finalizers).
TEST_FUZZ_SECONDS ?= 30
test-hardening:
	@status=0; export LLAMACLOUD_TALLY=$(TALLY); \
	sh scripts/step.sh asan sh scripts/sanitize.sh -o spec/support/tally_output.lua $(HOST_EXCLUDE) spec || status=1; \
	sh scripts/step.sh valgrind sh scripts/valgrind.sh -o spec/support/tally_output.lua $(HOST_EXCLUDE) spec || status=1; \
	sh scripts/step.sh fuzz env FUZZ_SECONDS=$(TEST_FUZZ_SECONDS) sh scripts/fuzz.sh || status=1; \
	sh scripts/step.sh soak $(MAKE) --no-print-directory soak LUA_VERSION=5.4 || status=1; \
	sh scripts/step.sh keyscan $(MAKE) --no-print-directory keyscan LUA_VERSION=5.4 || status=1; \
	sh scripts/step.sh oom sh scripts/oom.sh || status=1; \
	exit $$status

# The spec suite on one interpreter (LUA_VERSION), e.g. make test-one LUA_VERSION=jit BUSTED_ARGS=spec/get_spec.lua
test-one: $(SO)
	@echo "== specs on $(LUA_VERSION)"
	$(NO_ENV_PROXY) LLAMACLOUD_TALLY=$(TALLY) $(LUA_ENV) $(LUA) $(BUSTED) --cpath='$(BUILD)/?.so' $(or $(BUSTED_ARGS),$(HOST_EXCLUDE) spec)

# The Neovim and OpenResty hosts, proven in real nvim --headless and nginx processes.
test-hosts:
	@$(MAKE) --no-print-directory LUA_VERSION=jit
	@echo "== specs in nvim and nginx (build/jit)"
	$(NO_ENV_PROXY) LLAMACLOUD_TALLY=$(TALLY) LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/jit/?.so;;' luajit $(BUSTED) --cpath='build/jit/?.so' $(HOST_SPECS)

# rockspec/llamacloud-$(VERSION)-1.rockspec, written from the scm-1 rockspec (edit that one, then run this).
release-rockspec:
	sh scripts/release-rockspec.sh

# For Neovim plugin managers (lazy.nvim: build = "make nvim"): the LuaJIT module at lua/llamacloud/core.so,
# where Neovim's require finds it through 'runtimepath' with nothing on package.cpath.
nvim:
	@$(MAKE) --no-print-directory LUA_VERSION=jit
	cp build/jit/llamacloud/core.so lua/llamacloud/core.so

# luacheck (Debian lua-check) over every Lua file and the Lua inside the nginx.conf files;
# .luacheckrc sets the std per directory.
LINT_PATHS := lua spec bench examples scripts bin/llamacloud
NGINX_CONFS := $(shell find examples spec bench -name '*.conf' | sort)
lint:
	luacheck -q --no-color $(LINT_PATHS)
	@for f in $(NGINX_CONFS); do \
	  echo "luacheck $$f (its *_by_lua_block code)"; \
	  $(LUA) scripts/lint_nginx.lua $$f | luacheck -q --no-color --include-files $$f --filename $$f - || exit 1; \
	done

deps:
	sh scripts/install-deps.sh

bench: $(SO)
	$(LUA_ENV) LUA=$(LUA) CC=$(CC) sh bench/run.sh

bench-callgrind: $(SO)
	$(LUA_ENV) LUA=$(LUA) CC=$(CC) sh bench/run.sh callgrind

# Hardening (docs/reliability.md): the whole spec suite under ASan+UBSan and under valgrind, every fuzz
# target for FUZZ_SECONDS each (FUZZ_TARGETS picks some), the soak, and the API key scan.
FUZZ_SECONDS ?= 60
.PHONY: asan valgrind fuzz soak keyscan oom
asan:
	LUA_VERSION=$(LUA_VERSION) sh scripts/sanitize.sh $(BUSTED_ARGS)

valgrind:
	LUA_VERSION=$(LUA_VERSION) sh scripts/valgrind.sh $(BUSTED_ARGS)

fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) sh scripts/fuzz.sh $(FUZZ_TARGETS)

soak: $(SO)
	$(LUA_ENV) $(LUA) scripts/soak.lua $(SOAK_REQUESTS)

keyscan: $(SO)
	LUA_VERSION=$(LUA_VERSION) sh scripts/keyscan.sh $(BUSTED_ARGS)

# Failure injection (docs/reliability.md): each call with Lua's or libcurl's allocator failing at every
# budget, and with finalizers raising, under ASan+UBSan and LeakSanitizer. OOM_PLAN picks sweeps
# (e.g. OOM_PLAN="5.4:lua:get 5.1:gc:wait"); OOM_FULL=1 runs every sweep with LeakSanitizer in every
# child; OOM_PLAIN=1 builds without sanitizers; OOM_ARGS="--only 7" runs one budget.
oom:
	OOM_FULL='$(OOM_FULL)' OOM_PLAIN='$(OOM_PLAIN)' OOM_ARGS='$(OOM_ARGS)' OOM_JOBS='$(OOM_JOBS)' sh scripts/oom.sh $(OOM_PLAN)

demo: $(SO)
	@$(LUA_ENV) LUA=$(LUA) sh examples/demo.sh

install: $(SO)
	install -d $(DESTDIR)$(PREFIX)/lib/lua/$(LUA_ABI)/llamacloud $(DESTDIR)$(PREFIX)/share/lua/$(LUA_ABI)/llamacloud/host $(DESTDIR)$(PREFIX)/share/lua/$(LUA_ABI)/llamacloud/fake_server $(DESTDIR)$(PREFIX)/share/lua/$(LUA_ABI)/llamacloud/cli $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(SO) $(DESTDIR)$(PREFIX)/lib/lua/$(LUA_ABI)/llamacloud/core.so
	install -m 644 lua/llamacloud/*.lua $(DESTDIR)$(PREFIX)/share/lua/$(LUA_ABI)/llamacloud/
	install -m 644 lua/llamacloud/host/*.lua $(DESTDIR)$(PREFIX)/share/lua/$(LUA_ABI)/llamacloud/host/
	install -m 644 lua/llamacloud/fake_server/*.lua $(DESTDIR)$(PREFIX)/share/lua/$(LUA_ABI)/llamacloud/fake_server/
	install -m 644 lua/llamacloud/cli/*.lua $(DESTDIR)$(PREFIX)/share/lua/$(LUA_ABI)/llamacloud/cli/
	sed '1s|.*|#!/usr/bin/env $(LUA)|' bin/llamacloud > $(DESTDIR)$(PREFIX)/bin/llamacloud
	chmod 755 $(DESTDIR)$(PREFIX)/bin/llamacloud

clean:
	rm -rf build
