#!/bin/sh
# Runs the whole spec suite under valgrind memcheck (the interpreter running busted; the children the specs
# spawn, such as the fake server, run natively). Fails on any memory error or definite leak.
# Children that specs mean to check (the lua_close one in spec/lifetime_spec.lua) are wrapped in valgrind
# themselves through LLAMACLOUD_SPEC_VALGRIND.
# Usage: scripts/valgrind.sh [busted args...]   (LUA_VERSION, default 5.4; LUA, default lua$LUA_VERSION)
. "$(dirname "$0")/suite_common.sh"
command -v valgrind >/dev/null || { echo "valgrind: not installed (apt-get install valgrind)" >&2; exit 2; }
build_module

LOG=$(mktemp /tmp/llamacloud-valgrind.XXXXXX)
VG="valgrind --tool=memcheck --trace-children=no --leak-check=full --errors-for-leak-kinds=definite \
--show-leak-kinds=definite --error-exitcode=1 --num-callers=30 --suppressions=$PWD/scripts/valgrind.supp"
start=$(date +%s)
LLAMACLOUD_SPEC_VALGRIND="$VG" \
LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH="$BUILD/?.so;;" \
  $VG --log-file="$LOG" "$LUA" /usr/bin/busted --lpath='lua/?.lua;lua/?/init.lua' --cpath="$BUILD/?.so" "$@"
rc=$?
end=$(date +%s)

summary=$(grep -E 'ERROR SUMMARY|definitely lost|indirectly lost' "$LOG")
echo "$summary"
if ! grep -q 'ERROR SUMMARY: 0 errors' "$LOG"; then
  cat "$LOG"
  echo "valgrind: memory errors or definite leaks (log $LOG)" >&2
  exit 1
fi
rm -f "$LOG"
echo "valgrind: clean, busted exit $rc, $((end - start)) s"
exit $rc
