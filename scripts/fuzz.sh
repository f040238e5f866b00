#!/bin/sh
# Builds every libFuzzer target (fuzz/*_fuzz.c) with ASan and UBSan and runs each for FUZZ_SECONDS.
# Usage: scripts/fuzz.sh [target...]   e.g. FUZZ_SECONDS=3600 scripts/fuzz.sh retry url
# Seeds: fuzz/corpus/<target>/ (read, never written); what a run learns goes to build/fuzz/corpus/<target>/;
# a crash is saved as build/fuzz/artifacts/<target>-crash-* and fails the run. Prints one line per target
# with its executions, and a summary line.
set -u
cd "$(dirname "$0")/.." || exit 2
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_LUA=${FUZZ_LUA:-lua5.4}
OUT=build/fuzz
CFLAGS_FUZZ="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
command -v clang >/dev/null || { echo "fuzz: clang is missing (apt-get install clang libclang-rt-14-dev)" >&2; exit 2; }

if [ $# -gt 0 ]; then
  targets=$*
else
  targets=$(for f in fuzz/*_fuzz.c; do basename "$f" _fuzz.c; done)
fi
mkdir -p "$OUT/artifacts"
status=0
total_runs=0
for t in $targets; do
  src=fuzz/${t}_fuzz.c
  bin=$OUT/${t}_fuzz
  [ -f "$src" ] || { echo "fuzz: no $src" >&2; status=2; continue; }
  # libcrypto for webhook_fuzz (src/webhook.c's HMAC); the other targets do not use it.
  if ! clang $CFLAGS_FUZZ $(pkg-config --cflags "$FUZZ_LUA" libcurl libcrypto) -Wl,-E "$src" \
      $(pkg-config --libs "$FUZZ_LUA" libcurl libcrypto) -lm -o "$bin"; then
    echo "fuzz: $t: build failed" >&2
    status=1
    continue
  fi
  mkdir -p "$OUT/corpus/$t" "fuzz/corpus/$t"
  log=$OUT/$t.log
  start=$(date +%s)
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "./$bin" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
    -artifact_prefix="$OUT/artifacts/$t-" "$OUT/corpus/$t" "fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  end=$(date +%s)
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
  total_runs=$((total_runs + ${runs:-0}))
  if [ $rc -ne 0 ]; then
    echo "fuzz: $t: FAILED (exit $rc) after ${runs:-?} executions; log $log, artifacts $OUT/artifacts/$t-*"
    grep -m 40 -E 'ERROR|SUMMARY|_fuzz: |input \(' "$log"
    status=1
  else
    echo "fuzz: $t: ${runs:-?} executions in $((end - start)) s, $cov, corpus $(ls "$OUT/corpus/$t" | wc -l) + $(ls "fuzz/corpus/$t" | wc -l) seeds"
  fi
done
echo "fuzz: $total_runs executions in all, ${FUZZ_SECONDS} s per target"
exit $status
