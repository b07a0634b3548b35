#!/usr/bin/env bash
# CI stage: the sanitizer builds.
#  1. AddressSanitizer + UndefinedBehaviorSanitizer (the `asan` preset): tests_f32_sanitized,
#     the float test files that cover every op (against PyTorch), every loader and the
#     reliability tests (the list and why in tests/CMakeLists.txt), and the SIGKILL
#     durability test. The whole float suite and the float64 suite are left out to fit CI's
#     budget: every further test file costs ~30 s of one core to compile under ASan.
#  2. ThreadSanitizer (build/tsan): two threads training their own models with their own
#     generators while building layers from the shared default generator; zero reports.
# Exit status non-zero on any failure or sanitizer report.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CMAKE_CXX_COMPILER_LAUNCHER="${CMAKE_CXX_COMPILER_LAUNCHER:-$(command -v ccache || true)}"
# ccache: these -g objects are for this stage's runs, never for a debugger, so they need not
# carry this clone's directory: without hash_dir, a clone elsewhere reuses them (their debug info
# then names the directory of the build that made them first).
export CCACHE_NOHASHDIR=1
source scripts/env.sh
JOBS="${JOBS:-2}"
start=$(date +%s)

echo "== ASan + UBSan (preset asan): tests_f32_sanitized, durability_save_kill"
cmake --preset asan -DTAPEGRAD_BUILD_EXAMPLES=OFF -DTAPEGRAD_BUILD_BENCH=OFF >/dev/null
cmake --build --preset asan -j"$JOBS" --target tests_f32_sanitized durability_save_kill
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
t0=$(date +%s)
TAPEGRAD_NUM_THREADS=2 build/asan/tests/tests_f32_sanitized --no-intro=true
build/asan/tests/durability_save_kill 30
echo "asan run: $(($(date +%s) - t0)) s"

echo "== ThreadSanitizer (build/tsan): two_threads_training"
cmake -S . -B build/tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS="-fsanitize=thread -fno-omit-frame-pointer" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" \
    -DTAPEGRAD_BUILD_EXAMPLES=OFF -DTAPEGRAD_BUILD_BENCH=OFF >/dev/null
cmake --build build/tsan -j"$JOBS" --target two_threads_training
log=build/tsan/two_threads_training.log
TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1" \
    build/tsan/tests/two_threads_training 2>&1 | tee "$log"
if grep -q "ThreadSanitizer" "$log"; then
    echo "FAIL: ThreadSanitizer reports"
    exit 1
fi
echo "sanitizers: all passed in $(($(date +%s) - start)) s"
