#!/usr/bin/env bash
# CI stage: the committed build of the chapter page's live figure (web/bn_live.js) is what its
# sources build today, byte for byte, and its stamp (web/bn_live.sha256) lists their current
# hashes: `bash scripts/build_live.sh --check`. The main job and the pristine-root stage use the
# committed build without emscripten; this stage is where emscripten proves it. Needs the setup
# group `live`. About 40 s on an idle 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)
bash scripts/build_live.sh --check
echo "live_js: passed in $(($(date +%s) - start)) s"
