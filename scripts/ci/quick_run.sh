#!/usr/bin/env bash
# quick_run.sh OUT BIN PROGRAM: one chapter program in --quick mode into OUT, recorded in
# OUT/runs.tsv for the chapter page (CTest's fixture "ch310_quick", tests/CMakeLists.txt).
set -euo pipefail
out="$1" bin="$2" prog="$3"
cd "$(dirname "$0")/../.."
source scripts/env.sh
source scripts/chapter_lib.sh
chapter_run "$out" "$bin" "$prog" --quick >/dev/null
echo "$prog --quick: $(tail -n 1 "$out/runs.tsv" | cut -f3) s; figures: $(tail -n 1 "$out/runs.tsv" | cut -f4 | tr " " "\n" | grep -c "\.png$")"
