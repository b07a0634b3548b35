#!/usr/bin/env bash
# page_live.sh [OUT]: the chapter page in a real browser (CI stage). Builds bn_live_check (ci
# preset) and puts the live figure's WebAssembly beside the page (scripts/build_live.sh: the
# committed web/bn_live.js, or a new build when its sources changed), writes
# the page into OUT (default build/ci/page_live) from the CTest quick runs' files
# (build/ci/tests/ch310_quick: run after scripts/test.sh's CTest; fails without them), and has headless Chromium
# (scripts/ci/page_live.js, DevTools protocol over a pipe) check the page's own wasm-vs-native
# self-check, move the batch-size slider, find the TOC and the verdict table on the first screen
# and the sparklines in DejaVu Sans Mono. Keeps OUT/index_1280.png, the first screen at 1280 px.
# Needs the setup groups build, chapter and browser (Chromium, node); fails without them.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/setup.sh build chapter browser
for tool in node chromium; do
  command -v "$tool" >/dev/null ||
    { echo "page_live: $tool not found (bash scripts/setup.sh browser)"; exit 1; }
done
export CMAKE_CXX_COMPILER_LAUNCHER="${CMAKE_CXX_COMPILER_LAUNCHER:-$(command -v ccache || true)}"
cmake --preset ci >/dev/null
cmake --build --preset ci -j "$(nproc)" --target bn_live_check
out="${1:-build/ci/page_live}"
rm -rf "$out"
mkdir -p "$out"
quick=build/ci/tests/ch310_quick
if [ -f "$quick/runs.tsv" ]; then
  cp -a "$quick/." "$out/"
  rm -f "$out/index.html" "$out/index.png"
else
  # The verdict table and most of the TOC come from the programs' files: without them the
  # page cannot be checked for what a reader sees first.
  echo "page_live: no quick runs in $quick: run them first (scripts/test.sh does;" \
    "or ctest --preset ci -R ch310_quick after building the chapter programs)"
  exit 1
fi
build/ci/examples/bn_live_check "$out"
bash scripts/build_live.sh "$out/bn_live.js"
/usr/bin/python3 scripts/chapter_page.py "$out"
CHROMIUM="$(command -v chromium)" node scripts/ci/page_live.js "$out/index.html" "$out/index_1280.png"
