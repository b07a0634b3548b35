#!/usr/bin/env bash
# scripts/ci/debuggers.sh — what a student sees of tapegrad in an IDE's debugger, and in their own
# program against an installed tapegrad (tests/debuggers/check_debuggers.py does the checks):
#   mi         gdb --interpreter=mi2 driven as VS Code's C/C++ extension does (-enable-pretty-
#              printing, break at tg::batch_norm in ch306_tape_backprop, -var-create, two levels
#              of -var-list-children): a Tensor with shape and element children; the model
#              expands to its BatchNorm1d and that to running_mean
#   lldb       the same session in `lldb -b -s` with scripts/lldb/tapegrad_lldb.py
#   outside    gdb -ix <checkout>/scripts/gdb/gdbinit from another directory, on a program in a
#              build directory outside the checkout: printers loaded, no auto-load warning
#   installed  cmake --install of the debug build into a temporary prefix, a 10-line Debug
#              program built against it with find_package (tests/debuggers/consumer/), gdb with
#              <prefix>/share/tapegrad/gdb/gdbinit prints its Tensor, model and optimiser
# Reuses scripts/ci/gdb.sh's debug build (build/ci-gdb): run after it, it builds nothing new but
# the consumer (about 1 minute here); alone, it first builds what it needs. Needs the `debug`
# group of scripts/setup.sh (gdb, lldb, python3-lldb-14) and the `build` group.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo="$PWD"
start=$(date +%s)
for tool in gdb lldb; do
  command -v "$tool" >/dev/null ||
    { echo "debuggers.sh: $tool is not installed (bash scripts/setup.sh debug)" >&2; exit 1; }
done
if command -v ccache >/dev/null; then
  export CMAKE_CXX_COMPILER_LAUNCHER=ccache CCACHE_HASHDIR=1
fi

build=build/ci-gdb
cmake --preset debug -B "$build" -DTAPEGRAD_GDB_TESTS=ON -DTAPEGRAD_WERROR=ON \
  -DTAPEGRAD_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j"${JOBS:-2}" --target gdb_fixture ch306_tape_backprop tapegrad
# shellcheck source=/dev/null
source scripts/env.sh
check=tests/debuggers/check_debuggers.py
/usr/bin/python3 "$check" mi "$repo" "$build/examples/ch306_tape_backprop"
/usr/bin/python3 "$check" lldb "$repo" "$build/examples/ch306_tape_backprop"
/usr/bin/python3 "$check" outside "$repo" "$build/tests/gdb/gdb_fixture"

work=$(mktemp -d /tmp/tapegrad-debuggers.XXXXXX)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >"$work/install.log"
for f in gdb/gdbinit gdb/tapegrad.py gdb/tapegrad-skip.gdb lldb/tapegrad_lldb.py lldb/lldbinit; do
  [ -f "$work/prefix/share/tapegrad/$f" ] ||
    { echo "debuggers.sh: the install lacks share/tapegrad/$f" >&2; exit 1; }
done
cmake -S tests/debuggers/consumer -B "$work/consumer" -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_PREFIX_PATH="$work/prefix" >"$work/consumer.log"
cmake --build "$work/consumer" >>"$work/consumer.log" || { tail -n 40 "$work/consumer.log"; exit 1; }
/usr/bin/python3 "$check" installed "$work/prefix" "$work/consumer/my_program"
echo "debuggers.sh: passed in $(($(date +%s) - start)) s"
