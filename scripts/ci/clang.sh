#!/usr/bin/env bash
# CI stage: clang as a first-class compiler. The `clang` preset (clang++-14 with libc++, the
# standard library of macOS's Apple clang; -O1; warnings as errors; no -march=native) builds
# the float suite (tests_f32, the SIGKILL durability test, the two-threads test) and runs it
# with CTest's `clang` test preset. The float64 suite is left out to keep the stage cheap
# (it is the same code with TAPEGRAD_DOUBLE, a second full build). Needs the setup group
# `clang` (bash scripts/setup.sh clang). Exit status non-zero on a build or test failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CMAKE_CXX_COMPILER_LAUNCHER="${CMAKE_CXX_COMPILER_LAUNCHER:-$(command -v ccache || true)}"
source scripts/env.sh
JOBS="${JOBS:-2}"
start=$(date +%s)

if ! command -v clang++-14 >/dev/null || [ ! -d /usr/lib/llvm-14/include/c++/v1 ]; then
  echo "clang: clang++-14 or libc++ (libc++-dev, libc++abi-dev) is missing:" \
       "bash scripts/setup.sh clang installs them" >&2
  exit 1
fi
cmake --preset clang >/dev/null
cmake --build --preset clang -j"$JOBS"
build_end=$(date +%s)
TAPEGRAD_NUM_THREADS=2 ctest --preset clang
echo "clang: build $((build_end - start)) s, tests $(($(date +%s) - build_end)) s," \
     "total $(($(date +%s) - start)) s"
