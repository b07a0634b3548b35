#!/usr/bin/env bash
# CI stage: the exercises build runs the student's kernels, and a right student's kernels
# train the chapter's CNN exactly as the reference kernels do (docs/exercises.md, "Train with
# your kernel").
#
#   bash scripts/ci/exercises_build.sh
#
# 1. The reference bodies pasted into the exercise files (exercises/grader/paste_reference.py):
#    `cmake --preset exercises` with TAPEGRAD_EXERCISES_DIR on them builds ch310_bn_histograms
#    and ch310_train_cnn, and its library really holds the student's kernels: every reference
#    kernel an exercise replaces is there only renamed (NAME_replaced_by_exercise), so the
#    programs call the student's functions.
# 2. The same preset with no exercises (TAPEGRAD_EXERCISES="") builds the reference: the same
#    flags (-O0 -g, reference kernels, one thread). All three builds share one build directory,
#    build/exercises-check (a reconfigure recompiles only the kernels' files: ccache does not
#    share -g objects between directories).
# 3. Both run `--quick --seed 1 --threads 1`: every file they write (the figures' CSV data,
#    gnuplot scripts, PNGs, checkpoints) must be the same bytes, and the accuracy table
#    printed by ch310_train_cnn the same text.
# 4. A student with one seeded mistake (exercises/wrong/batch_norm_backward/missing_term2.cpp,
#    the rest right) trains to different numbers: step 3's comparison can fail.
# 5. The exercise files as a fresh clone has them (every body throws exercise_not_done): the
#    chapter's CNN program stops with exit status 1 and the message naming an exercise and the
#    command to start; it never runs the reference kernel silently in the student's place.
#
# Needs: cmake, a C++ compiler (ccache if present). Exit status non-zero on any difference.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
source scripts/env.sh
export CMAKE_CXX_COMPILER_LAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER:-$(command -v ccache || true)}
# ccache: these -g objects are for this stage's runs, never for a debugger, so they need not
# carry this clone's directory: without hash_dir, a clone elsewhere reuses them (their debug info
# then names the directory of the build that made them first).
export CCACHE_NOHASHDIR=1
programs=(ch310_bn_histograms ch310_train_cnn)
work=$(mktemp -d "${TMPDIR:-/tmp}/tapegrad-exercises-build.XXXXXX")
trap 'rm -rf "$work"' EXIT

build() {  # BUILD_DIR CMAKE_ARGS...
    local dir=$1
    shift
    cmake --preset exercises -B "$dir" "$@" >"$work/configure.log" 2>&1 ||
        { cat "$work/configure.log"; exit 1; }
    grep "tapegrad: the exercises build" "$work/configure.log" || true
    cmake --build "$dir" -j"${JOBS:-2}" --target "${programs[@]}" >"$work/build.log" 2>&1 ||
        { tail -40 "$work/build.log"; exit 1; }
}

run() {  # BUILD_DIR OUT: runs both programs into OUT, their stdout in OUT/*.stdout
    local dir=$1 out=$2 program
    mkdir -p "$out"
    for program in "${programs[@]}"; do
        "$dir/examples/$program" --quick --seed 1 --threads 1 --out "$out/$program" \
            >"$out/$program.stdout" 2>&1 || { cat "$out/$program.stdout"; exit 1; }
    done
    # What ch310_train_cnn prints (the accuracy table), without the wall-clock lines (training
    # time, examples per second) and with the output folder's name taken out.
    grep -v -E 'time|ex/s|seconds| s$' "$out/ch310_train_cnn.stdout" | sed "s#$out#OUT#g" \
        >"$out/accuracy.txt"
}

same_outputs() {  # A B: 0 if every file and the accuracy table agree, else lists the differences
    local a=$1 b=$2 differ=0 file
    while IFS= read -r file; do
        if ! cmp -s "$a/$file" "$b/$file"; then
            echo "  differs: $file"
            differ=1
        fi
    done < <(cd "$a" && find . -type f ! -name '*.stdout' | sort)
    if [[ $(cd "$a" && find . -type f | sort) != $(cd "$b" && find . -type f | sort) ]]; then
        echo "  the two runs wrote different sets of files"
        differ=1
    fi
    return $differ
}

