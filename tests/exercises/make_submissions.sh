#!/usr/bin/env bash
# A folder of N mixed student submissions for `scripts/exercise.sh grade` (tests and the docs):
#
#   bash tests/exercises/make_submissions.sh N OUTDIR
#
# Student k gets, in turn: the reference solution pasted in; one seeded wrong solution per
# exercise (exercises/wrong/); nothing (all "not done"); a backward that loops forever; a
# forward that writes through a null pointer (segfault); a file that does not compile.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
n=$1
out=$2
mkdir -p "$out"
solution=$(mktemp -d "${TMPDIR:-/tmp}/tapegrad-solution.XXXXXX")
trap 'rm -rf "$solution"' EXIT
/usr/bin/python3 "$ROOT/exercises/grader/paste_reference.py" "$solution"
mapfile -t wrong < <(ls "$ROOT"/exercises/wrong/*/*.cpp)
for ((k = 0; k < n; ++k)); do
    dir=$out/student$(printf '%02d' "$k")
    mkdir -p "$dir"
    case $((k % 6)) in
    0) cp "$solution"/*.cpp "$dir/" ;;
    1) cp "$solution"/*.cpp "$dir/"
       file=${wrong[$(( (k / 6) % ${#wrong[@]} ))]}
       cp "$file" "$dir/$(basename "$(dirname "$file")").cpp" ;;
    2) ;;  # nothing submitted
    3) cp "$solution"/*.cpp "$dir/"
       sed -i 's|^    const double B = static_cast<double>(N \* L);  // values per channel|&\n    for (volatile int spin = 0; spin >= 0; spin = spin \| 1) {}  // loops forever|' \
           "$dir/batch_norm_backward.cpp" ;;
    4) cp "$solution"/*.cpp "$dir/"
       sed -i 's|^    for (std::size_t c = 0; c < C; ++c) {  // channel c|    *static_cast<volatile real*>(nullptr) = 0;  // segfaults\n&|' \
           "$dir/batch_norm_forward.cpp" ;;
    5) cp "$solution"/*.cpp "$dir/"
       file=${wrong[$(( (k / 6 + 7) % ${#wrong[@]} ))]}
       cp "$file" "$dir/$(basename "$(dirname "$file")").cpp"
       echo "this is not C++" >>"$dir/batch_norm_update_running.cpp" ;;
    esac
done
