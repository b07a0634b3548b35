#!/usr/bin/env bash
# The chapter's main job: builds the two Batch Normalisation programs (release preset) and runs
# them with their defaults, then says where the figures are.
#   ch310_bn_histograms  the chapter's figure (activations before/after BN for B = 8..512), the
#                        noise of the batch statistics, the same figure from a CNN on MNIST
#   ch310_train_cnn      a LeNet-style CNN trained on MNIST with and without BN
# Each program's --help lists its flags (seed, output directory, epochs, dataset, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh build chapter
source scripts/env.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target ch310_bn_histograms ch310_train_cnn

out="out/ch310"  # both programs' default output directory

echo
echo "=== ch310_bn_histograms: BatchNorm histograms across batch sizes ==="
./build/release/examples/ch310_bn_histograms
echo
echo "=== ch310_train_cnn: a CNN trained with and without BatchNorm ==="
./build/release/examples/ch310_train_cnn

# --- tg::dist (issue 13): the data-parallel BatchNorm gotcha and SyncBatchNorm, on MPI --------
# Runs only when Open MPI is installed (mpirun) and the build found it. 4 ranks, as the
# chapter's "batch of 128 over 4 workers"; --oversubscribe lets 4 ranks share fewer cores
# (each rank then uses one thread).
figures_mpi=""
if command -v mpirun >/dev/null &&
   cmake --build --preset release --target help | grep -q ch310_sync_batchnorm; then
  cmake --build --preset release -j "$(nproc)" --target ch310_sync_batchnorm
  echo
  echo "=== ch310_sync_batchnorm: BatchNorm vs SyncBatchNorm on 4 MPI ranks ==="
  root_flag=""
  [ "$(id -u)" -eq 0 ] && root_flag="--allow-run-as-root"
  mpirun $root_flag --oversubscribe -np 4 ./build/release/examples/ch310_sync_batchnorm
  figures_mpi="ch310_sync_batchnorm"
else
  echo
  echo "(ch310_sync_batchnorm skipped: needs Open MPI, apt-get install libopenmpi-dev openmpi-bin)"
fi
# --- end tg::dist --------------------------------------------------------------------------

echo
echo "Figures (PNG; each drawn by the gnuplot script of the same name, which you can edit and re-run):"
for f in ch310_batchnorm ch310_batch_noise ch310_batchnorm_cnn ch310_training $figures_mpi; do
  if [ -f "$out/$f.png" ]; then
    echo "  $out/$f.png"
  else
    echo "  $out/$f.gp   (not rendered: install gnuplot-nox, then: gnuplot $out/$f.gp)"
  fi
done
echo "Compare $out/ch310_batchnorm.png with the chapter's figure; data next to each figure as CSV."

# ---- i12: the mechanics and gotcha demonstrations (docs/ch310_gotchas.md) -------------------
# Eight short programs, each printing what happened; together well under two minutes.
gotchas=(ch310_train_vs_eval ch310_shifted_stats ch310_manual_batchnorm ch310_variance_convention
         ch310_norm_family ch322_layernorm_vs_batchnorm ch306_tape_backprop ch310_checkpoint_bn)
cmake --build --preset release -j "$(nproc)" --target "${gotchas[@]}"
for program in "${gotchas[@]}"; do
  echo
  echo "=== $program ==="
  ./build/release/examples/"$program"
done
echo
echo "Gotcha demonstrations' outputs (see docs/ch310_gotchas.md):"
for f in out/ch310/ch310_train_vs_eval.png out/ch310/ch310_shifted_stats.png \
         out/ch310/ch310_variance_convention.png out/ch310/ch310_norm_axes.png \
         out/ch310/ch310_checkpoint_bn.png out/ch306/ch306_tape.png; do
  if [ -f "$f" ]; then echo "  $f"; else echo "  $f   (not rendered: gnuplot/graphviz missing)"; fi
done
for program in "${gotchas[@]}"; do
  for f in out/*/"${program}_facts.json"; do
    if [ -f "$f" ]; then echo "  $f"; fi
  done
done
# ---- end of i12's block -----------------------------------------------------------------------
