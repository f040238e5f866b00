#!/bin/sh
# Adds up the "passed failed pending what" lines of a tally file and prints "N passed, N failed".
# Above that line it names what failed: each failed step, and each failed spec from FILE.failures.
# Exits non-zero when anything failed or nothing ran.
file=${1:?usage: tally.sh FILE}
[ -s "$file" ] || { echo "0 passed, 1 failed"; echo "tally: nothing ran ($file is empty)" >&2; exit 1; }
awk '$2 > 0 { $1 = ""; $2 = ""; $3 = ""; sub(/^ +/, ""); print "failed: " $0 }' "$file"
[ -s "$file.failures" ] && sed 's/^/failed spec: /' "$file.failures" | head -n 40
awk '{ p += $1; f += $2; s += $3 } END {
  if (s > 0) printf "%d passed, %d failed, %d skipped\n", p, f, s; else printf "%d passed, %d failed\n", p, f
  exit (f > 0 || p == 0) }' "$file"
