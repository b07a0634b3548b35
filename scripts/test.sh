#!/usr/bin/env bash
# Sets up a fresh machine, builds tapegrad with warnings as errors, and runs the tests.
#
#   bash scripts/test.sh          the ci build's CTest suite: unit tests (float32 and float64),
#                                 the chapter's programs in quick mode, notebooks, ...
#   bash scripts/test.sh --all    what CI runs: every stage of scripts/ci/ below, the first
#                                 of which (fresh_machine) runs `bash scripts/test.sh` and
#                                 `bash scripts/run_chapter.sh --quick` on a pristine Debian 12
#                                 root instead of this machine building the suite a second time;
#                                 then a one-CPU runner, MPI ranks, gdb in batch mode, VS Code's
#                                 MI and lldb on the debug build, a project consuming the
#                                 installed tapegrad, clang with libc++, sanitizers, fuzzing
set -euo pipefail
cd "$(dirname "$0")/.."
all=0
for a in "$@"; do
  case "$a" in
    --all) all=1 ;;
    -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "test.sh: unknown argument '$a' (try --help)" >&2; exit 2 ;;
  esac
done

# The groups of scripts/setup.sh each mode installs (README's install table lists them).
groups=(build test chapter notebooks browser)
# CI's stages, in order: scripts/ci/<stage>.sh, each configuring its own build directory and
# building only what it runs. Add a stage here.
stages=(live_js fresh_machine one_cpu mpi gdb debuggers exercises_build consumer sanitizers fuzz clang)
if [ "$all" = 1 ]; then groups+=(mpi debug sanitizers clang live fresh); fi
bash scripts/setup.sh "${groups[@]}"
source scripts/env.sh
if command -v ccache >/dev/null; then export CMAKE_CXX_COMPILER_LAUNCHER=ccache; fi
start=$(date +%s)

if [ "$all" = 0 ]; then
  # CMake's configure step prints what it looked for and did not find (an optional BLAS
  # symbol, MPI) before the lines that explain it: it goes to a log, shown when it fails.
  mkdir -p build
  log=build/configure-ci.log
  echo "test.sh: configuring (cmake --preset ci; its output: $log)"
  cmake --preset ci >"$log" 2>&1 || { cat "$log"; echo "test.sh: cmake --preset ci failed" >&2; exit 1; }
  cmake --build --preset ci -j "$(nproc)"
  ctest --preset ci -j "$(nproc)" --output-on-failure
  echo "test.sh: the ci suite passed in $(($(date +%s) - start)) s"
  exit 0
fi

# Fuzzing: 30 s per target here (FUZZ_SECONDS overrides; scripts/fuzz_campaign.sh runs long).
export FUZZ_SECONDS="${FUZZ_SECONDS:-30}"
times=()
for stage in "${stages[@]}"; do
  [ -f "scripts/ci/$stage.sh" ] || { echo "test.sh: stage scripts/ci/$stage.sh is missing" >&2; exit 1; }
  echo
  echo "=== scripts/ci/$stage.sh ==="
  t0=$(date +%s)
  bash "scripts/ci/$stage.sh"
  times+=("$(printf '%-16s %5d s' "$stage" $(($(date +%s) - t0)))")
  echo "=== scripts/ci/$stage.sh passed in $(($(date +%s) - t0)) s"
done
echo
echo "test.sh --all: the stages' times:"
printf '  %s\n' "${times[@]}"
echo "test.sh --all: everything passed in $(($(date +%s) - start)) s"
