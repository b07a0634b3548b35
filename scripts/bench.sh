#!/usr/bin/env bash
# Benchmarks tapegrad against PyTorch on the same CPU: builds the release preset, runs both
# back to back with the same thread count, prints one table and writes it to out/bench/.
#
#   bash scripts/bench.sh                  # table printed and written to out/bench/
#   bash scripts/bench.sh --update-docs    # ... and to docs/performance.md (deliberately)
#   RUNS=9 THREADS=1 bash scripts/bench.sh --batch-sizes 8 64   # other arguments go to both
#   THREADS=1 bash scripts/bench.sh --clock cpu   # a loaded machine: process CPU time
#   ISA=avx2 bash scripts/bench.sh         # both sides limited to AVX2 on an AVX-512 CPU
#   bash scripts/bench.sh --roofline       # only the per-op roofline (bench/roofline.py), no PyTorch
#   bash scripts/bench.sh --roofline --update-docs   # ... and its section of docs/performance.md
#
# ISA=avx2 stands in for the AVX2 machines we meet (AMD EPYC): tapegrad is built for
# x86-64-v3 in build/bench-avx2 with OpenBLAS's Haswell kernels, and PyTorch's oneDNN is
# capped with ONEDNN_MAX_CPU_ISA=AVX2 (its ATen kernels are AVX2 already). Same instructions,
# not the same machine: caches, memory and clock stay this CPU's.
#
# Each pair is followed by a tapegrad run with the reference kernels (--kernels reference), the
# table's third column: the price of the readable path.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS="${THREADS:-$(nproc)}"
update_docs=0
roofline=0
args=()
for a in "$@"; do
  case "$a" in
    --update-docs) update_docs=1 ;;
    --roofline) roofline=1 ;;
    *) args+=("$a") ;;
  esac
done
if [ "$roofline" = 1 ]; then
  # FLOPs and bytes per op from the shapes, the measured time per op, and the roofs (sgemm
  # ceiling, copy rate) measured on this machine; other arguments go to bench/roofline.py.
  bash scripts/setup.sh build
  cmake --preset release >/dev/null
  source scripts/env.sh
  cmake --build build/release -j "$(nproc)" --target bench_tapegrad bench_bandwidth
  mkdir -p out/bench
  writes=(--write out/bench/roofline.md)
  if [ "$update_docs" = 1 ]; then writes+=(--write docs/performance.md); fi
  /usr/bin/python3 bench/roofline.py --build build/release --threads "$THREADS" "${writes[@]}" ${args[@]+"${args[@]}"}
  echo
  echo "(written to out/bench/roofline.md)"
  if [ "$update_docs" = 1 ]; then echo "(and to docs/performance.md)"; fi
  exit 0
fi
bash scripts/setup.sh build torch
case "${ISA:-native}" in
  native)
    build=build/release
    cmake --preset release >/dev/null
    ;;
  avx2)
    if [ "$update_docs" = 1 ]; then
      echo "bench.sh: --update-docs records the native run; run ISA=avx2 without it" >&2
      exit 2
    fi
    build=build/bench-avx2
    export OPENBLAS_CORETYPE=Haswell ONEDNN_MAX_CPU_ISA=AVX2
    cmake --preset release -B "$build" -DCMAKE_CXX_FLAGS_RELEASE="-O3 -DNDEBUG -march=x86-64-v3" >/dev/null
    ;;
  *)
    echo "bench.sh: ISA must be native or avx2, not '$ISA'" >&2
    exit 2
    ;;
esac
source scripts/env.sh
cmake --build "$build" -j "$(nproc)" --target bench_tapegrad
bench="./$build/bench/bench_tapegrad"
mkdir -p out/bench
stamp="$(date -u +%Y%m%d-%H%M%S)"
raw="out/bench/$stamp"
mkdir -p "$raw"
# RUNS pairs (tapegrad, then PyTorch), back to back, each followed by a reference-kernel run;
# each pair runs the epoch, so its ratio is a median over the pairs too.
# The table gives, per batch size, the median of the pairs' ratios and their interquartile
# range, and the step's share of the sgemm ceiling each tapegrad run measures (this machine is
# noisy: 5 pairs by default, so one noisy pair cannot decide a verdict).
RUNS="${RUNS:-5}"
pairs=()
refs=()
for r in $(seq 1 "$RUNS"); do
  extra=()
  # Every pair times the epoch (seed 0); the first also scores seeds 1 and 2 for the accuracy.
  if [ "$r" -gt 1 ]; then extra=(--epoch-seeds 1); fi
  echo "pair $r of $RUNS: tapegrad ($THREADS threads)..."
  OPENBLAS_NUM_THREADS="$THREADS" "$bench" --threads "$THREADS" "${extra[@]}" ${args[@]+"${args[@]}"} >"$raw/tapegrad$r.json"
  echo "pair $r of $RUNS: PyTorch ($THREADS threads)..."
  /usr/bin/python3 bench/bench_torch.py --threads "$THREADS" "${extra[@]}" ${args[@]+"${args[@]}"} >"$raw/torch$r.json"
  pairs+=("$raw/tapegrad$r.json" "$raw/torch$r.json")
  echo "pair $r of $RUNS: tapegrad, reference kernels ($THREADS threads)..."
  OPENBLAS_NUM_THREADS="$THREADS" "$bench" --threads "$THREADS" --kernels reference --no-epoch --no-layers --no-profile ${args[@]+"${args[@]}"} >"$raw/reference$r.json"
  refs+=("$raw/reference$r.json")
done
writes=(--write "out/bench/$stamp.md" --write out/bench/latest.md)
if [ "$update_docs" = 1 ]; then writes+=(--write docs/performance.md); fi
/usr/bin/python3 bench/report.py "${pairs[@]}" --reference "${refs[@]}" "${writes[@]}"
echo
echo "(table written to out/bench/$stamp.md and out/bench/latest.md; raw JSON in $raw/)"
if [ "$update_docs" = 1 ]; then echo "(and to docs/performance.md)"; fi
