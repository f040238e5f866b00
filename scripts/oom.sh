#!/bin/sh
# Failure injection at every budget (docs/reliability.md, "Out of memory and raising finalizers"):
# spec/oom/oom_host.c, built with ASan+UBSan for PUC 5.1 and 5.4 and loading the ASan build of
# llamacloud.core, runs each call of spec/oom/driver.lua against the fake server with Lua's allocator
# failing from the N-th allocation on (lua), libcurl's (curl), or an unrelated finalizer raising at the
# N-th collection point (gc: 5.1 in the host, LuaJIT through spec/oom/finalizers_jit.lua), for every N
# until the call succeeds (a sample for the 3 MB bodies).
# A crash, a sanitizer report, a leak, a hang or an outcome that is not a clean failure fails it.
# Usage: scripts/oom.sh [VERSION:MODE:CALL ...]   e.g. scripts/oom.sh 5.4:lua:get 5.1:gc:wait
#   OOM_PLAIN=1: no sanitizers (quicker, to bisect); OOM_ARGS: options for every host (--max-bad 50, ...).
set -u
cd "$(dirname "$0")/.." || exit 2

# One sweep (v:mode:call), its output in $OOM_LOG/<item>.out and what its children printed in .err.
# Options by kind: the 3 MB bodies are sampled (25 budgets spread evenly, then the last 5); the finalizer
# sweeps run a whole collection at every point (quadratic), so past 150 points they are sampled too
# (60 budgets spread evenly, then the last 40).
# LeakSanitizer (about half of a child's cost under ASan) checks every second child of the Lua
# allocator's get, wait and decode sweeps, every third of its get_many and wait_many, every fourth
# elsewhere (all of them with OOM_FULL=1); Lua's own heap is checked empty in every child.
sweep() {
  v=${1%%:*}
  rest=${1#*:}
  mode=${rest%%:*}
  call=${rest#*:}
  case "$mode:$call" in
    *_big) opts="--samples ${OOM_BIG_SAMPLES:-25} --tail 5 --leak-every 4" ;;
    gc:*) opts="--dense 150 --samples 60 --tail 40 --leak-every 4" ;;
    lua:*_many) opts="--leak-every 3" ;;
    lua:*) opts="--leak-every 2" ;;
    *) opts="--leak-every 4" ;;
  esac
  [ "${OOM_FULL:-}" = 1 ] && opts="$opts --leak-every 1"
  if [ "$OOM_PLAIN" = 1 ]; then cpath="build/oom/plain/$v/?.so"; else cpath="build/asan/$v/?.so"; fi
  if [ "$v" = jit ]; then
    # LuaJIT: spec/oom/finalizers_jit.lua in the interpreter itself, the ASan runtime preloaded
    LD_PRELOAD=${OOM_RT:-} LUA_PATH="$OOM_LUA_PATH;;" LUA_CPATH="$cpath;;" \
      luajit spec/oom/finalizers_jit.lua "$OOM_URL" "$call" >"$OOM_LOG/$1.out" 2>"$OOM_LOG/$1.err"
    echo $? >"$OOM_LOG/$1.rc"
    return
  fi
  # shellcheck disable=SC2086
  OOM_LUA_CPATH=$cpath "$OOM_OUT/oom_host-$v" "$OOM_URL" "$call" "$mode" $opts ${OOM_ARGS:-} \
    >"$OOM_LOG/$1.out" 2>"$OOM_LOG/$1.err"
  echo $? >"$OOM_LOG/$1.rc"
}

if [ "${1:-}" = --sweep ]; then
  sweep "$2"
  exit 0
fi

# The plan of make test: every small call on both versions under Lua's allocator, the 3 MB body through
# the decoder, get and get_many (5.4) and get (5.1); libcurl's allocator on 5.4 (libcurl does not
# depend on the Lua version); the finalizers on 5.1 and LuaJIT (the decoder alone on LuaJIT only).
# OOM_FULL=1 adds every big call on both versions, big calls under libcurl's allocator, 5.1's decoder,
# the small calls on 5.4 with only the N-th allocation failing (lua1: an emergency collection there),
# and LeakSanitizer in every child.
SMALL="decode get create get_many wait wait_many"
BIG="decode_big get_big get_many_big wait_big wait_many_big"
plan=$*
if [ -z "$plan" ]; then
  big54="decode_big get_big get_many_big"
  big51="get_big"
  curlbig="get_big"
  if [ "${OOM_FULL:-}" = 1 ]; then big54=$BIG; big51=$BIG; curlbig="get_big get_many_big wait_many_big"; fi
  gc51="get get_index get_many wait wait_many"
  [ "${OOM_FULL:-}" = 1 ] && gc51="$SMALL get_index"
  # the longest first, so the two lanes end together
  for c in $gc51; do plan="$plan 5.1:gc:$c"; done
  for c in $SMALL $big51; do plan="$plan 5.1:lua:$c"; done
  for c in $SMALL $big54; do plan="$plan 5.4:lua:$c"; done
  for c in new get create get_many wait wait_many $curlbig; do plan="$plan 5.4:curl:$c"; done
  for c in $SMALL get_index; do plan="$plan jit:gc:$c"; done
  if [ "${OOM_FULL:-}" = 1 ]; then for c in $SMALL; do plan="$plan 5.4:lua1:$c"; done; fi
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
  OOM_RT=$(clang -print-file-name=libclang_rt.asan-x86_64.so)
  [ -f "$OOM_RT" ] || { echo "oom: $OOM_RT is missing (apt-get install libclang-rt-14-dev)" >&2; exit 2; }
  export OOM_RT
fi
mkdir -p "$OUT"
for v in $versions; do
  # the module in the directory scripts/sanitize.sh builds it in (same flags), or a plain one of its own
  if [ "${OOM_PLAIN:-}" = 1 ]; then mod=build/oom/plain/$v; else mod=build/asan/$v; fi
  make -s LUA_VERSION="$v" BUILD="$mod" CC="$CC_OOM" CFLAGS="$FLAGS" LDFLAGS="$LDF" "$mod/llamacloud/core.so" || exit 2
  [ "$v" = jit ] && continue
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
export OOM_BIG_FILE=$LOG/big.json
lua5.4 -e "package.path='./?.lua;'..package.path" \
  -e "local f = assert(io.open(os.getenv('OOM_BIG_FILE'), 'wb')); f:write((require('spec.oom.bodies').big())); f:close()" || exit 2
export OOM_URL=$url OOM_OUT=$OUT OOM_LOG=$LOG OOM_PLAIN=${OOM_PLAIN:-} OOM_FULL=${OOM_FULL:-}

start=$(date +%s)
# OOM_JOBS sweeps at a time (2: both cores), each host forking one child per budget.
printf '%s\n' $plan | xargs -P "${OOM_JOBS:-2}" -n 1 sh scripts/oom.sh --sweep
end=$(date +%s)
failed=0
items=0
for p in $plan; do
  items=$((items + 1))
  cat "$LOG/$p.out"
  if [ "$(cat "$LOG/$p.rc")" != 0 ]; then
    failed=$((failed + 1))
    echo "---- $p: the first lines its children printed ($LOG/$p.err)"
    grep -v '^ *$' "$LOG/$p.err" | head -n 40
  fi
done
if [ $failed -gt 0 ]; then
  echo "oom: $failed of $items sweeps failed in $((end - start)) s; logs in $LOG" >&2
  exit 1
fi
rm -rf "$LOG"
echo "oom: $items sweeps clean in $((end - start)) s"
