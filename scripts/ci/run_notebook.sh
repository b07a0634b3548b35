#!/usr/bin/env bash
# run_notebook.sh NOTEBOOK DATA_DIR: executes the notebook top to bottom with nbconvert, reading
# DATA_DIR (CH310_OUT), into a scratch copy (the committed notebook stays as it is). Any cell
# raising fails it. Exit 77 (CTest: skipped) without nbconvert (bash scripts/setup.sh notebooks).
set -euo pipefail
nb="$(realpath "$1")"
data="$(realpath "$2")"
if ! /usr/bin/python3 -c 'import nbconvert, ipykernel, matplotlib' 2>/dev/null; then
  echo "run_notebook: skipped, nbconvert/ipykernel/matplotlib missing (bash scripts/setup.sh notebooks)"
  exit 77
fi
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cd "$(dirname "$nb")"
# Debian's python3 and its kernel, not a python3 earlier on PATH; matplotlib draws off screen.
CH310_OUT="$data" MPLBACKEND=Agg PATH="/usr/bin:$PATH" /usr/bin/python3 -m nbconvert \
  --to notebook --execute --ExecutePreprocessor.timeout=120 \
  --ExecutePreprocessor.kernel_name=python3 --output-dir "$scratch" "$nb" 2>&1 | grep -v '^\[NbConvertApp\] Writing' || true
out="$scratch/$(basename "$nb")"
[ -f "$out" ] || { echo "run_notebook: $nb failed"; exit 1; }
# Print what the notebook printed (its checks), so the CTest log shows the numbers.
/usr/bin/python3 - "$out" <<'PY'
import json, sys
nb = json.load(open(sys.argv[1]))
for cell in nb["cells"]:
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            sys.stdout.write("".join(o["text"]))
print(f"run_notebook: {sys.argv[1].rsplit('/', 1)[-1]} ran, {len(nb['cells'])} cells")
PY
