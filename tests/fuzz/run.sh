#!/usr/bin/env bash
# Runs each libFuzzer target (fuzz_compile, fuzz_check, fuzz_at) for
# SECONDS on a fresh copy of its seed corpus and of the regressions, one
# after the other; exits non-zero at the first crash, hang, leak,
# sanitizer report or broken rule, whose input is left in WORK/TARGET/.
# CI runs it for 20 s per target (.ci/run); docs/robustness.md.
# usage: tests/fuzz/run.sh BUILD_DIR SECONDS [WORK_DIR]
set -euo pipefail
build=$1 secs=$2
work=${3:-$(mktemp -d /tmp/gradc-fuzz.XXXXXX)}
src=$(cd "$(dirname "$0")" && pwd)
for t in compile check at; do
  case $t in
    compile) seeds="corpus regressions" dict=gradc.dict ;;
    check) seeds="corpus-check regressions" dict=gradc.dict ;;
    at) seeds="corpus-at" dict=at.dict ;;
  esac
  mkdir -p "$work/$t/corpus"
  for s in $seeds; do cp "$src/$s"/* "$work/$t/corpus/"; done
  echo "fuzz_$t: $secs s"
  "$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
      -max_len=4096 -print_final_stats=1 -dict="$src/$dict" \
      -artifact_prefix="$work/$t/" "$work/$t/corpus" 2>"$work/$t/log" ||
    { tail -n 60 "$work/$t/log"; echo "fuzz_$t failed; the input is in $work/$t/"; exit 1; }
  grep -E '^stat::number_of_executed_units|^#[0-9]+ *DONE' "$work/$t/log" || true
done
