#!/usr/bin/env bash
# CI stage for tg::dist (MPI): builds the MPI test binaries and the chapter program in the ci
# preset (warnings as errors) and runs every CTest labelled "mpi": SyncBatchNorm against
# BatchNorm and the data-parallel checks on 1, 2, 3 and 4 ranks (float32 and float64), a
# throwing rank that must abort the job (2-4 ranks), and ch310_sync_batchnorm --quick on 2 and 4
# ranks.
# Needs Debian's libopenmpi-dev and openmpi-bin; exits non-zero if MPI is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/setup.sh build test mpi
command -v mpiexec >/dev/null || { echo "mpi.sh: mpiexec not found (apt-get install libopenmpi-dev openmpi-bin)"; exit 1; }
source scripts/env.sh
export CMAKE_CXX_COMPILER_LAUNCHER="${CMAKE_CXX_COMPILER_LAUNCHER:-$(command -v ccache || true)}"
cmake --preset ci >/dev/null
# tests/dist/ is configured only when CMake found MPI.
[ -f build/ci/tests/dist/CTestTestfile.cmake ] || { echo "mpi.sh: CMake did not find MPI"; exit 1; }
cmake --build --preset ci -j "$(nproc)" --target tests_dist_f32 tests_dist_f64 dist_rank_throws \
  ch310_sync_batchnorm
# Open MPI refuses to run as root unless told (CI containers often are root).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ctest --preset ci -L mpi
