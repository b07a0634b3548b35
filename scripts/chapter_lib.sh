# Sourced by scripts/run_chapter.sh and scripts/ci/chapter_page.sh.
#
# chapter_run OUT BIN PROGRAM [ARGS...] runs [$CHAPTER_LAUNCHER] BIN/PROGRAM --out OUT ARGS..., shows and keeps what
# it prints (OUT/PROGRAM.txt) and appends to OUT/runs.tsv the line
#   PROGRAM <TAB> the command <TAB> seconds (to the millisecond) <TAB> the files it wrote
# from which scripts/chapter_page.py builds OUT/index.html.
chapter_run() {
  local out="$1" bin="$2" prog="$3"
  shift 3
  mkdir -p "$out"
  local marker t0=$EPOCHREALTIME  # bash 5: seconds with microseconds
  marker="$(mktemp)"  # files modified after this one were written by this run
  local launch=()  # CHAPTER_LAUNCHER="mpirun -np 4" runs the program under a launcher
  [ -z "${CHAPTER_LAUNCHER:-}" ] || read -ra launch <<<"$CHAPTER_LAUNCHER"
  "${launch[@]}" "$bin/$prog" --out "$out" "$@" | tee "$out/$prog.txt"
  local status=${PIPESTATUS[0]}
  local files
  files="$(find "$out" -maxdepth 1 -type f -newer "$marker" ! -name "$prog.txt" \
    ! -name runs.tsv ! -name index.html -printf '%f ' | tr ' ' '\n' | sort | tr '\n' ' ')"
  rm -f "$marker"
  local cmd="${CHAPTER_LAUNCHER:+$CHAPTER_LAUNCHER }./build/release/examples/$prog"
  [ "$out" = "out/ch310" ] || cmd+=" --out $out"
  [ $# -eq 0 ] || cmd+=" $*"
  printf '%s\t%s\t%s\t%s\n' "$prog" "$cmd" "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')" "$files" >>"$out/runs.tsv"
  return "$status"
}
