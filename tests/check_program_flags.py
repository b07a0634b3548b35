#!/usr/bin/python3
"""Every example program follows the one flag convention (examples/common/cli.hpp).

    check_program_flags.py [--mpiexec MPIEXEC] PROGRAM... [mpi:PROGRAM...]

For each program (an `mpi:` one is started on 2 ranks with MPIEXEC):
  - --help exits 0, fits 80 columns, lists --seed, --out, --quick, --threads and --kernels with
    their defaults, and ends with the footer naming what it writes ("Writes into --out: ...");
    on 2 ranks it is printed once;
  - --seed -1 is refused (exit 2) in a sentence naming the flag, not wrapped to 2^64 − 1;
  - an --out that cannot be created (below a regular file) is refused before any work: a
    non-zero exit, an error naming --out and the directory, nothing on standard output.
Exit status 0 when every check passes; otherwise each failed check is printed.
"""
import os
import re
import subprocess
import sys
import tempfile
import unicodedata

failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)


def width(line):
    """Columns on a terminal: combining marks take none."""
    return sum(0 if unicodedata.combining(c) else 1 for c in line)


def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def check_program(cmd, name, ranks, scratch):
    h = run(cmd + ["--help"])
    text = h.stdout
    check(h.returncode == 0, f"{name} --help exits 0 (got {h.returncode})")
    wide = [line for line in text.splitlines() if width(line) > 80]
    check(not wide, f"{name} --help fits 80 columns" + (f": {wide[0]!r}" if wide else ""))
    for flag in ("--seed", "--out", "--quick", "--threads", "--kernels"):
        check(re.search(r"^\s*" + re.escape(flag) + r"\b", text, re.M) is not None,
              f"{name} --help lists {flag}")
    # CLI11 shows a default after the type: "--seed UINT=0".
    for flag in ("--seed", "--out", "--threads"):
        check(re.search(r"^\s*" + re.escape(flag) + r" [A-Z]+=\S", text, re.M) is not None,
              f"{name} --help shows the default of {flag}")
    check("Writes into --out:" in text, f"{name} --help has the footer naming its outputs")
    if ranks > 1:
        check(text.count("Writes into --out:") == 1, f"{name} --help printed once on {ranks} ranks")

    bad = run(cmd + ["--seed", "-1"])
    check(bad.returncode == 2 and "--seed must be 0 or more (got -1)" in bad.stderr,
          f"{name} --seed -1 refused in plain words (exit {bad.returncode}: "
          f"{bad.stderr.strip().splitlines()[0] if bad.stderr.strip() else ''!r})")

    blocker = os.path.join(scratch, name + "_a_file")
    with open(blocker, "w") as f:
        f.write("not a directory\n")
    target = os.path.join(blocker, "out")
    nowrite = run(cmd + ["--quick", "--out", target])
    check(nowrite.returncode != 0 and "cannot write into --out " + target in nowrite.stderr,
          f"{name} refuses an --out it cannot create (exit {nowrite.returncode})")
    check(nowrite.stdout.strip() == "",
          f"{name} refuses it before any work (nothing printed on stdout: "
          f"{nowrite.stdout.strip()[:60]!r})")


def main(argv):
    mpiexec = None
    if len(argv) > 2 and argv[1] == "--mpiexec":
        mpiexec, argv = argv[2], argv[:1] + argv[3:]
    programs = argv[1:]
    if not programs:
        print(__doc__)
        return 2
    with tempfile.TemporaryDirectory(prefix="program_flags_") as scratch:
        for p in programs:
            ranks = 1
            if p.startswith("mpi:"):
                p, ranks = p[4:], 2
                if mpiexec is None:
                    check(False, f"{p}: an MPI program needs --mpiexec")
                    continue
                cmd = [mpiexec, "--oversubscribe", "-n", str(ranks), p]
            else:
                cmd = [p]
            check_program(cmd, os.path.basename(p), ranks, scratch)
    print(f"{len(failures)} failed" if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
