#!/usr/bin/env bash
# Benchmarks tapegrad against PyTorch on the same CPU: builds the release preset, runs both
# back to back with the same thread count, prints one table and writes docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS="${THREADS:-$(nproc)}"
bash scripts/setup.sh
source scripts/env.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target bench_tapegrad
out="$(mktemp -d)"
echo "tapegrad ($THREADS threads)..."
OPENBLAS_NUM_THREADS="$THREADS" ./build/release/bench/bench_tapegrad --threads "$THREADS" "$@" >"$out/tapegrad.json"
echo "PyTorch ($THREADS threads)..."
/usr/bin/python3 bench/bench_torch.py --threads "$THREADS" "$@" >"$out/torch.json"
/usr/bin/python3 bench/report.py "$out/tapegrad.json" "$out/torch.json" --write docs/performance.md
echo "(table written to docs/performance.md)"
