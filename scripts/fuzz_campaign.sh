#!/usr/bin/env bash
# A longer fuzzing campaign than CI's: every target for FUZZ_CAMPAIGN_SECONDS (default 600)
# at once, at the lowest CPU priority, from the committed seeds; prints runs, time, corpus
# size and findings per target (the figures in docs/reliability.md come from this script).
#
#   scripts/fuzz_campaign.sh                       # 10 minutes per target
#   FUZZ_CAMPAIGN_SECONDS=3600 scripts/fuzz_campaign.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ci/fuzz_build.sh
SECS="${FUZZ_CAMPAIGN_SECONDS:-600}"
OUT="$FUZZ_BUILD/campaign"
mkdir -p "$OUT"
pids=()
for t in "${FUZZ_TARGETS[@]}"; do
    mkdir -p "$OUT/$t/corpus" "$OUT/$t/findings"
    nice -n 19 "$FUZZ_BUILD/tests/fuzz/$t" -max_total_time="$SECS" -max_len=4096 \
        -rss_limit_mb=1024 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$OUT/$t/findings/" "$OUT/$t/corpus" tests/fuzz/seeds/"$t" \
        >"$OUT/$t.log" 2>&1 &
    pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
printf "%-18s %12s %8s %10s %8s %s\n" target runs seconds "runs/s" corpus findings
for t in "${FUZZ_TARGETS[@]}"; do
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$OUT/$t.log")
    secs=$(sed -n 's/^stat::.*//; s/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$OUT/$t.log")
    corpus=$(find "$OUT/$t/corpus" -type f | wc -l)
    findings=$(find "$OUT/$t/findings" -type f | wc -l)
    printf "%-18s %12s %8s %10s %8s %s\n" "$t" "${runs:-?}" "${secs:-?}" \
        "$([ -n "${runs:-}" ] && [ -n "${secs:-}" ] && [ "$secs" -gt 0 ] && echo $((runs / secs)) || echo ?)" \
        "$corpus" "$findings"
done
exit $status
