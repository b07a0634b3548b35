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

# 3. seeded wrong solutions
count=0
for file in "$ROOT"/exercises/wrong/*/*.cpp; do
    name=$(basename "$(dirname "$file")")
    want=$(basename "$file" .cpp)
    rm -rf "$work/student" && mkdir -p "$work/student"
    cp "$file" "$work/student/$name.cpp"
    TSV=$work/wrong.tsv bash "$ROOT/scripts/exercise.sh" check --dir "$work/student" "$name" \
        >"$work/wrong.out" 2>&1 || true
    got=$(awk -F'\t' -v n="$name" '$1 == n {print $3}' "$work/wrong.tsv" | tail -1)
    count=$((count + 1))
    if [[ $got == "$want" ]]; then
        echo "ok   $name/$want"
    else
        fail "$name/$want diagnosed as '${got:-nothing}':"
        cat "$work/wrong.out"
    fi
done
echo "$count seeded wrong solutions checked, $failures failure(s)"
[[ $failures -eq 0 ]]
