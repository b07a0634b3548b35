#!/usr/bin/env bash
# CI stage: the float test suite on a simulated one-CPU runner. Tests that exercise threads
# must set their thread count (tests/thread_count.hpp) and still run two threads there; a test
# that relied on the machine's CPU count would quietly run one thread and pass with a broken
# threaded path.
#
#   scripts/ci/one_cpu.sh
#
# The simulation: `taskset -c 0` (one CPU to run on) and an LD_PRELOAD of get_nprocs() = 1,
# which is what std::thread::hardware_concurrency() asks (glibc counts the online CPUs, not
# the affinity mask, so taskset alone still reports every CPU). TAPEGRAD_NUM_THREADS is unset,
# so the default thread count would be 1.
#
# Needs: util-linux (taskset), a C compiler (cc) for the shim. Exit status: non-zero if the
# build fails, the simulation does not take, or a test fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
unset TAPEGRAD_NUM_THREADS
source scripts/env.sh

cmake --preset ci >/dev/null
cmake --build --preset ci -j"${JOBS:-2}" --target tests_f32

shim_dir=build/one_cpu
mkdir -p "$shim_dir"
cat >"$shim_dir/one_cpu.c" <<'EOF'
/* get_nprocs() = 1: std::thread::hardware_concurrency() reports one CPU. */
int get_nprocs(void) { return 1; }
int get_nprocs_conf(void) { return 1; }
EOF
cat >"$shim_dir/cpus.cpp" <<'EOF'
#include <cstdio>
#include <thread>
int main() { std::printf("%u\n", std::thread::hardware_concurrency()); }
EOF
cc -shared -fPIC -O1 -o "$shim_dir/one_cpu.so" "$shim_dir/one_cpu.c"
c++ -O1 -pthread -o "$shim_dir/cpus" "$shim_dir/cpus.cpp"
one_cpu=(env LD_PRELOAD="$PWD/$shim_dir/one_cpu.so" taskset -c 0)

cpus=$("${one_cpu[@]}" "$shim_dir/cpus")
if [ "$cpus" != 1 ]; then
    echo "FAIL: the one-CPU simulation did not take (hardware_concurrency() = $cpus)"
    exit 1
fi
echo "== tests_f32 on one CPU (hardware_concurrency() = $cpus, taskset -c 0)"
"${one_cpu[@]}" build/ci/tests/tests_f32 --no-intro=true
