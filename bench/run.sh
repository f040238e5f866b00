#!/bin/sh
# make bench: builds the C floors, writes the bodies, runs nginx on 127.0.0.1 under a temp prefix, then bench/run.lua
# (or, given the argument callgrind, bench/callgrind.lua: make bench-callgrind).
# Environment: LUA (interpreter, with LUA_PATH/LUA_CPATH reaching the built module), CC, BENCH_RUNS (runs per figure).
set -eu
LUA=${LUA:-lua5.4}
CC=${CC:-cc}
OUT=bench/out
BIN=build/bench
mkdir -p "$OUT/www" "$BIN"

CURL_FLAGS=$(pkg-config --cflags --libs libcurl)
# shellcheck disable=SC2086
$CC -O2 -Wall -Wextra bench/fetch_floor.c -o "$BIN/fetch_floor" $CURL_FLAGS
# shellcheck disable=SC2086
$CC -O2 -Wall -Wextra bench/multi_floor.c -o "$BIN/multi_floor" $CURL_FLAGS
$LUA bench/gen_bodies.lua "$OUT/www" >/dev/null

PREFIX=$(mktemp -d "${TMPDIR:-/tmp}/llamacloud-bench.XXXXXX")
mkdir -p "$PREFIX/logs" "$PREFIX/tmp"
stop() {
  if [ -s "$PREFIX/nginx.pid" ]; then kill "$(cat "$PREFIX/nginx.pid")" 2>/dev/null || true; fi
  rm -rf "$PREFIX"
}
trap stop EXIT
trap 'exit 130' INT TERM

WWW=$(cd "$OUT/www" && pwd)
USER_LINE=""
if [ "$(id -u)" = 0 ]; then USER_LINE="user root;"; fi # workers must read the bodies
PORT=$((20000 + $$ % 20000))
tries=0
while :; do
  sed -e "s|@USER@|$USER_LINE|" -e "s|@PORT@|$PORT|" -e "s|@WWW@|$WWW|g" bench/nginx.conf >"$PREFIX/nginx.conf"
  if nginx -p "$PREFIX/" -c nginx.conf -e "$PREFIX/logs/error.log" 2>"$PREFIX/start.err"; then break; fi
  tries=$((tries + 1))
  if [ $tries -ge 20 ]; then
    cat "$PREFIX/start.err" >&2
    exit 1
  fi
  PORT=$((PORT + 1))
done
# nginx has bound the port before its master daemonizes; wait for the pid file all the same.
n=0
while [ ! -s "$PREFIX/nginx.pid" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done

if [ "${1:-}" = callgrind ]; then
  $LUA bench/callgrind.lua "http://127.0.0.1:$PORT" "$BIN" "$WWW" "$PREFIX"
else
  $LUA bench/run.lua "http://127.0.0.1:$PORT" "$BIN" "$WWW" "$OUT/results.json"
fi
