#!/usr/bin/env bash
# build_live.sh: the chapter page's live BatchNorm figure, web/bn_live.cpp with tapegrad's
# reference kernel (src/ops/kernels/reference/batch_norm.cpp), the histogram code
# (src/viz/histogram.cpp) and the generator (src/core/random.cpp), compiled to WebAssembly by
# Debian's emscripten into one JavaScript file with the wasm embedded (-sSINGLE_FILE=1: the page
# works from file://). scripts/chapter_page.py inlines it into out/ch310/index.html.
#
# The build is committed as web/bn_live.js, with web/bn_live.sha256: the SHA-256 of every
# repository file it was compiled from (emcc -M) and of this script. The main job then needs no
# emscripten (about 1.2 GB installed) unless those files change.
#
#   bash scripts/build_live.sh OUT_JS    puts the figure's script at OUT_JS: a copy of
#                                        web/bn_live.js when its sources are unchanged, else a
#                                        new build (emcc; without it, the committed build and a
#                                        warning naming the changed files)
#   bash scripts/build_live.sh --update  rebuilds web/bn_live.js and web/bn_live.sha256 (commit
#                                        both after changing any file the stamp lists)
#   bash scripts/build_live.sh --check   rebuilds in a temp dir and fails unless the result
#                                        equals web/bn_live.js byte for byte and the stamp is
#                                        current (CI: scripts/ci/live_js.sh)
# emcc comes from `bash scripts/setup.sh live` (emscripten, node-acorn).
set -euo pipefail
usage="usage: bash scripts/build_live.sh OUT_JS | --update | --check"
[ $# -eq 1 ] || { echo "$usage" >&2; exit 2; }
mode=copy
case "$1" in
  --update) mode=update ;;
  --check) mode=check ;;
  -*) echo "$usage" >&2; exit 2 ;;
  *) out_js="$(realpath -m "$1")" ;;
esac
cd "$(dirname "$0")/.."

sources=(web/bn_live.cpp src/ops/kernels/reference/batch_norm.cpp src/viz/histogram.cpp
         src/core/random.cpp src/core/shape_check.cpp)
committed=web/bn_live.js
stamp=web/bn_live.sha256
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

need_emcc() {
  command -v emcc >/dev/null && return 0
  echo "build_live: emcc not found (bash scripts/setup.sh live installs emscripten)" >&2
  exit 3
}

# emcc's sysroot does not see /usr/include (and must not: glibc's headers clash): a folder of
# symlinks to just the header-only libraries tapegrad's headers use.
inc="$work/include"
mkdir -p "$inc"
for lib in xtensor xtl xsimd; do ln -s "/usr/include/$lib" "$inc/$lib"; done
cflags=(-std=c++20 -O2 -fexceptions -Wall -Wextra -Werror -Iinclude -Isrc -Iweb -isystem "$inc")

# The stamp: emcc's version, then `sha256sum` of this script and of every repository file the
# sources include (paths relative to the checkout, so the stamp is the same in any clone).
write_stamp() {
  {
    echo "# $(emcc --version | head -n 1)"
    { emcc "${cflags[@]}" -M "${sources[@]}" | tr ' \\' '\n\n' | grep -v -e '^$' -e ':$' -e '^/'
      echo scripts/build_live.sh; } | xargs realpath --relative-to=. | sort -u | xargs sha256sum
  } >"$1"
}

# Is every file the committed build was compiled from unchanged? (no emcc needed)
stamp_current() {
  [ -f "$committed" ] && [ -f "$stamp" ] &&
    grep -v '^#' "$stamp" | sha256sum --quiet --strict -c - >/dev/null 2>&1
}

build() {  # build OUT: compile the sources into OUT
  exports=$(grep -o 'bnl_[a-z_]*(' web/bn_live.hpp | tr -d '(' | sort -u | sed 's/^/_/' | paste -sd, -)
  mkdir -p "$(dirname "$1")"
  # At -O1 and above emcc's JS optimizer needs the acorn module, which Debian keeps here.
  NODE_PATH=/usr/share/nodejs emcc "${cflags[@]}" "${sources[@]}" \
    -sSINGLE_FILE=1 -sMODULARIZE=1 -sEXPORT_NAME=BnLive -sENVIRONMENT=web,node \
    -sALLOW_MEMORY_GROWTH=1 -sEXPORTED_FUNCTIONS="$exports" \
    -sEXPORTED_RUNTIME_METHODS=UTF8ToString \
    -o "$1.tmp.js"
  mv "$1.tmp.js" "$1"
}

kib() { echo "$(($(stat -c %s "$1") / 1024)) KiB"; }

case "$mode" in
  update)
    need_emcc
    build "$work/bn_live.js"
    write_stamp "$work/bn_live.sha256"
    mv "$work/bn_live.js" "$committed"
    mv "$work/bn_live.sha256" "$stamp"
    echo "build_live: $committed ($(kib "$committed"), wasm embedded) and $stamp written; commit both"
    ;;
  check)
    need_emcc
    build "$work/bn_live.js"
    write_stamp "$work/bn_live.sha256"
    bad=0
    if ! cmp -s "$work/bn_live.js" "$committed"; then
      echo "build_live: $committed is not what its sources build today" >&2
      bad=1
    fi
    if ! cmp -s "$work/bn_live.sha256" "$stamp"; then
      echo "build_live: $stamp is not current:" >&2
      diff "$stamp" "$work/bn_live.sha256" >&2 || true
      bad=1
    fi
    if [ "$bad" = 1 ]; then
      echo "build_live: run bash scripts/build_live.sh --update and commit web/bn_live.js and $stamp" >&2
      exit 1
    fi
    echo "build_live: $committed equals a new build of its sources byte for byte ($(kib "$committed")); $stamp is current"
    ;;
  copy)
    if stamp_current; then
      mkdir -p "$(dirname "$out_js")"
      cp "$committed" "$out_js"
      echo "build_live: $out_js (the committed build $committed: its sources are unchanged)"
    elif command -v emcc >/dev/null; then
      echo "build_live: the sources differ from those $committed was built from: building with emcc"
      build "$out_js"
      echo "build_live: $out_js ($(kib "$out_js"), wasm embedded)"
    else
      changed=$(grep -v '^#' "$stamp" | sha256sum -c - 2>/dev/null | grep -v ': OK$' |
                sed 's/: .*//' | paste -sd' ' -) || true
      echo "build_live: warning: ${changed:-the sources} changed since $committed was built, and" \
           "emcc is not installed (bash scripts/setup.sh live): the page's live figure is the" \
           "committed build; its self-check shows where it differs from your native build" >&2
      mkdir -p "$(dirname "$out_js")"
      cp "$committed" "$out_js"
    fi
    ;;
esac