library_replaces() {  # BUILD_DIR: the exercises whose reference kernel the library renamed
    nm -C --defined-only "$1/libtapegrad.a" |
        grep -oE 'tg::kernels::reference::[a-z0-9_]+_replaced_by_exercise\(' |
        sed -E 's/^tg::kernels::reference::(.*)_replaced_by_exercise\($/\1/' | sort -u
}

t0=$(date +%s)
/usr/bin/python3 exercises/grader/paste_reference.py "$work/solution"
dir=build/exercises-check
echo "--- the exercises preset with the reference bodies pasted in ($dir)"
build "$dir" -DTAPEGRAD_EXERCISES=all -DTAPEGRAD_EXERCISES_USE_REFERENCE_FOR= \
    -DTAPEGRAD_EXERCISES_DIR="$work/solution"
replaced=$(library_replaces "$dir")
expected=$(bash scripts/exercise.sh list | sort)
if [[ $replaced != "$expected" ]]; then
    echo "FAIL: the exercises build's library does not replace every exercise's reference kernel"
    echo "  replaced: $(echo $replaced)"
    echo "  expected: $(echo $expected)"
    exit 1
fi
echo "the library's reference kernels replaced by the student's: $(echo $replaced)"
run "$dir" "$work/out-solution"

echo "--- the same preset with the reference kernels"
build "$dir" -DTAPEGRAD_EXERCISES= -DTAPEGRAD_EXERCISES_USE_REFERENCE_FOR= \
    -DTAPEGRAD_EXERCISES_DIR="$ROOT/exercises"
[[ -z $(library_replaces "$dir") ]] ||
    { echo "FAIL: the reference build replaced kernels"; exit 1; }
run "$dir" "$work/out-reference"

if ! same_outputs "$work/out-reference" "$work/out-solution"; then
    diff "$work/out-reference/accuracy.txt" "$work/out-solution/accuracy.txt" || true
    echo "FAIL: the student's kernels (the reference bodies pasted in) do not reproduce the reference build's figure and accuracy"
    exit 1
fi
echo "ok: the student's kernels draw the same figure data and train to the same accuracy:"
sed -n '/Test accuracy/,/^$/p' "$work/out-solution/ch310_train_cnn.stdout"

echo "--- one seeded mistake (batch_norm_backward missing term 2): the comparison must see it"
cp exercises/wrong/batch_norm_backward/missing_term2.cpp "$work/solution/batch_norm_backward.cpp"
build "$dir" -DTAPEGRAD_EXERCISES=all -DTAPEGRAD_EXERCISES_DIR="$work/solution"
run "$dir" "$work/out-wrong"
if same_outputs "$work/out-reference" "$work/out-wrong" >"$work/wrong.diff"; then
    echo "FAIL: a wrong batch_norm_backward trained to the very same numbers: the comparison sees nothing"
    exit 1
fi
echo "ok: the wrong student's run differs ($(grep -c differs "$work/wrong.diff") files)"
echo "--- the unfinished exercises (a fresh clone's files): the program must stop, naming one"
build "$dir" -DTAPEGRAD_EXERCISES=all -DTAPEGRAD_EXERCISES_USE_REFERENCE_FOR= \
    -DTAPEGRAD_EXERCISES_DIR="$ROOT/exercises"
status=0
"$dir/examples/ch310_train_cnn" --quick --seed 1 --threads 1 --out "$work/out-unfinished" \
    >"$work/unfinished.stdout" 2>&1 || status=$?
if [[ $status -ne 1 ]] ||
    ! grep -qE 'exercise [a-z0-9_]+ is not done yet: .*bash scripts/exercise.sh check' \
        "$work/unfinished.stdout"; then
    tail -5 "$work/unfinished.stdout"
    echo "FAIL: ch310_train_cnn built with unfinished exercises exited $status without naming one"
    exit 1
fi
echo "ok: with the unfinished exercises ch310_train_cnn stops: $(grep -oE 'exercise [a-z0-9_]+ is not done yet' "$work/unfinished.stdout" | head -1)"
echo "exercises_build passed in $(($(date +%s) - t0)) s"
