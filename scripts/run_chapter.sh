#!/usr/bin/env bash
# The chapter's main job: builds the Batch Normalisation programs (release preset), runs them
# with their defaults, then writes out/ch310/index.html, one page with every figure, what each
# program printed, the claim it tests and the command that reproduces it.
#   ch310_bn_histograms  the chapter's figure (activations before/after BN for B = 8..512), the
#                        noise of the batch statistics, the same figure from a CNN on MNIST
#   ch310_train_cnn      a LeNet-style CNN trained on MNIST with and without BN
# Each program's --help lists its flags (seed, output directory, epochs, dataset, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh build chapter
source scripts/env.sh
source scripts/chapter_lib.sh
programs=(ch310_bn_histograms ch310_train_cnn)
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target "${programs[@]}"

out="out/ch310"  # every program's default output directory
mkdir -p "$out"
rm -f "$out/runs.tsv"
for prog in "${programs[@]}"; do
  echo
  echo "=== $prog ==="
  chapter_run "$out" build/release/examples "$prog"
done

# --- tg::dist (issue 13): the data-parallel BatchNorm gotcha and SyncBatchNorm, on MPI --------
# Runs only when Open MPI is installed (mpirun) and the build found it. 4 ranks, as the
# chapter's "batch of 128 over 4 workers"; --oversubscribe lets 4 ranks share fewer cores
# (each rank then uses one thread).
if command -v mpirun >/dev/null &&
   cmake --build --preset release --target help | grep -q ch310_sync_batchnorm; then
  cmake --build --preset release -j "$(nproc)" --target ch310_sync_batchnorm
  echo
  echo "=== ch310_sync_batchnorm: BatchNorm vs SyncBatchNorm on 4 MPI ranks ==="
  root_flag=""
  [ "$(id -u)" -eq 0 ] && root_flag="--allow-run-as-root"
  CHAPTER_LAUNCHER="mpirun $root_flag --oversubscribe -np 4" \
    chapter_run "$out" build/release/examples ch310_sync_batchnorm
else
  echo
  echo "(ch310_sync_batchnorm skipped: needs Open MPI, bash scripts/setup.sh mpi)"
fi
# --- end tg::dist --------------------------------------------------------------------------

echo
/usr/bin/python3 scripts/chapter_page.py "$out"
echo "Figures (PNG; each drawn by the gnuplot script of the same name, which you can edit and re-run):"
for f in "$out"/*.png; do echo "  $f"; done
echo "All of it on one page: $out/index.html"
