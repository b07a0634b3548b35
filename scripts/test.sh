#!/usr/bin/env bash
# Sets up a fresh machine, builds tapegrad with warnings as errors, and runs the tests.
#
#   bash scripts/test.sh          the ci build's CTest suite: unit tests (float32 and float64),
#                                 the chapter's programs in quick mode, notebooks, ...
#   bash scripts/test.sh --all    the same, then every stage of scripts/ci/ (what CI runs):
#                                 a one-CPU runner, MPI ranks, gdb in batch mode, a project
#                                 consuming the installed tapegrad, sanitizers, fuzzing
set -euo pipefail
cd "$(dirname "$0")/.."
all=0
for a in "$@"; do
  case "$a" in
    --all) all=1 ;;
    -h | --help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "test.sh: unknown argument '$a' (try --help)" >&2; exit 2 ;;
  esac
done

groups=(build test chapter notebooks browser)
if [ "$all" = 1 ]; then groups+=(mpi debug sanitizers); fi
bash scripts/setup.sh "${groups[@]}"
source scripts/env.sh
if command -v ccache >/dev/null; then export CMAKE_CXX_COMPILER_LAUNCHER=ccache; fi
start=$(date +%s)
cmake --preset ci
cmake --build --preset ci -j "$(nproc)"
ctest --preset ci -j "$(nproc)" --output-on-failure
echo "test.sh: the ci suite passed in $(($(date +%s) - start)) s"
[ "$all" = 1 ] || exit 0

# The stages below each configure their own build directory and build only what they run.
# Fuzzing: 30 s per target here (FUZZ_SECONDS overrides; scripts/fuzz_campaign.sh runs long).
export FUZZ_SECONDS="${FUZZ_SECONDS:-30}"
for stage in one_cpu mpi gdb consumer sanitizers fuzz; do
  [ -f "scripts/ci/$stage.sh" ] || continue
  echo
  echo "=== scripts/ci/$stage.sh ==="
  t0=$(date +%s)
  bash "scripts/ci/$stage.sh"
  echo "=== scripts/ci/$stage.sh passed in $(($(date +%s) - t0)) s"
done
echo "test.sh --all: everything passed in $(($(date +%s) - start)) s"
