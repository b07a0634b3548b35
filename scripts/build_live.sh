#!/usr/bin/env bash
# build_live.sh OUT_JS: compiles the chapter page's live BatchNorm figure (web/bn_live.cpp with
# tapegrad's reference kernel, src/ops/kernels/reference/batch_norm.cpp, the histogram code,
# src/viz/histogram.cpp, and the generator, src/core/random.cpp) to WebAssembly with Debian's
# emscripten, into one JavaScript file with the wasm embedded (-sSINGLE_FILE=1: the page works
# from file://). scripts/chapter_page.py inlines it into out/ch310/index.html.
# Needs emscripten and node-acorn (bash scripts/setup.sh chapter); exit 3 when emcc is missing.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: bash scripts/build_live.sh OUT_JS" >&2; exit 2; }
out_js="$(realpath -m "$1")"
cd "$(dirname "$0")/.."
if ! command -v emcc >/dev/null; then
  echo "build_live: emcc not found (bash scripts/setup.sh chapter)" >&2
  exit 3
fi
# emcc's sysroot does not see /usr/include (and must not: glibc's headers clash): a folder of
# symlinks to just the header-only libraries tapegrad's headers use.
inc="$(mktemp -d)"
trap 'rm -rf "$inc"' EXIT
for lib in xtensor xtl xsimd; do ln -s "/usr/include/$lib" "$inc/$lib"; done
exports=$(grep -o 'bnl_[a-z_]*(' web/bn_live.hpp | tr -d '(' | sort -u | sed 's/^/_/' | paste -sd, -)
mkdir -p "$(dirname "$out_js")"
# At -O1 and above emcc's JS optimizer needs the acorn module, which Debian keeps here.
NODE_PATH=/usr/share/nodejs emcc -std=c++20 -O2 -fexceptions -Wall -Wextra -Werror \
  -Iinclude -Isrc -Iweb -isystem "$inc" \
  web/bn_live.cpp src/ops/kernels/reference/batch_norm.cpp src/viz/histogram.cpp src/core/random.cpp src/core/shape_check.cpp \
  -sSINGLE_FILE=1 -sMODULARIZE=1 -sEXPORT_NAME=BnLive -sENVIRONMENT=web,node \
  -sALLOW_MEMORY_GROWTH=1 -sEXPORTED_FUNCTIONS="$exports" \
  -sEXPORTED_RUNTIME_METHODS=UTF8ToString \
  -o "$out_js.tmp.js"
mv "$out_js.tmp.js" "$out_js"
echo "build_live: $out_js ($(($(stat -c %s "$out_js") / 1024)) KiB, wasm embedded)"
