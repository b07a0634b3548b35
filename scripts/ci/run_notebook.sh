#!/usr/bin/env bash
# run_notebook.sh NOTEBOOK DATA_DIR: executes the notebook top to bottom with nbconvert, reading
# DATA_DIR (CH310_OUT), into a scratch copy (the committed notebook stays as it is). Any cell
# raising fails it; so does any warning of nbformat's (the committed notebook is read and
# validated with warnings as errors, e.g. MissingIDFieldWarning for a cell without an id, and
# nbconvert's stderr must have none) and any stray `Text(...)` result (a cell ending in
# fig.suptitle(...) without a semicolon shows one above its figure). Exit 77 (CTest: skipped) without nbconvert (bash scripts/setup.sh notebooks).
set -euo pipefail
nb="$(realpath "$1")"
data="$(realpath "$2")"
if ! /usr/bin/python3 -c 'import nbconvert, ipykernel, matplotlib' 2>/dev/null; then
  echo "run_notebook: skipped, nbconvert/ipykernel/matplotlib missing (bash scripts/setup.sh notebooks)"
  exit 77
fi
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
/usr/bin/python3 - "$nb" <<'PY'
import sys, warnings
import nbformat
warnings.simplefilter("error")  # every warning nbformat gives is an error here
try:
    nbformat.validate(nbformat.read(sys.argv[1], as_version=4))
except Exception as e:
    sys.exit(f"run_notebook: {sys.argv[1]}: nbformat: {type(e).__name__}: {e}")
PY
cd "$(dirname "$nb")"
# Debian's python3 and its kernel, not a python3 earlier on PATH; matplotlib draws off screen.
CH310_OUT="$data" MPLBACKEND=Agg PATH="/usr/bin:$PATH" /usr/bin/python3 -m nbconvert \
  --to notebook --execute --ExecutePreprocessor.timeout=120 \
  --ExecutePreprocessor.kernel_name=python3 --output-dir "$scratch" "$nb" >"$scratch/log" 2>&1 || true
grep -v '^\[NbConvertApp\] Writing' "$scratch/log" || true
if grep -i -E 'nbformat.*warning|warning.*nbformat|MissingIDField|DuplicateCellId' "$scratch/log" >/dev/null; then
  echo "run_notebook: $nb: nbconvert printed a warning of nbformat's (above)"
  exit 1
fi
out="$scratch/$(basename "$nb")"
[ -f "$out" ] || { echo "run_notebook: $nb failed"; exit 1; }
# Print what the notebook printed (its checks), so the CTest log shows the numbers.
/usr/bin/python3 - "$out" <<'PY'
import json, sys
nb = json.load(open(sys.argv[1]))
stray = []
for i, cell in enumerate(nb["cells"]):
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            sys.stdout.write("".join(o["text"]))
        text = "".join(o.get("data", {}).get("text/plain", ""))
        if o.get("output_type") == "execute_result" and text.startswith("Text("):
            stray.append(f"cell {i} (id {cell.get('id')}): {text}")
if stray:
    sys.exit("run_notebook: stray Text(...) results (end the cell's last line with ';'):\n  " +
             "\n  ".join(stray))
print(f"run_notebook: {sys.argv[1].rsplit('/', 1)[-1]} ran, {len(nb['cells'])} cells")
PY
