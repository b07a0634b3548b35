#!/usr/bin/env bash
# `scripts/exercise.sh grade` over a generated folder of mixed submissions (one of each kind
# make_submissions.sh makes: a passing one, a wrong one, an empty one, an infinite loop, a
# segfault, one that does not compile) finishes with a complete, correct table.
#
#   bash tests/exercises/check_grade.sh [N]     (default 6; the issue's acceptance run is 30)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
n=${1:-6}
work=$(mktemp -d "${TMPDIR:-/tmp}/tapegrad-grade-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
export TAPEGRAD_GRADER_CACHE=${TAPEGRAD_GRADER_CACHE:-$work/cache}
bash "$ROOT/tests/exercises/make_submissions.sh" "$n" "$work/subs"
bash "$ROOT/scripts/exercise.sh" grade "$work/subs" --timeout 3 --out "$work/table"
/usr/bin/python3 - "$work/table/grades.csv" "$work/table/grades.html" "$n" \
    "$(bash "$ROOT/scripts/exercise.sh" list | wc -l)" <<'PY'
import csv, sys
path, html_path, n, exercises = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rows = list(csv.DictReader(open(path)))
cell = {(r["student"], r["exercise"]): r for r in rows}
errors = []
if len(rows) != n * exercises:
    errors.append(f"{len(rows)} rows, expected {n} students x {exercises} exercises")
def expect(student, exercise, status, diagnosis=None):
    r = cell.get((student, exercise))
    if r is None or r["status"] != status or (diagnosis and r["diagnosis"] != diagnosis):
        errors.append(f"{student} {exercise}: {r}, expected {status} {diagnosis or ''}")
for k in range(n):
    s = f"student{k:02d}"
    kind = k % 6
    if kind == 0:
        for e in ("batch_norm_forward", "batch_norm_update_running", "batch_norm_backward"):
            expect(s, e, "pass")
    if kind == 2:
        expect(s, "batch_norm_backward", "not done")
    if kind == 3:
        expect(s, "batch_norm_backward", "timeout", "timeout")
        expect(s, "batch_norm_forward", "pass")
    if kind == 4:
        expect(s, "batch_norm_forward", "crashed", "crashed")
        expect(s, "batch_norm_backward", "pass")
    if kind == 5:
        expect(s, "batch_norm_update_running", "fail", "does_not_compile")
html = open(html_path).read()
if html.count("<tr>") != n + 1:
    errors.append(f"the HTML table has {html.count('<tr>')} rows, expected {n + 1}")
for e in errors:
    print("FAIL:", e)
print(f"grade table: {len(rows)} rows, {len(errors)} problem(s)")
sys.exit(1 if errors else 0)
PY
