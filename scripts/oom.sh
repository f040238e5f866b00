#!/bin/sh
# Failure injection at every budget (docs/reliability.md, "Out of memory and raising finalizers"):
# spec/oom/oom_host.c, built with ASan+UBSan for PUC 5.1 and 5.4 and loading the ASan build of
# llamacloud.core, runs each call of spec/oom/driver.lua against the fake server with Lua's allocator
# failing from the N-th allocation on (lua), libcurl's (curl), or an unrelated finalizer raising at the
# N-th collection point (gc, 5.1), for every N until the call succeeds (a sample for the 3 MB bodies).
# A crash, a sanitizer report, a leak, a hang or an outcome that is not a clean failure fails it.
# Usage: scripts/oom.sh [VERSION:MODE:CALL ...]   e.g. scripts/oom.sh 5.4:lua:get 5.1:gc:wait
#   OOM_PLAIN=1: no sanitizers (quicker, to bisect); OOM_ARGS: options for every host (--max-bad 50, ...).
set -u
cd "$(dirname "$0")/.." || exit 2

SMALL="decode get get_many wait wait_many"
BIG="decode_big get_big get_many_big wait_big wait_many_big"
plan=$*
if [ -z "$plan" ]; then
  for v in 5.4 5.1; do for c in $SMALL $BIG; do plan="$plan $v:lua:$c"; done; done
  for c in get get_many wait wait_many get_big; do plan="$plan 5.4:curl:$c"; done
  for c in $SMALL get_big wait_big; do plan="$plan 5.1:gc:$c"; done
fi
versions=$(for p in $plan; do echo "${p%%:*}"; done | sort -u)

if [ "${OOM_PLAIN:-}" = 1 ]; then
  CC_OOM=${CC:-cc}
  FLAGS="-O1 -g"
  LDF=""
  OUT=build/oom/plain
else
  command -v clang >/dev/null || { echo "oom: clang is missing (apt-get install clang libclang-rt-14-dev)" >&2; exit 2; }
  CC_OOM=clang
  FLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
  LDF="-fsanitize=address,undefined"
  OUT=build/oom/asan
fi
mkdir -p "$OUT"
for v in $versions; do
  # the module in the directory scripts/sanitize.sh builds it in (same flags), or a plain one of its own
  if [ "${OOM_PLAIN:-}" = 1 ]; then mod=build/oom/plain/$v; else mod=build/asan/$v; fi
  make -s LUA_VERSION="$v" BUILD="$mod" CC="$CC_OOM" CFLAGS="$FLAGS" LDFLAGS="$LDF" "$mod/llamacloud/core.so" || exit 2
  # shellcheck disable=SC2046
  $CC_OOM $FLAGS -Wall -Wextra spec/oom/oom_host.c -o "$OUT/oom_host-$v" \
    $(pkg-config --cflags --libs "lua$v" libcurl) $LDF || exit 2
done

LOG=$(mktemp -d /tmp/llamacloud-oom.XXXXXX)
lua5.4 -e "package.path='lua/?.lua;lua/?/init.lua;./?.lua;'..package.path" \
  -e "os.exit(require('llamacloud.fake_server').main({'--port', '0', '--scenario', 'spec/oom/scenario.lua'}))" \
  >"$LOG/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null' EXIT INT TERM
url=
for _ in $(seq 1 500); do
  url=$(sed -n 's/^fake-server listening on //p' "$LOG/server.log")
  [ -n "$url" ] && break
  sleep 0.02
done
[ -n "$url" ] || { echo "oom: the fake server did not start:" >&2; cat "$LOG/server.log" >&2; exit 2; }

export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=1"
export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export OOM_LUA_PATH='lua/?.lua;lua/?/init.lua;./?.lua'
start=$(date +%s)
failed=0
items=0
for p in $plan; do
  v=${p%%:*}
  rest=${p#*:}
  mode=${rest%%:*}
  call=${rest#*:}
  if [ "${OOM_PLAIN:-}" = 1 ]; then cpath="build/oom/plain/$v/?.so"; else cpath="build/asan/$v/?.so"; fi
  items=$((items + 1))
  # shellcheck disable=SC2086
  if ! OOM_LUA_CPATH=$cpath "$OUT/oom_host-$v" "$url" "$call" "$mode" ${OOM_ARGS:-} 2>"$LOG/$v-$mode-$call.err"; then
    failed=$((failed + 1))
    echo "---- $v $mode $call: first lines of what the children printed ($LOG/$v-$mode-$call.err)"
    grep -v '^ *$' "$LOG/$v-$mode-$call.err" | head -n 60
  fi
done
end=$(date +%s)
if [ $failed -gt 0 ]; then
  echo "oom: $failed of $items sweeps failed in $((end - start)) s; logs in $LOG" >&2
  exit 1
fi
rm -rf "$LOG"
echo "oom: $items sweeps clean in $((end - start)) s"
