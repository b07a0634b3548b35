#!/usr/bin/env bash
# scripts/ci/gdb.sh — the gdb tests (CTest label `gdb`): gdb in batch mode on the debug build.
#   printers     tapegrad's pretty-printers and tg-* commands on tests/gdb/gdb_fixture.cpp
#   walkthrough  every gdb session of docs/debugging.md replayed on the program it names
#                (ch310_train_cnn --quick, ch306_tape_backprop), its output compared with
#                what the doc shows
#   steps        the doc's step/next count into batch_norm's backward kernel, against its promise
# Configures the debug preset into its own build directory (build/ci-gdb), builds only the
# fixture and the doc's programs, runs the tests; exits non-zero on failure. Needs: gdb
# (Debian package `gdb`, with Python), /usr/bin/python3, and what the debug build needs.
set -euo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)

command -v gdb >/dev/null || { echo "gdb.sh: gdb is not installed (bash scripts/setup.sh debug)" >&2; exit 1; }
gdb -nx -batch -ex 'python print("python ok")' | grep -q "python ok" ||
  { echo "gdb.sh: this gdb has no Python support" >&2; exit 1; }
# With ccache, hash the build directory too (hash_dir): gdb finds the sources through the
# directory each object was compiled in, and a cache shared by several checkouts would
# otherwise hand out objects compiled in another one.
if command -v ccache >/dev/null; then
  export CMAKE_CXX_COMPILER_LAUNCHER=ccache CCACHE_HASHDIR=1
fi

build=build/ci-gdb
cmake --preset debug -B "$build" -DTAPEGRAD_GDB_TESTS=ON -DTAPEGRAD_WERROR=ON \
  -DTAPEGRAD_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j"${JOBS:-2}" --target gdb_fixture ch310_train_cnn ch306_tape_backprop
# shellcheck source=/dev/null
source scripts/env.sh
ctest --test-dir "$build" -L gdb --output-on-failure
echo "gdb.sh: passed in $(($(date +%s) - start)) s"
