#!/usr/bin/python3
"""Checks that docs/extending.md shows the code the tree has (CTest runs this: docs_extending).

    check_extending.py REPO

The tutorial walks RMSNorm's change file by file. Every fenced code block in it that is not a
shell block (```cpp, ```python, ```cmake, ...) is preceded by the line

    <!-- from <path> -->

naming the file of the repository it is copied from, and must stand in that file, character
for character, as one run of whole lines (the tree's code is what CI compiles and tests, so
the tutorial's code is compiled and run with it and cannot drift from it). Every path the page
names in backquotes, `src/...`, `include/...`, `tests/...`, `examples/...`, `scripts/...` or
`docs/...`, must exist. Shell blocks are left to tests/check_docs.py (docs_commands).
Exit status 0 when all hold; otherwise each failure is printed.
"""
import os
import re
import sys

BLOCK = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)
FROM = re.compile(r"<!-- from (\S+) -->\s*$")
PATH = re.compile(r"`((?:src|include|tests|examples|scripts|docs)/[\w./-]+\.\w+)`")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    repo = sys.argv[1]
    page_path = os.path.join(repo, "docs", "extending.md")
    page = open(page_path, encoding="utf-8").read()
    failures, checked = [], 0
    for m in BLOCK.finditer(page):
        lang, code = m.group(1), m.group(2)
        line_no = page.count("\n", 0, m.start()) + 1
        if lang in ("sh", "bash", ""):
            continue
        before = page[:m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        origin = FROM.match(before)
        if not origin:
            failures.append(f"docs/extending.md:{line_no}: a ```{lang} block without a "
                            "'<!-- from <path> -->' line above it")
            continue
        path = os.path.join(repo, origin.group(1))
        if not os.path.isfile(path):
            failures.append(f"docs/extending.md:{line_no}: {origin.group(1)} does not exist")
            continue
        text = open(path, encoding="utf-8").read()
        if not ("\n" + text).count("\n" + code):
            first = next((i for i, line in enumerate(code.splitlines(), 1)
                          if line not in text.splitlines()), None)
            where = (f" (its line {first} is not in the file: "
                     f"{code.splitlines()[first - 1].strip()!r})") if first else \
                " (its lines are there, not as one run)"
            failures.append(f"docs/extending.md:{line_no}: the ```{lang} block is not in "
                            f"{origin.group(1)}{where}")
            continue
        checked += 1
    for name in sorted(set(PATH.findall(page))):
        if "<" not in name and not os.path.exists(os.path.join(repo, name)):
            failures.append(f"docs/extending.md names {name}, which does not exist")
    if checked == 0:
        failures.append("docs/extending.md has no code block from the tree")
    for f in failures:
        print(f)
    if failures:
        sys.exit(1)
    print(f"docs/extending.md: {checked} code blocks stand in the files they name")


if __name__ == "__main__":
    main()
