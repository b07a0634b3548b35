#!/usr/bin/env bash
# Sets up a fresh machine, builds tapegrad with warnings as errors, and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh build test chapter notebooks browser
source scripts/env.sh
cmake --preset ci
cmake --build --preset ci -j "$(nproc)"
ctest --preset ci -j "$(nproc)"
