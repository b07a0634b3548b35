# Sourced by scripts/ci/fuzz.sh and scripts/fuzz_campaign.sh: configures build/fuzz with
# clang 14 (-fsanitize=address,undefined,fuzzer-no-link for the whole library) and builds
# the six libFuzzer targets in tests/fuzz/.
FUZZ_BUILD="${FUZZ_BUILD:-build/fuzz}"
FUZZ_TARGETS=(fuzz_idx fuzz_state_file fuzz_model_state fuzz_state_names fuzz_csv fuzz_shapes)
# ccache: these -g objects are for this stage's runs, never for a debugger, so they need not
# carry this clone's directory: without hash_dir, a clone elsewhere reuses them (their debug info
# then names the directory of the build that made them first).
export CCACHE_NOHASHDIR=1
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S . -B "$FUZZ_BUILD" -G "Unix Makefiles" "${launcher[@]}" \
    -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined,fuzzer-no-link -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
    -DTAPEGRAD_WERROR=ON -DTAPEGRAD_BUILD_FUZZ=ON -DTAPEGRAD_BUILD_EXAMPLES=OFF \
    -DTAPEGRAD_BUILD_BENCH=OFF >/dev/null
cmake --build "$FUZZ_BUILD" -j"${JOBS:-2}" --target "${FUZZ_TARGETS[@]}"
