#!/usr/bin/python3
"""Every example program follows the one flag convention (examples/common/cli.hpp).

    check_program_flags.py [--mpiexec MPIEXEC] PROGRAM... [mpi:PROGRAM...] [stop:PROGRAM...]

A `stop:` program takes no flags and is built to diverge (first_look_diverging: first_look with a
learning rate of 1e30, made by examples/CMakeLists.txt): run as it is, it must stop at the first
non-finite loss with one line on standard error saying training diverged, exit 1, nothing
printed on standard output.

For each other program (an `mpi:` one is started on 2 ranks with MPIEXEC):
  - --help exits 0, fits 80 columns, lists --seed, --out, --quick, --threads and --kernels with
    their defaults, and ends with the footer naming what it writes ("Writes into --out: ...");
    on 2 ranks it is printed once;
  - --seed -1 is refused (exit 2) in a sentence naming the flag, not wrapped to 2^64 − 1;
  - every numeric flag its --help lists (UINT, INT, FLOAT) with each of -1, 2^64, inf, nan,
    1e400, the empty string and (a whole-number flag) 2.5 is refused: exit 2, one line on
    standard error naming the flag, nothing on standard output, --out not created; with 0 it
    is refused the same way or accepted (then the next bad flag is the one named); on MPI
    ranks (slow to start) -1, 2^64, inf and the empty string only;
  - a misspelt flag (--detectanomaly) is refused in one line suggesting --detect-anomaly;
  - an --out that cannot be created (below a regular file) is refused before any work: exit
    1 (not std::terminate's abort), an error naming --out and the directory, nothing on
    standard output;
  - a program that reads --dataset refuses a directory that does not exist (exit 1, naming
    it) and leaves no --out behind;
  - every choice flag (--kernels, --schedule, --figures) refuses a value outside its choices in
    one plain line listing them ("--kernels takes reference or fast, not \"foo\"");
  - every program reading --dataset that takes --batch-size (or --batch-sizes,
    --finetune-batches) caps one above its training set at the set's size with a line saying so
    (not tried on ch310_bn_histograms: its CNN part would push all 8,000 images through);
  - every program that is not an experiment sweep and takes --lr (ch310_train_cnn, tape_demo,
    ch310_sync_batchnorm on 2 ranks) stops at the first non-finite loss
    with --lr 1e6: exit 1, one line saying training diverged and suggesting --detect-anomaly
    (the sweeps record a diverged run as a result and go on: tests/check_ch310_experiments.py);
  - ch310_manual_batchnorm (it compares two layers, it does not train) at --scale 1e18, where
    float32 overflows, prints a NaN difference and FAIL, exit 1;
  - ch310_train_cnn: "--epochs 2.5" and "--batchsize 32" refused in plain words (did you mean
    --batch-size?), and "1 batches of 2000 per epoch" after the cap.
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
    check_numeric_flags(cmd, name, text, scratch)
    check_choice_flags(cmd, name, text, scratch)
    check_dataset(cmd, name, text, scratch)
    check_batch_cap(cmd, name, text, scratch)
    check_divergence(cmd, name, text, scratch)
    if name == "ch310_train_cnn":
        check_train_cnn(cmd, name, scratch)
    if name == "ch310_manual_batchnorm":
        check_manual_batchnorm_overflow(cmd, name, scratch)
    if ranks > 1:
        check(text.count("Writes into --out:") == 1, f"{name} --help printed once on {ranks} ranks")

    bad = run(cmd + ["--seed", "-1"])
    check(bad.returncode == 2 and
          "--seed must be between 0 and 18446744073709551615 (got -1)" in bad.stderr,
          f"{name} --seed -1 refused in plain words (exit {bad.returncode}: "
          f"{bad.stderr.strip().splitlines()[0] if bad.stderr.strip() else ''!r})")

    blocker = os.path.join(scratch, name + "_a_file")
    with open(blocker, "w") as f:
        f.write("not a directory\n")
    target = os.path.join(blocker, "out")
    nowrite = run(cmd + ["--quick", "--out", target])
    check(nowrite.returncode == 1 and "cannot write into --out " + target in nowrite.stderr
          and "terminate called" not in nowrite.stderr,
          f"{name} refuses an --out it cannot create with its message and exit 1 "
          f"(exit {nowrite.returncode}: {one_line(nowrite.stderr)!r})")
    check(nowrite.stdout.strip() == "",
          f"{name} refuses it before any work (nothing printed on stdout: "
          f"{nowrite.stdout.strip()[:60]!r})")


# mpiexec adds its own banner to standard error when a rank exits non-zero; the program's lines
# are the ones starting with its name.
MPI_NAME = None


def err_lines(r):
    lines = r.stderr.strip().splitlines()
    if MPI_NAME is not None:
        lines = [line for line in lines if line.startswith(MPI_NAME + ":")]
    return lines


def one_line(text):
    lines = text.strip().splitlines()
    return lines[0] if lines else ""


# Values no numeric flag takes: a minus sign (every flag's range starts at 0 or above), 2^64
# (beyond every range, and beyond uint64), not finite, beyond double, nothing at all.
ALWAYS_BAD = ["-1", "18446744073709551616", "inf", "nan", "1e400", ""]
NUMERIC = re.compile(r"^\s*(--[\w-]+) (UINT|INT|FLOAT)\b", re.M)


def refused_plainly(r, flag, out_dir):
    """exit 2, one line on stderr naming `flag`, nothing on stdout, no --out made."""
    lines = err_lines(r)
    return (r.returncode == 2 and len(lines) == 1 and (flag + " ") in lines[0]
            and "terminate called" not in r.stderr and r.stdout.strip() == ""
            and "Could not convert" not in r.stderr  # CLI11's raw words
            and not os.path.exists(out_dir))


def check_numeric_flags(cmd, name, help_text, scratch):
    flags = NUMERIC.findall(help_text)
    check(len(flags) >= 2, f"{name} --help lists its numeric flags (found {len(flags)})")
    bad_cases = 0
    for flag, kind in flags:
        values = ALWAYS_BAD + (["2.5"] if kind in ("UINT", "INT") else [])
        if MPI_NAME is not None:
            # Each mpiexec start takes seconds; every rank parses with the same examples/common
            # code the other programs' full tables check, so four values per flag here.
            values = ["-1", "18446744073709551616", "inf", ""]
        for k, value in enumerate(values):
            # Its own --out each, so one run that wrongly starts cannot fail the next checks.
            out_dir = os.path.join(scratch, f"{name}{flag}_{k}_never_made")
            r = run(cmd + ["--quick", "--out", out_dir, flag, value])
            ok = refused_plainly(r, flag, out_dir)
            if not ok:
                bad_cases += 1
                check(False, f"{name} {flag} {value!r} refused in one plain line, exit 2, "
                             f"before any work (exit {r.returncode}: {one_line(r.stderr)!r}, "
                             f"stdout {r.stdout.strip()[:60]!r})")
        if MPI_NAME is not None:
            continue
        # 0: some flags take it (--seed, --threads, --momentum); then --seed -1 after it is
        # what is refused, so nothing runs either way.
        out_dir = os.path.join(scratch, f"{name}{flag}_zero_never_made")
        sentinel = ["--threads", "-1"] if flag == "--seed" else ["--seed", "-1"]
        r = run(cmd + ["--quick", "--out", out_dir, flag, "0"] + sentinel)
        lines = err_lines(r)
        if not (r.returncode == 2 and len(lines) == 1 and r.stdout.strip() == ""
                and not os.path.exists(out_dir)):
            bad_cases += 1
            check(False, f"{name} {flag} 0 refused or taken, before any work "
                         f"(exit {r.returncode}: {one_line(r.stderr)!r})")
    check(bad_cases == 0, f"{name}: {len(flags)} numeric flags x {len(ALWAYS_BAD) + 1}+ values, "
                          f"each refused in one plain line with exit 2 before any work")

    # A misspelt flag names the nearest.
    r = run(cmd + ["--detectanomaly"])
    check(r.returncode == 2 and len(err_lines(r)) == 1
          and "did you mean --detect-anomaly?" in r.stderr,
          f"{name} --detectanomaly suggests --detect-anomaly ({one_line(r.stderr)!r})")


# The choice flags and their choices, as --help shows them: "--kernels TEXT:{reference,fast}".
CHOICE = re.compile(r"^\s*(--[\w-]+) TEXT:\{([\w,-]+)\}", re.M)


def check_choice_flags(cmd, name, help_text, scratch):
    found = CHOICE.findall(help_text)
    check(any(flag == "--kernels" for flag, _ in found),
          f"{name} --help shows --kernels' choices ({found})")
    for flag, listed in found:
        choices = listed.split(",")
        words = ", ".join(choices[:-1]) + " or " + choices[-1] if len(choices) > 1 else choices[0]
        out_dir = os.path.join(scratch, f"{name}{flag}_choice_never_made")
        r = run(cmd + ["--quick", "--out", out_dir, flag, "foo"])
        check(refused_plainly(r, flag, out_dir) and f"{flag} takes {words}" in r.stderr
              and 'not "foo"' in r.stderr,
              f"{name} {flag} foo refused in one plain line listing {words} "
              f"(exit {r.returncode}: {one_line(r.stderr)!r})")


# ch310_train_cnn --quick trains on 2,000 images, the experiments on 1,000, ch310_finetune on the
# 0-4 digits of them; ch310_sync_batchnorm on 2,048.
def check_batch_cap(cmd, name, help_text, scratch):
    if not re.search(r"^\s*--dataset\b", help_text, re.M):
        return  # the programs on data they make themselves have no training set to cap at
    flags = [f for f in ("--batch-size", "--batch-sizes", "--finetune-batches")
             if re.search(r"^\s*" + re.escape(f) + r"\b", help_text, re.M)]
    if name == "ch310_bn_histograms":
        # Its synthetic figures take any batch size; its CNN part caps --batch-sizes, but a
        # batch of all 8,000 images through the CNN (~700 MB of activations) is too much here.
        return
    if not flags:
        return
    out_dir = os.path.join(scratch, name + "_batch_cap")
    args = []
    for f in flags:
        args += [f, "60000"]
    r = run(cmd + ["--quick", "--out", out_dir, "--seeds", "1"] + args
            if re.search(r"^\s*--seeds\b", help_text, re.M)
            else cmd + ["--quick", "--out", out_dir] + args)
    for f in flags:
        m = re.search(re.escape(name) + ": " + re.escape(f) +
                      r" 60000 is more than the (\d+) [^;\n]+; using (\d+)\n", r.stdout)
        check(r.returncode == 0 and m is not None and m.group(1) == m.group(2)
              and 0 < int(m.group(1)) < 60000,
              f"{name} --quick {f} 60000 capped at the training set, saying so "
              f"(exit {r.returncode}: {m.group(0).strip() if m else one_line(r.stderr)!r})")


def check_divergence(cmd, name, help_text, scratch):
    if not re.search(r"^\s*--lr FLOAT\b", help_text, re.M):
        return
    if re.search(r"^\s*--seeds\b", help_text, re.M):
        return  # a sweep: a diverged run is one of its results
    out_dir = os.path.join(scratch, name + "_diverge")
    r = run(cmd + ["--quick", "--out", out_dir, "--lr", "1e6"])
    err = err_lines(r)
    check(r.returncode == 1 and len(err) == 1 and "training diverged at step" in err[0]
          and "--detect-anomaly" in err[0] and "terminate called" not in r.stderr
          and r.stdout.count("nan") <= 1,
          f"{name} --lr 1e6 stops at the first non-finite loss in one line, exit 1 "
          f"(exit {r.returncode}: {err[-1] if err else one_line(r.stderr)!r}; "
          f"{r.stdout.count('nan')} nan on stdout)")


def check_manual_batchnorm_overflow(cmd, name, scratch):
    # At the top of --scale's range float32 overflows: variances of inf, a difference of nan
    # (inf - inf). The verdict must be FAIL, exit 1 (std::max dropped a NaN difference).
    out_dir = os.path.join(scratch, name + "_overflow")
    r = run(cmd + ["--quick", "--out", out_dir, "--scale", "1e18"])
    check(r.returncode == 1 and "FAIL: every difference NOT below 1e-6" in r.stdout
          and "/ nan" in r.stdout and "terminate called" not in r.stderr,
          f"{name} --scale 1e18 (float32 overflows) ends in FAIL, exit 1, the NaN difference "
          f"shown (exit {r.returncode}: {one_line(r.stderr)!r})")


def check_stop(cmd, name):
    r = run(cmd)
    err = err_lines(r)
    check(r.returncode == 1 and len(err) == 1 and "training diverged" in err[0]
          and "terminate called" not in r.stderr and r.stdout.strip() == "",
          f"{name} (built with lr 1e30) stops at the first non-finite loss in one line, exit 1 "
          f"(exit {r.returncode}: {err[-1] if err else one_line(r.stderr)!r}; "
          f"stdout {r.stdout.strip()[:60]!r})")


def check_dataset(cmd, name, help_text, scratch):
    if not re.search(r"^\s*--dataset\b", help_text, re.M):
        return
    out_dir = os.path.join(scratch, name + "_dataset_out")
    missing = os.path.join(scratch, "no_such_dataset_dir")
    r = run(cmd + ["--quick", "--dataset", missing, "--out", out_dir])
    check(r.returncode == 1 and missing in r.stderr and "terminate called" not in r.stderr,
          f"{name} --dataset <missing dir> refused naming it, exit 1 "
          f"(exit {r.returncode}: {one_line(r.stderr)!r})")
    check(not os.path.exists(out_dir),
          f"{name} --dataset <missing dir> leaves no --out behind")


def check_train_cnn(cmd, name, scratch):
    out_dir = os.path.join(scratch, "train_cnn_out")
    r = run(cmd + ["--quick", "--out", out_dir, "--epochs", "2.5"])
    check(refused_plainly(r, "--epochs", out_dir)
          and '--epochs takes a whole number, not "2.5"' in r.stderr,
          f"{name} --epochs 2.5 refused in plain words ({one_line(r.stderr)!r})")
    r = run(cmd + ["--quick", "--out", out_dir, "--batchsize", "32"])
    check(r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
          and "--batchsize is not a flag of ch310_train_cnn; did you mean --batch-size?"
          in r.stderr and not os.path.exists(out_dir),
          f"{name} --batchsize 32 suggests --batch-size ({one_line(r.stderr)!r})")
    r = run(cmd + ["--quick", "--out", out_dir, "--batch-size", "9000", "--epochs", "1"])
    check(r.returncode == 0 and
          "ch310_train_cnn: --batch-size 9000 is more than the 2000 training images; using 2000"
          in r.stdout and "1 batches of 2000 per epoch" in r.stdout,
          f"{name} --quick --batch-size 9000 capped at the 2,000 images, saying so "
          f"(exit {r.returncode})")


def main(argv):
    global MPI_NAME
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
            if p.startswith("stop:"):
                MPI_NAME = None
                check_stop([p[5:]], os.path.basename(p[5:]))
                continue
            if p.startswith("mpi:"):
                p, ranks = p[4:], 2
                if mpiexec is None:
                    check(False, f"{p}: an MPI program needs --mpiexec")
                    continue
                cmd = [mpiexec, "--oversubscribe", "-n", str(ranks), p]
            else:
                cmd = [p]
            MPI_NAME = os.path.basename(p) if ranks > 1 else None
            check_program(cmd, os.path.basename(p), ranks, scratch)
    print(f"{len(failures)} failed" if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
