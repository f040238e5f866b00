#!/bin/sh
# Runs one check (a command) as a step of make test and appends its verdict to $LLAMACLOUD_TALLY
# as "1 0 0 NAME" or "0 1 0 NAME". Usage: scripts/step.sh NAME command [args...]
name=$1
shift
echo "== $name"
start=$(date +%s)
"$@"
rc=$?
echo "== $name: $([ $rc -eq 0 ] && echo passed || echo "FAILED (exit $rc)") in $(( $(date +%s) - start )) s"
if [ -n "${LLAMACLOUD_TALLY:-}" ]; then
  if [ $rc -eq 0 ]; then echo "1 0 0 $name" >> "$LLAMACLOUD_TALLY"; else echo "0 1 0 $name" >> "$LLAMACLOUD_TALLY"; fi
fi
exit $rc
