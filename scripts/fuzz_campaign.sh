#!/usr/bin/env bash
# A longer fuzzing campaign than CI's: every target for FUZZ_CAMPAIGN_SECONDS (default 600),
# one target at a time (so each gets a core, not a share of a swamped machine), at
# `nice -n FUZZ_CAMPAIGN_NICE` (default 5), from the committed seeds and any corpus of an
# earlier campaign. Prints the command, the load average before and after each target, and
# runs, time, runs/s, coverage (libFuzzer's cov / ft), corpus size and findings per target
# (the figures in docs/reliability.md come from this script).
#
#   scripts/fuzz_campaign.sh                       # 10 minutes per target, 30 minutes in all
#   FUZZ_CAMPAIGN_SECONDS=3600 scripts/fuzz_campaign.sh
#   FUZZ_CAMPAIGN_TARGETS="fuzz_idx" scripts/fuzz_campaign.sh
#
# Exit status: non-zero if any target found a crash, leak, sanitizer report or broken promise
# (the input is in build/fuzz/campaign/<target>/findings/).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ci/fuzz_build.sh
SECS="${FUZZ_CAMPAIGN_SECONDS:-600}"
NICE="${FUZZ_CAMPAIGN_NICE:-5}"
read -r -a targets <<<"${FUZZ_CAMPAIGN_TARGETS:-${FUZZ_TARGETS[*]}}"
OUT="$FUZZ_BUILD/campaign"
mkdir -p "$OUT"
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
status=0
for t in "${targets[@]}"; do
    mkdir -p "$OUT/$t/corpus" "$OUT/$t/findings"
    cmd=(nice -n "$NICE" "$FUZZ_BUILD/tests/fuzz/$t" -max_total_time="$SECS" -max_len=4096
        -rss_limit_mb=1024 -timeout=10 -print_final_stats=1
        -artifact_prefix="$OUT/$t/findings/" "$OUT/$t/corpus" "tests/fuzz/seeds/$t")
    echo "== $t: ${cmd[*]}"
    echo "   start $(date -u +%H:%M:%S) load $(loadavg)"
    "${cmd[@]}" >"$OUT/$t.log" 2>&1 || status=1
    echo "   end   $(date -u +%H:%M:%S) load $(loadavg)"
    loadavg >"$OUT/$t.load"
done
printf "%-18s %10s %8s %8s %6s %6s %7s %s\n" target runs seconds "runs/s" cov ft corpus findings
for t in "${targets[@]}"; do
    log="$OUT/$t.log"
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log")
    # The last status line ("#N  DONE  cov: C ft: F corp: ...") carries the final coverage.
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corpus=$(find "$OUT/$t/corpus" -type f | wc -l)
    findings=$(find "$OUT/$t/findings" -type f | wc -l)
    rate="?"
    if [ -n "${runs:-}" ] && [ -n "${secs:-}" ] && [ "$secs" -gt 0 ]; then rate=$((runs / secs)); fi
    printf "%-18s %10s %8s %8s %6s %6s %7s %s\n" "$t" "${runs:-?}" "${secs:-?}" "$rate" \
        "${cov:-?}" "${ft:-?}" "$corpus" "$findings"
done
exit $status
