#!/bin/sh
# Runs the whole spec suite against llamacloud.core built with ASan and UBSan; any sanitizer report fails it.
# The module goes to build/asan/<ver>; the ASan runtime is preloaded into the interpreter (and so into every
# child the specs spawn), every process writes its reports under a log directory, and a non-empty one fails.
# Usage: scripts/sanitize.sh [busted args...]   (LUA_VERSION, default 5.4; LUA, default lua$LUA_VERSION)
. "$(dirname "$0")/suite_common.sh"
BUILD=build/asan/$LUA_VERSION
SANFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"

command -v clang >/dev/null || { echo "sanitize: clang is missing (apt-get install clang libclang-rt-14-dev)" >&2; exit 2; }
RT=$(clang -print-file-name=libclang_rt.asan-x86_64.so)
[ -f "$RT" ] || { echo "sanitize: $RT is missing (apt-get install libclang-rt-14-dev)" >&2; exit 2; }

build_module CC=clang CFLAGS="$SANFLAGS" LDFLAGS="-fsanitize=address,undefined"

LOGDIR=$(mktemp -d /tmp/llamacloud-asan.XXXXXX)
SUPP=$PWD/scripts/lsan.supp
start=$(date +%s)
# Children (the fake server, shells, the CLI, nvim) inherit the preload, so their reports land in LOGDIR too.
LD_PRELOAD=$RT \
ASAN_OPTIONS="detect_leaks=1:exitcode=0:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1:log_path=$LOGDIR/asan" \
LSAN_OPTIONS="suppressions=$SUPP:print_suppressions=0" \
UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$LOGDIR/ubsan" \
LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH="$BUILD/?.so;;" \
  "$LUA" /usr/bin/busted --lpath='lua/?.lua;lua/?/init.lua' --cpath="$BUILD/?.so" "$@" &
pid=$!
wait $pid
rc=$?
end=$(date +%s)

# Any report from the interpreter running the specs fails, and so does any memory error or undefined
# behaviour anywhere. A leak report from a child alone does not: programs that exit without freeing
# (nvim, the CLI and the fake server end with os.exit and no lua_close, script, mktemp) all "leak" at exit.
# exitcode=0 keeps a report from changing any process's exit status (specs check their children's); the
# reports themselves decide. Children that must free everything (spec/lifetime_spec.lua's lua_close child)
# are run with exitcode=23 appended, so a leak fails their spec.
failed=0
ignored=0
for f in $(find "$LOGDIR" -type f -size +0 | sort); do
  fpid=${f##*.}
  if [ "$fpid" = "$pid" ] || grep -q -E 'ERROR: AddressSanitizer|runtime error|ERROR: UndefinedBehaviorSanitizer' "$f"; then
    echo "==== $f"
    cat "$f"
    failed=$((failed + 1))
  else
    ignored=$((ignored + 1))
  fi
done
if [ $failed -gt 0 ]; then
  echo "sanitize: $failed sanitizer report(s); logs in $LOGDIR" >&2
  exit 1
fi
rm -rf "$LOGDIR"
echo "sanitize: ASan+UBSan clean (leak reports of $ignored child process(es) that exit without freeing ignored), busted exit $rc, $((end - start)) s"
exit $rc
