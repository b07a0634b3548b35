#!/usr/bin/env bash
# scripts/exercise.sh — the exercises' grader, debugger and teacher's table (docs/exercises.md).
#
#   bash scripts/exercise.sh check [NAME...]           grade exercises/NAME.cpp (all if no NAME)
#   bash scripts/exercise.sh debug NAME                gdb, stopped at the first element that differs
#   bash scripts/exercise.sh grade DIR [--timeout S]   one subfolder of DIR per student: CSV + HTML
#   bash scripts/exercise.sh build [--use-reference-for A,B] [TARGET...]
#                                                      the chapter programs with your kernels
#   bash scripts/exercise.sh list                      the exercises
#
# check/debug/grade compile the student's files (and nothing of the library: the grader holds
# the reference kernels' own sources, compiled once) into a small float64 grader binary.
# Options for check/debug: --dir DIR reads the exercise files from DIR instead of exercises/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CXX=${CXX:-c++}
CACHE=${TAPEGRAD_GRADER_CACHE:-$ROOT/build/exercise-grader}
FLAGS=(-std=c++20 -O0 -g -DTAPEGRAD_DOUBLE -ffp-contract=off)
LAUNCH=()
if command -v ccache >/dev/null; then LAUNCH=(ccache); fi

die() { echo "exercise.sh: $*" >&2; exit 2; }

# The exercises and their reference sources (exercises/exercises.txt).
names() { grep -v '^#' "$ROOT/exercises/exercises.txt" | awk 'NF {print $1}'; }
reference_sources() {  # the reference sources and the other sources they need (columns 2...)
    grep -v '^#' "$ROOT/exercises/exercises.txt" | awk 'NF {for (i = 2; i <= NF; ++i) print $i}' | sort -u
}
header_of() {  # the header declaring exercise $1's kernel: the source's own header
    local src           # (src/optim/sgd_step.hpp) or its kernel pair's (src/ops/kernels/<pair>.hpp)
    src=$(grep -v '^#' "$ROOT/exercises/exercises.txt" | awk -v n="$1" '$1 == n {print $2}')
    src=${src%.cpp}
    if [ -f "$ROOT/$src.hpp" ]; then
        echo "$src.hpp"
    else
        echo "$(dirname "$(dirname "$src")")/$(basename "$src").hpp"
    fi
}

