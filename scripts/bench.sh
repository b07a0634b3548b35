#!/usr/bin/env bash
# Benchmarks tapegrad against PyTorch on the same CPU: builds the release preset, runs both
# back to back with the same thread count, prints one table and writes docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS="${THREADS:-$(nproc)}"
bash scripts/setup.sh build torch
source scripts/env.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target bench_tapegrad
out="$(mktemp -d)"
# RUNS pairs (tapegrad, then PyTorch), back to back; the epoch is run in the first pair only.
# The table gives, per batch size, the median of the pairs' ratios (this machine is noisy).
RUNS="${RUNS:-3}"
pairs=()
for r in $(seq 1 "$RUNS"); do
  extra=()
  if [ "$r" -gt 1 ]; then extra=(--no-epoch); fi
  echo "pair $r of $RUNS: tapegrad ($THREADS threads)..."
  OPENBLAS_NUM_THREADS="$THREADS" ./build/release/bench/bench_tapegrad --threads "$THREADS" "${extra[@]}" "$@" >"$out/tapegrad$r.json"
  echo "pair $r of $RUNS: PyTorch ($THREADS threads)..."
  /usr/bin/python3 bench/bench_torch.py --threads "$THREADS" "${extra[@]}" "$@" >"$out/torch$r.json"
  pairs+=("$out/tapegrad$r.json" "$out/torch$r.json")
done
/usr/bin/python3 bench/report.py "${pairs[@]}" --write docs/performance.md
echo "(table written to docs/performance.md)"
