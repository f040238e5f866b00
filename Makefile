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
MODCFLAGS := -fPIC -std=gnu99 $(WARNFLAGS) $(shell pkg-config --cflags $(LUA_PC) libcurl) -DLC_VERSION='"$(VERSION)"'
MODLDFLAGS := -shared $(shell pkg-config --libs libcurl)

BUILD := build/$(LUA_VERSION)
SO := $(BUILD)/llamacloud/core.so
SRC := $(wildcard src/*.c src/*.h)

LUA_ENV := LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='$(BUILD)/?.so;;'

.PHONY: all test demo install clean check-deps

all: $(SO)

$(SO): $(SRC) VERSION Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(MODCFLAGS) src/core.c -o $@ $(MODLDFLAGS) $(LDFLAGS)

test: $(SO)
	$(LUA_ENV) $(LUA) /usr/bin/busted --lpath='lua/?.lua;lua/?/init.lua' --cpath='$(BUILD)/?.so' $(BUSTED_ARGS) spec

demo: $(SO)
	@$(LUA_ENV) LUA=$(LUA) sh examples/demo.sh

install: $(SO)
	install -d $(DESTDIR)$(PREFIX)/lib/lua/$(LUA_ABI)/llamacloud $(DESTDIR)$(PREFIX)/share/lua/$(LUA_ABI)/llamacloud/host $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(SO) $(DESTDIR)$(PREFIX)/lib/lua/$(LUA_ABI)/llamacloud/core.so
	install -m 644 lua/llamacloud/*.lua $(DESTDIR)$(PREFIX)/share/lua/$(LUA_ABI)/llamacloud/
	install -m 644 lua/llamacloud/host/*.lua $(DESTDIR)$(PREFIX)/share/lua/$(LUA_ABI)/llamacloud/host/
	sed '1s|.*|#!/usr/bin/env $(LUA)|' bin/llamacloud > $(DESTDIR)$(PREFIX)/bin/llamacloud
	chmod 755 $(DESTDIR)$(PREFIX)/bin/llamacloud

clean:
	rm -rf build
