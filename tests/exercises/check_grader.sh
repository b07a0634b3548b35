#!/usr/bin/env bash
# The exercise grader names every seeded wrong solution correctly and passes the reference.
#
#   bash tests/exercises/check_grader.sh
#
# 1. the skeletons (exercises/*.cpp as shipped) are all reported "not done" with the command;
# 2. the reference kernels' bodies pasted into the exercise files (paste_reference.py) pass;
# 3. each exercises/wrong/NAME/DIAGNOSIS.cpp fails with exactly that diagnosis.
# Run by CTest (exercise_grader); needs only a C++ compiler (ccache if present).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/tapegrad-grader-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
export TAPEGRAD_GRADER_CACHE=${TAPEGRAD_GRADER_CACHE:-$work/cache}
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# 1. skeletons
TSV=$work/skeleton.tsv bash "$ROOT/scripts/exercise.sh" check >"$work/skeleton.out" 2>&1 || true
if [[ ! -f $work/skeleton.tsv ]]; then  # e.g. a skeleton's signature no longer matches
    cat "$work/skeleton.out"
    echo "FAIL: the shipped exercise files could not be graded"
    exit 1
fi
for name in $(bash "$ROOT/scripts/exercise.sh" list); do
    line=$(awk -F'\t' -v n="$name" '$1 == n' "$work/skeleton.tsv")
    [[ $(cut -f2 <<<"$line") == "not done" ]] || fail "skeleton $name: not reported 'not done': $line"
    grep -q "bash scripts/exercise.sh check $name" <<<"$line" || fail "skeleton $name: no command to start"
done

# 2. the reference bodies pasted in
/usr/bin/python3 "$ROOT/exercises/grader/paste_reference.py" "$work/solution"
if ! TSV=$work/solution.tsv bash "$ROOT/scripts/exercise.sh" check --dir "$work/solution" >"$work/solution.out" 2>&1; then
    cat "$work/solution.out"
    fail "the reference solution does not pass"
fi
echo "reference solution: $(grep -c $'\tpass\t' "$work/solution.tsv") of $(bash "$ROOT/scripts/exercise.sh" list | wc -l) exercises pass"

# 3. seeded wrong solutions, two at a time (each in its own directory)
check_one() {  # FILE: prints "ok NAME/DIAGNOSIS" or "FAIL ..." and the grader's output
    local file=$1 name want dir got
    name=$(basename "$(dirname "$file")")
    want=$(basename "$file" .cpp)
    dir=$(mktemp -d "$work/wrong.XXXXXX")
    cp "$file" "$dir/$name.cpp"
    TSV=$dir/result.tsv bash "$ROOT/scripts/exercise.sh" check --dir "$dir" "$name" \
        >"$dir/out" 2>&1 || true
    got=$(awk -F'\t' -v n="$name" '$1 == n {print $3}' "$dir/result.tsv" 2>/dev/null | tail -1)
    if [[ $got == "$want" ]]; then
        echo "ok   $name/$want"
    else
        echo "FAIL: $name/$want diagnosed as '${got:-nothing}':"
        cat "$dir/out"
    fi
}
export -f check_one
export ROOT work
bash "$ROOT/scripts/exercise.sh" prepare  # the shared objects once, before the parallel runs
ls "$ROOT"/exercises/wrong/*/*.cpp | xargs -P 2 -I{} bash -c 'check_one "$1"' _ {} >"$work/wrong.log"
cat "$work/wrong.log"
count=$(grep -c '^ok\|^FAIL' "$work/wrong.log" || true)
failures=$((failures + $(grep -c '^FAIL' "$work/wrong.log" || true)))
echo "$count seeded wrong solutions checked"

# 4. the debugger route: gdb stops at the first mismatch with expected and actual, and
#    `continue` stops in the student's own kernel (gdb is in scripts/setup.sh's group debug).
if command -v gdb >/dev/null; then
    rm -rf "$work/student" && mkdir -p "$work/student"
    cp "$ROOT/exercises/wrong/batch_norm_backward/missing_term2.cpp" "$work/student/batch_norm_backward.cpp"
    printf 'continue\nquit\n' | bash "$ROOT/scripts/exercise.sh" debug --dir "$work/student" \
        batch_norm_backward >"$work/debug.out" 2>&1 || true
    if grep -q "expected 0.27250433658667" "$work/debug.out" &&
        grep -q "actual   0.25999771481335" "$work/debug.out" &&
        grep -q "tg::exercises::batch_norm_backward (dx=" "$work/debug.out"; then
        echo "ok   debug: stopped at the first mismatch, then in the student's kernel"
    else
        cat "$work/debug.out"
        fail "exercise.sh debug did not stop at the first mismatch and in the student's kernel"
    fi
else
    echo "SKIP the gdb route: gdb is not installed (bash scripts/setup.sh debug)"
fi
echo "$failures failure(s)"
[[ $failures -eq 0 ]]
