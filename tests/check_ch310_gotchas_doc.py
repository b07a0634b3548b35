#!/usr/bin/python3
"""Checks that docs/ch310_gotchas.md quotes what the programs print now.

    check_ch310_gotchas_doc.py REPO BUILD_DIR

For every ```sh block of the page that runs ./build/release/examples/<program> with no flags,
the next unlabelled ``` block is the program's printed output: the program is run from
BUILD_DIR/examples (full settings, default seed, from a scratch directory so the printed
out/... paths are the defaults) and its output must equal the quote line for line (trailing
blanks ignored), except the two forward-time columns of ch310_norm_family. The numbers after
training depend on the CPU's GEMM kernels (OpenBLAS picks them per CPU; the page names the
core): run on the machine the page was written on (scripts/ci/gotchas_doc.sh).
Exit status 0 when every quote matches; otherwise the differing lines are printed.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

BLOCK = re.compile(r"```sh\n\./build/release/examples/(\w+)[^\n]*\n```\n(?:[^`]*?\n)??```\n(.*?)```",
                   re.S)
TIMES = re.compile(r"\s+[\d.]+\s+[\d.]+$")  # ch310_norm_family: "ms @ N=2  ms @ N=64"


def lines(text, program):
    out = [line.rstrip() for line in text.rstrip().splitlines()]
    if program == "ch310_norm_family":
        out = [TIMES.sub("", line) if " per " in line else line for line in out]
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    repo, build = sys.argv[1], os.path.abspath(sys.argv[2])
    page = open(os.path.join(repo, "docs", "ch310_gotchas.md"), encoding="utf-8").read()
    quotes = BLOCK.findall(page)
    failures = []
    if len(quotes) != 8:
        failures.append(f"expected 8 programs with a quoted output, found {len(quotes)}")
    scratch = tempfile.mkdtemp(prefix="tapegrad_gotchas_doc_")
    try:
        for program, quoted in quotes:
            p = subprocess.run([os.path.join(build, "examples", program)], cwd=scratch,
                               capture_output=True, text=True, timeout=600)
            want, got = lines(quoted, program), lines(p.stdout, program)
            if p.returncode != 0:
                failures.append(f"{program} exited with {p.returncode}: {p.stderr.strip()}")
            elif want == got:
                print(f"ok    {program}: {len(want)} lines as quoted")
            else:
                diff = [f"  page: {a}\n  now:  {b}" for a, b in zip(want, got) if a != b]
                if len(want) != len(got):
                    diff.append(f"  {len(want)} lines quoted, {len(got)} printed")
                failures.append(f"{program} prints something else than the page quotes:\n" +
                                "\n".join(diff))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for f in failures:
        print("FAIL  " + f)
    if failures:
        sys.exit(1)
    print("docs/ch310_gotchas.md quotes every program's output")


if __name__ == "__main__":
    main()
