#!/bin/sh
# Adds up the "passed failed pending what" lines of a tally file and prints "N passed, N failed".
# Exits non-zero when anything failed or nothing ran.
file=${1:?usage: tally.sh FILE}
[ -s "$file" ] || { echo "0 passed, 1 failed"; echo "tally: nothing ran ($file is empty)" >&2; exit 1; }
awk '{ p += $1; f += $2; s += $3 } END {
  if (s > 0) printf "%d passed, %d failed, %d skipped\n", p, f, s; else printf "%d passed, %d failed\n", p, f
  exit (f > 0 || p == 0) }' "$file"
