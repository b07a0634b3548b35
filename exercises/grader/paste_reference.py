#!/usr/bin/python3
"""Writes the exercise files with the reference kernels' bodies pasted in (a passing submission).

    /usr/bin/python3 exercises/grader/paste_reference.py OUT_DIR [NAME...]

For each exercise (exercises/exercises.txt) it takes exercises/NAME.cpp and replaces the
body of tg::exercises::NAME with the body of tg::kernels::reference::NAME from the reference
source, verbatim. The grader test (tests/exercises/) checks that every such file passes: the
reference kernels are the solutions.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def body_span(text, name):
    """(start, end) of the braces of the definition of function `name` in text."""
    match = re.search(r"\bvoid\s+" + re.escape(name) + r"\s*\([^;{]*\)\s*\{", text)
    if not match:
        raise SystemExit(f"paste_reference.py: no definition of {name}")
    start = match.end() - 1
    depth = 0
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return start, i + 1
    raise SystemExit(f"paste_reference.py: unbalanced braces in {name}")


def main():
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    wanted = set(sys.argv[2:])
    for line in (ROOT / "exercises/exercises.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, source = line.split()[:2]
        if wanted and name not in wanted:
            continue
        reference = (ROOT / source).read_text()
        exercise = (ROOT / f"exercises/{name}.cpp").read_text()
        r0, r1 = body_span(reference, name)
        e0, e1 = body_span(exercise, name)
        # The reference source's own includes (e.g. <cmath>) come along, after the exercise's.
        includes = "".join(l + "\n" for l in reference.splitlines() if l.startswith("#include <"))
        text = exercise[:e0] + reference[r0:r1] + exercise[e1:]
        text = text.replace('#include "tapegrad/exercise.hpp"\n',
                            '#include "tapegrad/exercise.hpp"\n' + includes, 1)
        (out / f"{name}.cpp").write_text(text)


main()
