#!/usr/bin/env bash
# scripts/exercise_grade.sh — the teacher's table: `bash scripts/exercise.sh grade DIR`.
#
#   bash scripts/exercise.sh grade DIR [--timeout SECONDS] [--out OUTDIR]
#
# DIR holds one subfolder per student with their exercise files (NAME.cpp, as in exercises/;
# a missing file counts as "not done"). Each submission is compiled into its own grader in its
# own temporary directory and each exercise's check runs as its own process there: with a
# time limit (default 20 s; the compile gets 300 s), no network (unshare -n, or unshare -rn
# when not root; if neither works the table says so), as user nobody when this script runs as
# root (setpriv) and never with more rights than this script, a 2 GB address-space and 10 MB
# file-size limit; its directory is read-only to it except its own result file. A check that crashes or loops is reported as
# such and the rest are still graded.
# Writes OUTDIR/grades.csv and OUTDIR/grades.html (OUTDIR defaults to DIR).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[[ $# -ge 1 && -d $1 ]] || { echo "usage: bash scripts/exercise.sh grade DIR [--timeout S] [--out OUTDIR]" >&2; exit 2; }
submissions=$(cd "$1" && pwd)
shift
limit=20
compile_limit=${TAPEGRAD_GRADE_COMPILE_LIMIT:-300}
out=$submissions
while [[ $# -gt 0 ]]; do
    case $1 in
    --timeout) limit=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "exercise.sh grade: unknown option $1" >&2; exit 2 ;;
    esac
done
mkdir -p "$out"

# No network: a new, empty network namespace.
if unshare -n true 2>/dev/null; then
    isolate=(unshare -n); isolation="no network (unshare -n)"
elif unshare -rn true 2>/dev/null; then
    isolate=(unshare -rn); isolation="no network (unshare -rn)"
else
    isolate=(); isolation="NETWORK NOT ISOLATED: unshare -n and unshare -rn both failed here"
    echo "exercise.sh grade: warning: $isolation" >&2
fi

# Fewer rights: run as root, the checks run as nobody (setpriv); otherwise as this user.
drop=()
if [[ $(id -u) -eq 0 ]] && command -v setpriv >/dev/null; then
    drop=(setpriv --reuid=65534 --regid=65534 --clear-groups)
    isolation="$isolation, as nobody"
fi

mapfile -t exercises < <(bash "$ROOT/scripts/exercise.sh" list)
csv=$out/grades.csv
echo "student,exercise,status,diagnosis,message" >"$csv"
csv_field() { local v=${1//\"/\"\"}; printf '"%s"' "${v//$'\n'/ }"; }
row() {  # student exercise status diagnosis message
    printf '%s,%s,%s,%s,%s\n' "$(csv_field "$1")" "$2" "$(csv_field "$3")" "$4" "$(csv_field "$5")" >>"$csv"
}

start=$(date +%s)
bash "$ROOT/scripts/exercise.sh" prepare  # the grader's own objects, outside the time limits
for student_dir in "$submissions"/*/; do
    student=$(basename "$student_dir")
    work=$(mktemp -d "${TMPDIR:-/tmp}/tapegrad-grade.XXXXXX")
    for name in "${exercises[@]}"; do
        [[ -f $student_dir/$name.cpp ]] && cp "$student_dir/$name.cpp" "$work/"
    done
    # The PyTorch goldens, where a check running as nobody can read them (a checkout under
    # /root cannot be read by nobody).
    mkdir -p "$work/reference" && cp "$ROOT"/tests/reference/*.txt "$work/reference/"
    chmod -R a+rX "$work/reference"
    chmod 755 "$work"
    built=0
    timeout -k 5 "$compile_limit" bash "$ROOT/scripts/exercise.sh" compile "$work" \
        "$work/build" >"$work/compile.log" 2>&1 || built=$?
    if [[ $built -ne 0 ]]; then
        why="the submission could not be built: $(tail -c 300 "$work/compile.log")"
        [[ $built -ne 124 ]] || why="the submission was not built within $compile_limit s"
        for name in "${exercises[@]}"; do
            row "$student" "$name" "fail" "does_not_build" "$why"
        done
        rm -rf "$work"
        continue
    fi
    nc=()
    while read -r name; do [[ -n $name ]] && nc+=(--not-compiled "$name"); done <"$work/build/not_compiled"
    for name in "${exercises[@]}"; do
        tsv=$work/$name.tsv
        touch "$tsv" && chmod 666 "$tsv"  # the check may write only this file
        set +e
        {  # (the outer braces keep bash's "Segmentation fault" report out of the output)
        (
            cd "$work" && ulimit -v 2000000 -f 10000 &&
                HOME=$work TMPDIR=$work TAPEGRAD_GOLDENS_DIR=$work/reference exec timeout -k 2 "$limit" "${isolate[@]}" "${drop[@]}" \
                    "$work/build/grader" --tsv "$tsv" "${nc[@]}" "$name"
        ) >"$work/$name.out" 2>&1
        rc=$?
        } 2>/dev/null
        set -e
        if [[ -s $tsv ]]; then
            message=$(cut -f4- "$tsv")
            if grep -qx "$name" "$work/build/not_compiled"; then  # the compiler's own words
                message="$message: $(grep -m3 -E 'error' "$work/build/$name.log" | cut -c1-300 | tr '\n' ' ')"
            fi
            row "$student" "$name" "$(cut -f2 "$tsv")" "$(cut -f3 "$tsv")" "$message"
        elif [[ $rc -eq 124 || $rc -eq 137 ]]; then
            row "$student" "$name" "timeout" "timeout" "did not finish within $limit s (an infinite loop?): killed"
        elif [[ $rc -gt 128 ]]; then
            row "$student" "$name" "crashed" "crashed" "the check crashed: signal $((rc - 128)) ($(kill -l $((rc - 128)) 2>/dev/null || echo ?))"
        else
            row "$student" "$name" "crashed" "crashed" "the grader exited with status $rc: $(tail -c 200 "$work/$name.out")"
        fi
    done
    rm -rf "$work"
done
seconds=$(( $(date +%s) - start ))

/usr/bin/python3 - "$csv" "$out/grades.html" "$isolation" "$limit" "$seconds" <<'PY'
import csv, html, sys
path, target, isolation, limit, seconds = sys.argv[1:]
rows = list(csv.DictReader(open(path)))
students = sorted({r["student"] for r in rows})
exercises = list(dict.fromkeys(r["exercise"] for r in rows))
cell = {(r["student"], r["exercise"]): r for r in rows}
colour = {"pass": "#c8f0c8", "fail": "#f8d0d0", "not done": "#eeeeee",
          "timeout": "#f8e0a0", "crashed": "#f8b080"}
out = ["<!doctype html><meta charset=utf-8><title>tapegrad exercises: grades</title>",
       "<style>td,th{border:1px solid #999;padding:4px;vertical-align:top;font:13px sans-serif}"
       "table{border-collapse:collapse}small{color:#333}</style>",
       f"<h1>tapegrad exercises</h1><p>{len(students)} submissions, {len(exercises)} exercises, "
       f"{html.escape(isolation)}, {limit} s per check, graded in {seconds} s.</p>",
       "<table><tr><th>student</th><th>passed</th>" +
       "".join(f"<th>{html.escape(e)}</th>" for e in exercises) + "</tr>"]
for s in students:
    passed = sum(cell[(s, e)]["status"] == "pass" for e in exercises if (s, e) in cell)
    tds = []
    for e in exercises:
        r = cell.get((s, e), {"status": "missing", "diagnosis": "", "message": ""})
        tds.append(f"<td style='background:{colour.get(r['status'], '#fff')}'><b>{html.escape(r['status'])}</b>"
                   f" {html.escape(r['diagnosis'])}<br><small>{html.escape(r['message'])}</small></td>")
    out.append(f"<tr><td>{html.escape(s)}</td><td>{passed}/{len(exercises)}</td>{''.join(tds)}</tr>")
out.append("</table>")
open(target, "w").write("\n".join(out) + "\n")
PY
echo "graded $(ls -d "$submissions"/*/ | wc -l) submissions in ${seconds} s ($isolation): $csv, $out/grades.html"