# The grader's own objects and the precompiled tapegrad/config.hpp, rebuilt when a source or any
# header of the library or the grader is newer (a pulled change to a kernel header must not leave
# an object compiled against the old one).
prepare_cache() {
    mkdir -p "$CACHE/obj" "$CACHE/pch/tapegrad"
    ln -sf "$ROOT/include/tapegrad/config.hpp" "$CACHE/pch/tapegrad/config.hpp"
    local gch=$CACHE/pch/tapegrad/config.hpp.gch
    if [[ ! -e $gch || $ROOT/include/tapegrad/config.hpp -nt $gch ]]; then
        "$CXX" "${FLAGS[@]}" -I"$ROOT/include" -x c++-header "$ROOT/include/tapegrad/config.hpp" \
            -o "$gch" 2>/dev/null
    fi
    local src obj
    for src in "$ROOT"/exercises/grader/*.cpp $(reference_sources); do
        [[ $src = /* ]] || src=$ROOT/$src
        obj=$CACHE/obj/$(basename "${src%.cpp}").o
        if [[ ! -e $obj || $src -nt $obj ||
              -n $(find "$ROOT/include" "$ROOT/src" "$ROOT/exercises/grader" -name '*.hpp' \
                  -newer "$obj" -print -quit) ]]; then
            "${LAUNCH[@]}" "$CXX" "${FLAGS[@]}" -I"$CACHE/pch" -I"$ROOT/include" -I"$ROOT" \
                -include tapegrad/config.hpp -DTAPEGRAD_SOURCE_DIR="\"$ROOT\"" -c "$src" -o "$obj"
        fi
    done
}

# The wrapper that compiles one student file and checks its signature against the reference's.
wrapper() {  # NAME FILE
    cat <<WRAP
#include "$2"
#include "$ROOT/$(header_of "$1")"
#include <type_traits>
static_assert(std::is_same_v<decltype(&tg::exercises::$1), decltype(&tg::kernels::reference::$1)>,
              "$1: its signature differs from the reference kernel tg::kernels::reference::$1 "
              "($(header_of "$1")): keep the signature exactly as exercises/$1.cpp gives it");
WRAP
}

# build_grader STUDENT_DIR OUT: OUT/grader and OUT/not_compiled (names that did not compile).
build_grader() {  # STUDENT_DIR OUT [fresh]
    local dir=$1 out=$2 fresh=${3:-} name objs=()
    mkdir -p "$out"
    : >"$out/not_compiled"
    mkdir -p "$CACHE/student"
    for name in $(names); do
        local file=$dir/$name.cpp
        if [[ ! -f $file ]]; then
            file=$ROOT/exercises/$name.cpp  # not submitted: the "not done" skeleton
        fi
        # A file compiled before (e.g. an untouched skeleton) is not compiled again: the object
        # is cached under the hash of the file, its reference header and the compiler flags.
        local key
        key=$(cat "$file" "$ROOT/$(header_of "$name")" "$ROOT/include/tapegrad/exercise.hpp" \
            "$ROOT/include/tapegrad/config.hpp" "$ROOT/src/ops/kernels/shapes.hpp" <(echo "$name ${FLAGS[*]} $CXX") | sha1sum | cut -c1-20)
        # (debug compiles afresh: gdb must find the file where it is now)
        if [[ -z $fresh && -f $CACHE/student/$key.o ]]; then
            objs+=("$CACHE/student/$key.o")
            continue
        fi
        wrapper "$name" "$file" >"$out/$name.wrap.cpp"
        if "$CXX" "${FLAGS[@]}" -I"$CACHE/pch" -I"$ROOT/include" -I"$ROOT" \
            -include tapegrad/config.hpp -c "$out/$name.wrap.cpp" -o "$out/$name.o" \
            2> >(tee "$out/$name.log" >&2); then
            cp "$out/$name.o" "$CACHE/student/$key.o.tmp$$" && mv "$CACHE/student/$key.o.tmp$$" "$CACHE/student/$key.o"
            objs+=("$out/$name.o")
        else
            echo "$name" >>"$out/not_compiled"
            wrapper "$name" "$ROOT/exercises/$name.cpp" >"$out/$name.wrap.cpp"
            "$CXX" "${FLAGS[@]}" -I"$CACHE/pch" -I"$ROOT/include" -I"$ROOT" \
                -include tapegrad/config.hpp -c "$out/$name.wrap.cpp" -o "$out/$name.o"
            objs+=("$out/$name.o")
        fi
    done
    "$CXX" "${FLAGS[@]}" "$CACHE"/obj/*.o "${objs[@]}" -o "$out/grader" -pthread
}

not_compiled_args() {  # OUT
    local name
    while read -r name; do [[ -n $name ]] && printf -- '--not-compiled\n%s\n' "$name"; done <"$1/not_compiled"
}

cmd=${1:-}
[[ -n $cmd ]] || { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
shift

dir=$ROOT/exercises
if [[ ${1:-} == --dir ]]; then dir=$(cd "$2" && pwd); shift 2; fi

case $cmd in
list)
    names
    ;;
check)
    for name in "$@"; do names | grep -qx "$name" || die "no exercise named $name (bash scripts/exercise.sh list)"; done
    prepare_cache
    out=$(mktemp -d "${TMPDIR:-/tmp}/tapegrad-check.XXXXXX")
    trap 'rm -rf "$out"' EXIT
    build_grader "$dir" "$out"
    mapfile -t nc < <(not_compiled_args "$out")
    "$out/grader" ${TSV:+--tsv "$TSV"} "${nc[@]}" "$@"
    ;;
debug)
    [[ $# -eq 1 ]] || die "debug takes one exercise name"
    names | grep -qx "$1" || die "no exercise named $1 (bash scripts/exercise.sh list)"
    command -v gdb >/dev/null || die "gdb is not installed (scripts/setup.sh, group debug)"
    prepare_cache
    out=$CACHE/debug
    build_grader "$dir" "$out" fresh
    mapfile -t nc < <(not_compiled_args "$out")
    # Stop at the first mismatch with expected/actual printed, then break in the student's
    # kernel: continuing reruns it on the failing case (TAPEGRAD_GRADER_REPLAY).
    cat >"$out/debug.gdb" <<GDB
set breakpoint pending on
set pagination off
break tg::grader::first_mismatch
commands 1
  printf "\nfirst element that differs: %s, case %s: %s[%lu]\n", exercise, case_name, output, index
  printf "    expected %.17g\n    actual   %.17g\n", expected, actual
  printf "\n'continue' reruns your $1 on this case and stops at its first line.\n"
  break tg::exercises::$1
end
run
GDB
    if [[ -f $ROOT/scripts/gdb/tapegrad.py ]]; then
        set -- -x "$ROOT/scripts/gdb/tapegrad.py" "$@"
    fi
    TAPEGRAD_GRADER_REPLAY=1 exec gdb -q "${@:1:$#-1}" -x "$out/debug.gdb" \
        --args "$out/grader" "${nc[@]}" "${!#}"
    ;;
grade)
    exec bash "$ROOT/scripts/exercise_grade.sh" "$@"
    ;;
prepare)  # internal (exercise_grade.sh): the grader's cached objects, before any time limit
    prepare_cache
    ;;
compile)  # internal (exercise_grade.sh): compile STUDENT_DIR OUT -> OUT/grader, OUT/not_compiled
    prepare_cache
    build_grader "$1" "$2"
    ;;
build)
    use_reference=""
    if [[ ${1:-} == --use-reference-for ]]; then use_reference=$2; shift 2; fi
    export CMAKE_CXX_COMPILER_LAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER:-$(command -v ccache || true)}
    cmake --preset exercises -DTAPEGRAD_EXERCISES_USE_REFERENCE_FOR="${use_reference//,/;}" >/dev/null
    cmake --build --preset exercises -j"${JOBS:-2}" --target "${@:-ch310_train_cnn}"
    ;;
*)
    die "unknown command $cmd (check, debug, grade, build, list)"
    ;;
esac
