#!/usr/bin/env bash
# The chapter's main job: builds the Batch Normalisation programs (release preset), runs them
# with their chapter settings, then writes out/ch310/index.html, one page with every figure,
# what each program printed, the claim it tests and the command that reproduces it.
#   ch310_bn_histograms  the chapter's figure (activations before/after BN for B = 8..512), the
#                        noise of the batch statistics, the same figure from a CNN on MNIST
#   ch310_train_cnn      a LeNet-style CNN trained on MNIST with and without BN
#   ch310_lr_sweep ... ch310_covariate_shift   the chapter's claims about training, one experiment
#                        each, and the covariate-shift debate (docs/ch310_experiments.md)
#   ch310_train_vs_eval ... ch310_checkpoint_bn   the mechanics and production gotchas, one
#                        demonstration each (docs/ch310_gotchas.md)
#   ch310_sync_batchnorm the data-parallel gotcha and SyncBatchNorm on 4 MPI ranks
#                        (docs/distributed.md), when Open MPI is installed
# and the page's live figure: web/bn_live.cpp with the reference BatchNorm kernel, compiled to
# WebAssembly (committed as web/bn_live.js; scripts/build_live.sh rebuilds it with emscripten,
# the `live` group, only when its sources changed) and natively (bn_live_check, the values the
# page's self-check compares with).
# Each program's --help lists its flags (seed, output directory, epochs, dataset, ...).
#
#   bash scripts/run_chapter.sh           everything with the chapter's settings (about 6 min)
#   bash scripts/run_chapter.sh --quick   every program in its few-second mode, for a first look
#   bash scripts/run_chapter.sh --full    the longer sweeps of record (docs/ch310_experiments.md):
#                                         --full to every program whose --help lists it
set -euo pipefail
cd "$(dirname "$0")/.."
mode=()
case "${1:-}" in
  --quick) mode=(--quick) ;;
  --full) mode=(--full) ;;
  "") ;;
  *) echo "usage: bash scripts/run_chapter.sh [--quick | --full]" >&2; exit 2 ;;
esac
bash scripts/setup.sh build chapter mpi
source scripts/env.sh
source scripts/chapter_lib.sh
if command -v ccache >/dev/null; then export CMAKE_CXX_COMPILER_LAUNCHER=ccache; fi
# In this order: ch310_convergence reads ch310_lr_sweep's summary to train each model at its
# best learning rate.
programs=(ch310_bn_histograms ch310_train_cnn
          ch310_lr_sweep ch310_convergence ch310_init_scale ch310_regularisation
          ch310_placement ch310_small_batch ch310_finetune ch310_covariate_shift
          ch310_train_vs_eval ch310_shifted_stats ch310_manual_batchnorm ch310_variance_convention
          ch310_norm_family ch322_layernorm_vs_batchnorm ch306_tape_backprop ch310_checkpoint_bn)
# Built but not run here: README's first program and tape_demo, for the reader's next steps
# (tests/check_docs.py reads these two lists: a documented build/release program must be in one).
also_built=(first_look tape_demo)
# CMake's configure output (what it looked for and did not find) goes to a log, shown on failure.
mkdir -p build
cmake --preset release >build/configure-release.log 2>&1 ||
  { cat build/configure-release.log; echo "run_chapter: cmake --preset release failed" >&2; exit 1; }
cmake --build --preset release -j "$(nproc)" --target "${programs[@]}" "${also_built[@]}" bn_live_check

out="out/ch310"  # every program's default output directory
mkdir -p "$out"
rm -f "$out/runs.tsv"
start=$SECONDS
for prog in "${programs[@]}"; do
  echo
  echo "=== $prog ==="
  args=("${mode[@]}")
  # --full goes only to the programs that have it (the others have no longer sweep).
  if [ "${mode[*]}" = --full ] && [[ "$(build/release/examples/"$prog" --help)" != *--full* ]]; then
    args=()
  fi
  chapter_run "$out" build/release/examples "$prog" "${args[@]}"
done

# tg::dist: the data-parallel BatchNorm gotcha and SyncBatchNorm. 4 ranks, as the chapter's
# "batch of 128 over 4 workers"; --oversubscribe lets 4 ranks share fewer cores.
if command -v mpirun >/dev/null &&
   cmake --build --preset release --target help | grep ch310_sync_batchnorm >/dev/null; then
  cmake --build --preset release -j "$(nproc)" --target ch310_sync_batchnorm
  echo
  echo "=== ch310_sync_batchnorm (mpirun -np 4) ==="
  root_flag=()
  [ "$(id -u)" -ne 0 ] || root_flag=(--allow-run-as-root)
  sync_args=()  # it has no --full (one run)
  [ "${mode[*]}" != --quick ] || sync_args=(--quick)
  CHAPTER_LAUNCHER="mpirun ${root_flag[*]} --oversubscribe -np 4" \
    chapter_run "$out" build/release/examples ch310_sync_batchnorm "${sync_args[@]}"
else
  echo
  echo "(ch310_sync_batchnorm skipped: needs Open MPI: bash scripts/setup.sh mpi)"
fi
echo
echo "All programs took $((SECONDS - start)) s."

echo
echo "=== the live figure (WebAssembly) ==="
build/release/examples/bn_live_check "$out"
bash scripts/build_live.sh "$out/bn_live.js"
echo
/usr/bin/python3 scripts/chapter_page.py "$out"
echo "Figures (PNG; each drawn by the gnuplot script of the same name, which you can edit and re-run):"
for f in "$out"/*.png; do echo "  $f"; done
echo "All of it on one page: $out/index.html"
