#!/bin/sh
# Runs the whole spec suite with LLAMA_CLOUD_LOG=debug and a distinctive LLAMA_CLOUD_API_KEY, capturing all
# of its stdout and stderr (debug log lines included), while scripts/keyscan_helper.lua scans every error the
# core returns for its client's key. Fails if any key a client was built with shows in an error or anywhere
# in the output. Spec failures are reported but do not decide: the environment's key can change what some
# specs expect.
# Usage: scripts/keyscan.sh [busted args...]   (LUA_VERSION, default 5.4)
. "$(dirname "$0")/suite_common.sh"
build_module

KEY="sk-keyscan-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
OUT=$(mktemp /tmp/llamacloud-keyscan.XXXXXX)
LOG=$(mktemp /tmp/llamacloud-keyscan-log.XXXXXX)
start=$(date +%s)
LLAMA_CLOUD_API_KEY=$KEY LLAMA_PARSE_API_KEY=$KEY LLAMA_CLOUD_LOG=debug LLAMACLOUD_KEYSCAN_OUT=$OUT \
LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH="$BUILD/?.so;;" \
  "$LUA" /usr/bin/busted --lpath='lua/?.lua;lua/?/init.lua' --cpath="$BUILD/?.so" \
  --helper=scripts/keyscan_helper.lua -o utfTerminal "$@" >"$LOG" 2>&1
rc=$?
end=$(date +%s)

KEYS=$(mktemp /tmp/llamacloud-keyscan-keys.XXXXXX)
{ echo "$KEY"; sed -n 's/^key\t//p' "$OUT"; } | sort -u >"$KEYS"
nkeys=$(wc -l <"$KEYS")
errors=$(sed -n 's/^errors\t//p' "$OUT")
loglines=$(grep -c 'llamacloud: GET ' "$LOG")
leaks=$(grep -c '^leak' "$OUT")
hits=$(grep -c -F -f "$KEYS" "$LOG")
grep '^[0-9]* success' "$LOG" | tail -n 1
echo "keyscan: $nkeys keys, ${errors:-?} errors scanned, $loglines debug log lines, $(wc -l <"$LOG") output lines, $((end - start)) s"
status=0
if [ "$leaks" -gt 0 ]; then
  grep '^leak' "$OUT"
  echo "keyscan: a key was found in $leaks error(s)" >&2
  status=1
fi
if [ "$hits" -gt 0 ]; then
  grep -n -F -f "$KEYS" "$LOG" | head -n 50
  echo "keyscan: a key was found on $hits output line(s) (log $LOG)" >&2
  status=1
fi
if [ "$loglines" -eq 0 ]; then
  echo "keyscan: no debug log line was printed: LLAMA_CLOUD_LOG=debug had no effect?" >&2
  status=1
fi
if [ $status -eq 0 ]; then
  rm -f "$OUT" "$LOG" "$KEYS"
  echo "keyscan: no key in any error or output (busted exit $rc)"
fi
exit $status
