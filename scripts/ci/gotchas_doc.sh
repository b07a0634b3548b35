#!/usr/bin/env bash
# docs/ch310_gotchas.md quotes what the eight gotcha programs print (CI stage, opt-in): builds
# them in the ci preset, runs each with its full settings and compares with the page, line by
# line (tests/check_ch310_gotchas_doc.py; the forward times of ch310_norm_family excepted).
# The numbers after training depend on the CPU's GEMM kernels: the page was written on an
# AVX-512 machine (OpenBLAS core SkylakeX); elsewhere this stage reports the lines that differ.
# About 30 s of runs on 2 cores, plus the build.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CMAKE_CXX_COMPILER_LAUNCHER="${CMAKE_CXX_COMPILER_LAUNCHER:-ccache}"
programs=(ch310_train_vs_eval ch310_shifted_stats ch310_manual_batchnorm ch310_variance_convention
          ch310_norm_family ch322_layernorm_vs_batchnorm ch306_tape_backprop ch310_checkpoint_bn)
cmake --preset ci >/dev/null
cmake --build --preset ci -j "${JOBS:-$(nproc)}" --target "${programs[@]}"
source scripts/env.sh
echo "OpenBLAS core: ${OPENBLAS_CORETYPE:-(its own choice)}"
/usr/bin/python3 tests/check_ch310_gotchas_doc.py . build/ci
