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

echo
echo "Figures (PNG; each drawn by the gnuplot script of the same name, which you can edit and re-run):"
for f in ch310_batchnorm ch310_batch_noise ch310_batchnorm_cnn ch310_training; do
  if [ -f "$out/$f.png" ]; then
    echo "  $out/$f.png"
  else
    echo "  $out/$f.gp   (not rendered: install gnuplot-nox, then: gnuplot $out/$f.gp)"
  fi
done
echo "Compare $out/ch310_batchnorm.png with the chapter's figure; data next to each figure as CSV."
