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

echo
/usr/bin/python3 scripts/chapter_page.py "$out"
echo "Figures (PNG; each drawn by the gnuplot script of the same name, which you can edit and re-run):"
for f in "$out"/*.png; do echo "  $f"; done
echo "All of it on one page: $out/index.html"
