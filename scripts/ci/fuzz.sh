#!/usr/bin/env bash
# CI stage: build the libFuzzer targets (clang 14, ASan + UBSan) and run each for a bounded
# time from its committed seeds, after replaying every committed regression input.
#
#   scripts/ci/fuzz.sh                 # 30 s per target (6 targets: 3 min, as 3 x 60 s was)
#   FUZZ_SECONDS=300 scripts/ci/fuzz.sh
#
# Needs: clang-14, libclang-rt-14-dev (the fuzzer and sanitizer runtimes).
# Exit status: non-zero if the build fails, a regression input fails, or the fuzzer finds a
# crash, leak, sanitizer report or broken promise (the input is kept in build/fuzz/findings/).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/ci/fuzz_build.sh  # defines FUZZ_BUILD, FUZZ_TARGETS and builds them

SECONDS_PER_TARGET="${FUZZ_SECONDS:-30}"
status=0
for t in "${FUZZ_TARGETS[@]}"; do
    echo "== $t: regression inputs"
    if ! "$FUZZ_BUILD/tests/fuzz/$t" tests/fuzz/regressions/"$t"/* 2>&1 | tail -n 3; then
        echo "FAIL: $t crashed on a committed regression input"
        status=1
    fi
    echo "== $t: fuzzing for ${SECONDS_PER_TARGET} s"
    corpus="$FUZZ_BUILD/corpus/$t"
    findings="$FUZZ_BUILD/findings/$t"
    mkdir -p "$corpus" "$findings"
    # The working corpus starts from the committed seeds (new inputs stay in build/).
    if ! "$FUZZ_BUILD/tests/fuzz/$t" -max_total_time="$SECONDS_PER_TARGET" -max_len=4096 \
        -rss_limit_mb=1024 -timeout=10 -print_final_stats=1 -artifact_prefix="$findings/" \
        "$corpus" tests/fuzz/seeds/"$t" >"$FUZZ_BUILD/$t.log" 2>&1; then
        echo "FAIL: $t found a problem; the input is in $findings/"
        grep -E "ERROR|SUMMARY|tapegrad fuzz|Test unit written" "$FUZZ_BUILD/$t.log" | head -n 20
        status=1
    fi
    grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb|^#[0-9]+[[:space:]]+DONE" "$FUZZ_BUILD/$t.log" || true
done
exit $status
