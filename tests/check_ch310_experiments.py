#!/usr/bin/python3
"""Runs one of the chapter's experiment programs (issue 11) in --quick mode and checks what it
writes (CTest runs this once per program; see tests/CMakeLists.txt).

    check_ch310_experiments.py <name> <path to the program>
    name: lr_sweep | convergence | init_scale | regularisation | placement | small_batch |
          finetune | covariate_shift

Every program, whatever its name:
  - --help exits 0 and lists the shared flags and a footer naming the outputs; --seed -1,
    a zero count and an unwritable --out are refused with a sentence naming the flag, exit
    code non-zero, nothing written;
  - run three times with --quick --seed 3 --seeds 2, twice with --threads 2, once with 1:
    the CSV files are well-formed (a header, every row as many numeric cells), have one row per
    (configuration, seed) and both seeds 3 and 4, no NaN where none is expected; every CSV but
    the timings is byte-identical between the three runs (deterministic by seed, at any
    thread count); the PNG is rendered when gnuplot is installed; the printed tables fit 80 columns;
  - and deterministic facts of each experiment (below, per program), never a statistical
    direction that could flip with the seed, nor a trained number's digits (they move with the
    kernels' summation order);
  - the chapter page's verdict (scripts/chapter_verdicts.py) is computed from the files
    written (held, held in part or did not hold; which one is not checked on a --quick run);
  - a program with --full (ch310_lr_sweep, ch310_init_scale and ch310_small_batch must have it)
    writes the same bytes with --quick --full as with --quick (--quick takes precedence).
"""
import csv
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import chapter_verdicts as cv  # noqa: E402

FAILURES = []
SEEDS = [3, 4]
STDOUT = {}  # what the first checked run printed ("a")


def check(cond, what):
    print(("  ok   " if cond else "  FAIL ") + what)
    if not cond:
        FAILURES.append(what)
    return cond


def run(cmd, expect_ok=True):
    print("$ " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=600)
    print(proc.stdout + proc.stderr)
    if expect_ok and proc.returncode != 0:
        sys.exit("FAILED: exit code %d" % proc.returncode)
    return proc


def read_csv(path):
    """The rows of a CSV file as dicts of floats, after checking every row is complete."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    name = os.path.basename(path)
    check(len(rows) >= 2, "%s: a header and at least one row" % name)
    header = rows[0]
    ragged = [i for i, r in enumerate(rows[1:], 1) if len(r) != len(header)]
    check(not ragged, "%s: every row has the header's %d cells" % (name, len(header)))
    out = []
    for r in rows[1:]:
        try:
            out.append({k: float(v) for k, v in zip(header, r)})
        except ValueError:
            check(False, "%s: a non-numeric cell in %s" % (name, r))
    return out


def no_nan(rows, columns, name):
    bad = [(c, i) for i, r in enumerate(rows) for c in columns if math.isnan(r[c])]
    check(not bad, "%s: no NaN in %s%s" % (name, ", ".join(columns),
                                          "" if not bad else " (first: %s row %d)" % bad[0]))


def seeds_present(rows, name, per_seed=None):
    seeds = sorted({int(r["seed"]) for r in rows})
    check(seeds == SEEDS, "%s: seeds %s (expected %s)" % (name, seeds, SEEDS))
    if per_seed is not None:
        counts = [sum(1 for r in rows if int(r["seed"]) == s) for s in SEEDS]
        check(counts == [per_seed] * len(SEEDS),
              "%s: %s rows per seed (expected %d)" % (name, counts, per_seed))


def check_png(out, stem):
    if not shutil.which("gnuplot"):
        print("  (gnuplot not installed: %s.png not expected)" % stem)
        check(os.path.isfile(os.path.join(out, stem + ".gp")), stem + ".gp written")
        return
    png = os.path.join(out, stem + ".png")
    ok = os.path.isfile(png) and os.path.getsize(png) > 10000
    if ok:
        with open(png, "rb") as f:
            ok = f.read(8) == b"\x89PNG\r\n\x1a\n"
    check(ok, stem + ".png rendered")


def check_width(stdout, out_dirs):
    """Every printed line but those naming a file in the (long) temporary directory."""
    wide = [l for l in stdout.splitlines()
            if len(l) > 80 and not any(d in l for d in out_dirs)]
    check(not wide, "printed lines fit 80 columns%s" % ("" if not wide else ": " + wide[0]))


def close(a, b, tol=1e-9):
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))


# ----------------------------------------------------------------------------------------------
# Per program: the expected files and the deterministic facts.

def lr_sweep_facts(out, stem, lrs, variant_names):
    rows = read_csv(os.path.join(out, stem + ".csv"))
    summary = read_csv(os.path.join(out, stem + "_summary.csv"))
    check(len(rows) == len(lrs) * 2 * len(SEEDS),
          "%s.csv: %d rows = %d rates x 2 variants x %d seeds" % (stem, len(rows), len(lrs),
                                                                    len(SEEDS)))
    seeds_present(rows, stem, per_seed=len(lrs) * 2)
    check(sorted({r["lr"] for r in rows}) == sorted(lrs), "%s: rates %s" % (stem, lrs))
    no_nan(rows, ["first_loss", "steps", "diverged", "failed", "test_acc"], stem)
    budget = max(r["steps"] for r in rows)
    for r in rows:
        if r["diverged"]:
            check(math.isnan(r["final_loss"]) and r["failed"] == 1,
                  "%s: a diverged run has final_loss NaN and counts as failed" % stem)
        else:
            check(r["steps"] == budget and not math.isnan(r["final_loss"]),
                  "%s: a run that did not diverge took all %d steps" % (stem, budget))
            check(r["failed"] == (0 if r["final_loss"] < r["first_loss"] else 1),
                  "%s: failed = final loss not below the first" % stem)
    # The first step's loss is computed before any update: for one variant and seed it is the
    # same at every learning rate (same initial weights, same first batch).
    for v in (0, 1):
        for s in SEEDS:
            firsts = {r["first_loss"] for r in rows if r["variant"] == v and r["seed"] == s}
            check(len(firsts) == 1,
                  "%s: %s, seed %d: the same first loss at every rate" % (stem, variant_names[v], s))
    # The two variants are different networks: their first losses differ for every seed.
    for s in SEEDS:
        f0 = [r["first_loss"] for r in rows if r["variant"] == 0 and r["seed"] == s][0]
        f1 = [r["first_loss"] for r in rows if r["variant"] == 1 and r["seed"] == s][0]
        check(f0 != f1, "%s: seed %d: %s and %s start from different losses (%.6f, %.6f)" %
              (stem, s, variant_names[0], variant_names[1], f0, f1))
    # The summary is the mean over the seeds of the rows.
    check(len(summary) == len(lrs) * 2, "%s_summary.csv: one row per variant and rate" % stem)
    for srow in summary:
        accs = [r["test_acc"] for r in rows if r["variant"] == srow["variant"]
                and r["lr"] == srow["lr"]]
        check(close(srow["test_acc_mean"], sum(accs) / len(accs), 1e-12)
              and srow["runs"] == len(SEEDS),
              "%s_summary: variant %d lr %g: mean of its %d runs" %
              (stem, srow["variant"], srow["lr"], len(accs)))
    check_png(out, stem)


def facts_lr_sweep(out):
    lr_sweep_facts(out, "ch310_lr_sweep", [0.01, 1.0], ["with BN", "without BN"])
    # The second part: MLPs of 4 and 16 Linear layers (quick), with and without BatchNorm1d.
    rows = read_csv(os.path.join(out, "ch310_lr_sweep_depth.csv"))
    summary = read_csv(os.path.join(out, "ch310_lr_sweep_depth_summary.csv"))
    check(len(rows) == 2 * 2 * 2 * len(SEEDS),
          "lr_sweep_depth: 2 depths x 2 variants x 2 rates x 2 seeds rows")
    seeds_present(rows, "ch310_lr_sweep_depth", per_seed=8)
    no_nan(rows, ["first_loss", "steps", "diverged", "failed", "test_acc"], "ch310_lr_sweep_depth")
    check(sorted({r["depth"] for r in rows}) == [4, 16], "lr_sweep_depth: depths 4 and 16")
    for d in (4, 16):
        for s in SEEDS:
            # Same initial weights and first batch at every rate: one first loss per variant;
            # with and without BN (and the two depths) are different networks.
            firsts = [{r["first_loss"] for r in rows if r["depth"] == d and r["seed"] == s
                       and r["variant"] == v} for v in (0, 1)]
            check(len(firsts[0]) == 1 and len(firsts[1]) == 1 and firsts[0] != firsts[1],
                  "lr_sweep_depth: depth %d seed %d: one first loss per variant, two variants "
                  "differ (%s)" % (d, s, firsts))
    for r in rows:
        if not r["diverged"]:
            check(r["failed"] == (0 if r["final_loss"] < r["first_loss"] else 1),
                  "lr_sweep_depth: failed = final loss not below the first")
    check(len(summary) == 2 * 2 * 2, "lr_sweep_depth_summary: one row per depth, variant, rate")
    for srow in summary:
        sel = [r for r in rows if r["depth"] == srow["depth"] and r["variant"] == srow["variant"]
               and r["lr"] == srow["lr"]]
        accs = [r["test_acc"] for r in sel]
        check(len(sel) == len(SEEDS) and close(srow["test_acc_mean"], sum(accs) / len(accs), 1e-12)
              and srow["failed_runs"] == sum(r["failed"] for r in sel),
              "lr_sweep_depth_summary: depth %d variant %d lr %g: mean and failures of its runs"
              % (srow["depth"], srow["variant"], srow["lr"]))
    check_png(out, "ch310_lr_sweep_depth")


def facts_placement(out):
    lr_sweep_facts(out, "ch310_placement", [0.03, 0.3], ["Conv-BN-ReLU", "Conv-ReLU-BN"])
    # The second part (quick): depths 2 and 4 at lr 0.1, 2 epochs, scored after each.
    part1 = read_csv(os.path.join(out, "ch310_placement.csv"))
    rows = read_csv(os.path.join(out, "ch310_placement_depth.csv"))
    summary = read_csv(os.path.join(out, "ch310_placement_depth_summary.csv"))
    check(len(rows) == 2 * 2 * 2 * len(SEEDS),
          "placement_depth: 2 depths x 2 placements x 2 epochs x 2 seeds rows")
    seeds_present(rows, "ch310_placement_depth", per_seed=8)
    check(sorted({r["depth"] for r in rows}) == [2, 4] and {r["lr"] for r in rows} == {0.1}
          and sorted({r["epoch"] for r in rows}) == [1, 2],
          "placement_depth: depths 2 and 4, lr 0.1, epochs 1 and 2")
    no_nan([r for r in rows if not r["diverged"]], ["first_loss", "test_loss", "test_acc"],
           "ch310_placement_depth")
    for r in rows:
        check(r["diverged"] or close(r["test_acc"] * 500, round(r["test_acc"] * 500), 1e-9),
              "placement_depth: accuracies count the 500 test images")
    for s in SEEDS:
        for v in (0, 1):
            first = {d: {r["first_loss"] for r in rows if r["depth"] == d and r["variant"] == v
                         and r["seed"] == s} for d in (2, 4)}
            # At depth 2 the network is the chapter's CNN (make_cnn's weights, drawn in the same
            # order) and sees the same first batch: part 1's first loss, to the bit.
            same = {r["first_loss"] for r in part1 if r["variant"] == v and r["seed"] == s}
            check(first[2] == same, "placement_depth: seed %d variant %d: depth 2 is part 1's "
                  "network (first loss %s, part 1 %s)" % (s, v, first[2], same))
            check(len(first[4]) == 1 and first[4] != first[2],
                  "placement_depth: seed %d variant %d: depth 4 is another network" % (s, v))
        f0 = {r["first_loss"] for r in rows if r["depth"] == 4 and r["variant"] == 0 and r["seed"] == s}
        f1 = {r["first_loss"] for r in rows if r["depth"] == 4 and r["variant"] == 1 and r["seed"] == s}
        check(f0 != f1, "placement_depth: seed %d: the two placements differ at depth 4" % s)
    check(len(summary) == 2 * 2 * 2, "placement_depth_summary: one row per depth, variant, epoch")
    for srow in summary:
        accs = [r["test_acc"] for r in rows if r["depth"] == srow["depth"] and
                r["variant"] == srow["variant"] and r["lr"] == srow["lr"] and
                r["epoch"] == srow["epoch"]]
        check(len(accs) == len(SEEDS) and srow["runs"] == len(SEEDS) and
              close(srow["test_acc_mean"], statistics.mean(accs), 1e-12) and
              close(srow["test_acc_sd"], statistics.stdev(accs), 1e-9),
              "placement_depth_summary: depth %d variant %d epoch %d: mean and sd of its runs"
              % (srow["depth"], srow["variant"], srow["epoch"]))
    check("lead" in STDOUT.get("a", ""), "placement: the depth table (lead) is printed")
    check_png(out, "ch310_placement_depth")


def facts_convergence(out):
    evals = read_csv(os.path.join(out, "ch310_convergence.csv"))
    summary = read_csv(os.path.join(out, "ch310_convergence_summary.csv"))
    timing = read_csv(os.path.join(out, "ch310_convergence_timing.csv"))
    check(len(summary) == 2 * len(SEEDS) and len(timing) == 2 * len(SEEDS),
          "convergence: summary and timing have one row per model and seed")
    seeds_present(summary, "ch310_convergence_summary", per_seed=2)
    seeds_present(evals, "ch310_convergence")
    no_nan(evals, ["step", "test_loss", "test_acc"], "ch310_convergence")
    no_nan(timing, ["train_seconds", "seconds_per_step"], "ch310_convergence_timing")
    # Quick mode: 1,000 images = 16 steps of 64, scored every 4 steps; target 0.5.
    for v in (0, 1):
        for s in SEEDS:
            e = [r for r in evals if r["variant"] == v and r["seed"] == s]
            steps = [r["step"] for r in e]
            check(steps == [4, 8, 12, 16][:len(steps)] and len(steps) >= 1,
                  "convergence: variant %d seed %d scored at steps %s" % (v, s, steps))
            srow = [r for r in summary if r["variant"] == v and r["seed"] == s][0]
            reached = [r["step"] for r in e if r["test_acc"] >= 0.5]
            expect = reached[0] if reached else float("nan")
            check((math.isnan(expect) and math.isnan(srow["steps_to_target"]))
                  or srow["steps_to_target"] == expect,
                  "convergence: variant %d seed %d: steps to target = first score >= 0.5 (%s)"
                  % (v, s, expect))
            check(srow["final_test_acc"] == e[-1]["test_acc"],
                  "convergence: final accuracy = the last score")
    # No ch310_lr_sweep_summary.csv in this directory: the fallback rates 0.1 and 0.03.
    check(sorted({(r["variant"], r["lr"]) for r in summary}) == [(0, 0.1), (1, 0.03)],
          "convergence: without a sweep summary, lr 0.1 with BN and 0.03 without")
    check_png(out, "ch310_convergence")


def facts_convergence_from_sweep(program, out):
    """With a ch310_lr_sweep_summary.csv in --out, each model trains at its best rate there."""
    with open(os.path.join(out, "ch310_lr_sweep_summary.csv"), "w") as f:
        f.write("variant,lr,test_acc_mean,test_acc_sd,final_loss_mean,final_loss_sd,"
                "failed_runs,runs\n"
                "0,0.01,0.5,0,1,0,0,2\n1,0.01,0.7,0,1,0,0,2\n"
                "0,0.3,0.9,0,1,0,0,2\n1,0.3,0.2,0,1,0,0,2\n")
    run([program, "--quick", "--seed", "3", "--seeds", "2", "--out", out])
    summary = read_csv(os.path.join(out, "ch310_convergence_summary.csv"))
    check(sorted({(r["variant"], r["lr"]) for r in summary}) == [(0, 0.3), (1, 0.01)],
          "convergence: the best rates of ch310_lr_sweep_summary.csv (0.3 with BN, 0.01 without)")


def facts_init_scale(out):
    rows = read_csv(os.path.join(out, "ch310_init_scale.csv"))
    check(len(rows) == 2 * 2 * len(SEEDS), "init_scale: 2 scales x 2 models x 2 seeds rows")
    seeds_present(rows, "ch310_init_scale", per_seed=4)
    stds = ["std_conv1", "std_conv2", "std_fc1", "std_fc2", "std_logits"]
    no_nan(rows, stds + ["first_loss", "test_acc"], "ch310_init_scale")
    check(sorted({r["scale"] for r in rows}) == [0.5, 2.0], "init_scale: scales 0.5 and 2")
    for s in SEEDS:
        bn = {r["scale"]: r for r in rows if r["bn"] == 1 and r["seed"] == s}
        plain = {r["scale"]: r for r in rows if r["bn"] == 0 and r["seed"] == s}
        # BN divides the convolution's scale out: BN(s·Wx + b) = BN(Wx) up to ε/σ², so the
        # conv blocks' outputs at init do not depend on s (a fact, not a statistic).
        for k in ("std_conv1", "std_conv2"):
            a, b = bn[0.5][k], bn[2.0][k]
            check(abs(a - b) <= 0.01 * max(a, b),
                  "init_scale: seed %d: with BN, %s at init is the same for s = 0.5 and 2 "
                  "(%.4f, %.4f)" % (s, k, a, b))
        # Without BN a 4x larger scale gives a conv1 output 4x larger, up to the unscaled
        # bias: the ratio is well above 2.
        check(plain[2.0]["std_conv1"] > 2 * plain[0.5]["std_conv1"],
              "init_scale: seed %d: without BN, conv1's std grows with s (%.4f -> %.4f)" %
              (s, plain[0.5]["std_conv1"], plain[2.0]["std_conv1"]))
    # The printed table of stds at init gives each cell's mean over the seeds and their spread
    # (sample sd as a percentage of the mean), recomputed here from the CSV's per-seed values.
    printed = {}
    for line in STDOUT.get("a", "").split("Std of each block's output", 1)[-1].splitlines():
        m = re.match(r"^\s+(\S+)\s+(BN|no BN)\s+(.*)$", line)
        if m and m.group(1) in ("0.5", "2"):
            printed[(float(m.group(1)), 1 if m.group(2) == "BN" else 0)] = \
                re.findall(r"(\S+) ±(\d+)%", m.group(3))
    check(len(printed) == 4 and all(len(c) == len(stds) for c in printed.values()),
          "init_scale: the std table has a mean ± sd% cell for every scale, model and block")
    for (scale, bn), cells in sorted(printed.items()):
        for k, (mean_text, sd_text) in zip(stds, cells):
            v = [r[k] for r in rows if r["scale"] == scale and r["bn"] == bn]
            mean = statistics.mean(v)
            expect = ("%.3g" % mean, "%.0f" % (100 * statistics.stdev(v) / mean))
            check((mean_text, sd_text) == expect,
                  "init_scale: s %g bn %d %s printed %s ±%s%%, the seeds' %s ±%s%%" %
                  ((scale, bn, k, mean_text, sd_text) + expect))
    # The second part: MLPs of 4 and 16 Linear layers (quick) at scales 0.5 and 2.5, with and
    # without BatchNorm1d after every hidden Linear.
    deep = read_csv(os.path.join(out, "ch310_init_scale_depth.csv"))
    check(len(deep) == 2 * 2 * 2 * len(SEEDS),
          "init_scale_depth: 2 depths x 2 scales x 2 models x 2 seeds rows")
    seeds_present(deep, "ch310_init_scale_depth", per_seed=8)
    no_nan(deep, ["std_last_hidden", "std_logits", "first_loss", "test_acc"],
           "ch310_init_scale_depth")
    for d in (4, 16):
        for s in SEEDS:
            at = {(r["bn"], r["scale"]): r for r in deep if r["depth"] == d and r["seed"] == s}
            check(sorted(at) == [(0, 0.5), (0, 2.5), (1, 0.5), (1, 2.5)],
                  "init_scale_depth: depth %d seed %d: both models at scales 0.5 and 2.5" % (d, s))
            # BN after every hidden Linear divides the scale out of each hidden layer: the last
            # hidden layer's output at init is the same for both scales (up to ε/σ²); the
            # logits then carry one factor s (the last Linear, no BN after it): 5x.
            a, b = at[(1, 0.5)]["std_last_hidden"], at[(1, 2.5)]["std_last_hidden"]
            check(abs(a - b) <= 0.01 * max(a, b),
                  "init_scale_depth: depth %d seed %d: with BN the last hidden layer's std at "
                  "init is the same for s = 0.5 and 2.5 (%.4g, %.4g)" % (d, s, a, b))
            ratio = at[(1, 2.5)]["std_logits"] / at[(1, 0.5)]["std_logits"]
            check(3 < ratio < 7, "init_scale_depth: depth %d seed %d: with BN the logits' std "
                  "grows about 5x from s = 0.5 to 2.5 (%.3g)" % (d, s, ratio))
            # Without BN every layer multiplies its input by s, but the biases are not scaled:
            # at s = 0.5 the signal shrinks until the biases (std about 0.06) are all that is
            # left, so the last hidden layer's std grows by far more than BN's 1x, if not 5^d.
            ratio = at[(0, 2.5)]["std_last_hidden"] / at[(0, 0.5)]["std_last_hidden"]
            check(ratio > 2,
                  "init_scale_depth: depth %d seed %d: without BN the last hidden layer's std "
                  "grows with s (x%.3g from s = 0.5 to 2.5)" % (d, s, ratio))
    check("spread" in STDOUT.get("a", ""), "init_scale: the MLPs' table with the spread is printed")
    check_png(out, "ch310_init_scale")


def facts_regularisation(out):
    rows = read_csv(os.path.join(out, "ch310_regularisation.csv"))
    curve = read_csv(os.path.join(out, "ch310_regularisation_curve.csv"))
    check(len(rows) == 2 * 4 * len(SEEDS), "regularisation: 2 sizes x 4 models x 2 seeds rows")
    seeds_present(rows, "ch310_regularisation", per_seed=8)
    no_nan(rows, ["train_acc", "test_acc", "gap", "train_loss", "test_loss"],
           "ch310_regularisation")
    check(sorted({r["train_size"] for r in rows}) == [100, 200],
          "regularisation: training subsets of 100 and 200 images")
    configs = sorted({(r["bn"], r["dropout"]) for r in rows})
    check(configs == [(0, 0), (0, 0.5), (1, 0), (1, 0.5)],
          "regularisation: neither, BN, Dropout 0.5, both (%s)" % configs)
    for r in rows:
        n = r["train_size"]
        check(close(r["gap"], r["train_acc"] - r["test_acc"], 1e-12)
              and close(r["train_acc"] * n, round(r["train_acc"] * n), 1e-9)
              and close(r["test_acc"] * 500, round(r["test_acc"] * 500), 1e-9),
              "regularisation: gap = train - test; accuracies count %d and 500 images" % n)
    # Quick mode: 16 steps of 64, scored every 8, for both sizes (epochs of 2 and 4 steps).
    check(len(curve) == 2 * len(rows) and sorted({r["step"] for r in curve}) == [8, 16],
          "regularisation_curve: steps 8 and 16 for every run")
    for r in curve:
        check(close(r["epoch"], r["step"] / math.ceil(r["train_size"] / 64), 1e-12),
              "regularisation_curve: epoch = step / steps per epoch of its subset")
    # The end of training is the last evaluation.
    for r in rows:
        last = [e for e in curve if e["train_size"] == r["train_size"] and e["bn"] == r["bn"]
                and e["dropout"] == r["dropout"] and e["seed"] == r["seed"] and e["step"] == 16]
        check(len(last) == 1 and last[0]["train_acc"] == r["train_acc"]
              and last[0]["test_acc"] == r["test_acc"],
              "regularisation: the end row is the curve's last evaluation")
    check_png(out, "ch310_regularisation")


def facts_small_batch(out):
    rows = read_csv(os.path.join(out, "ch310_small_batch.csv"))
    check(len(rows) == 2 * 5 * len(SEEDS), "small_batch: 2 batch sizes x 5 norms x 2 seeds rows")
    seeds_present(rows, "ch310_small_batch", per_seed=10)
    no_nan(rows, ["first_loss", "test_acc", "test_acc_train_mode", "lr"], "ch310_small_batch")
    for r in rows:
        check(close(r["lr"], 0.02 * r["batch"] / 32, 1e-12),
              "small_batch: lr = 0.02 B / 32 at B = %d" % r["batch"])
    # GroupNorm, LayerNorm and no norm have no running statistics: training mode computes what
    # eval mode does, to the bit. BN's two modes differ (running vs batch statistics).
    for r in rows:
        if r["norm"] != 0:
            check(r["test_acc_train_mode"] == r["test_acc"],
                  "small_batch: norm %d B %d seed %d: train mode = eval mode" %
                  (r["norm"], r["batch"], r["seed"]))
    # Every norm of one seed starts from the same conv and linear weights, but a different
    # network: their first losses are not all equal.
    for s in SEEDS:
        firsts = {r["first_loss"] for r in rows if r["seed"] == s and r["batch"] == 32}
        check(len(firsts) == 5, "small_batch: seed %d: five different networks" % s)
    # The second part: a CNN whose last BN sees a 2x2 map (net 1) and the MLP with BatchNorm1d
    # (net 2), each with BN (0), LN (3) and none (4). The values per BN statistic are measured
    # by the program with forward hooks on the BN network: 4·B and B.
    regimes = read_csv(os.path.join(out, "ch310_small_batch_regimes.csv"))
    check(len(regimes) == 2 * 2 * 3 * len(SEEDS),
          "small_batch_regimes: 2 batch sizes x 2 nets x 3 norms x 2 seeds rows")
    seeds_present(regimes, "ch310_small_batch_regimes", per_seed=12)
    no_nan(regimes, ["first_loss", "test_acc", "test_acc_train_mode", "lr", "per_stat"],
           "ch310_small_batch_regimes")
    check({(r["net"], r["norm"]) for r in regimes} ==
          {(n, m) for n in (1, 2) for m in (0, 3, 4)}, "small_batch_regimes: nets 1, 2 x norms 0, 3, 4")
    for r in regimes:
        want = {1: 4, 2: 1}[r["net"]] * r["batch"]
        check(r["per_stat"] == want, "small_batch_regimes: net %d B %d: %d values per statistic "
              "(got %g)" % (r["net"], r["batch"], want, r["per_stat"]))
        check(close(r["lr"], 0.02 * r["batch"] / 32, 1e-12),
              "small_batch_regimes: lr = 0.02 B / 32 at B = %d" % r["batch"])
        if r["norm"] != 0:
            check(r["test_acc_train_mode"] == r["test_acc"],
                  "small_batch_regimes: net %d norm %d B %d seed %d: train mode = eval mode" %
                  (r["net"], r["norm"], r["batch"], r["seed"]))
    for s in SEEDS:
        for n in (1, 2):
            firsts = {r["first_loss"] for r in regimes
                      if r["seed"] == s and r["batch"] == 32 and r["net"] == n}
            check(len(firsts) == 3, "small_batch_regimes: net %d seed %d: three different "
                  "networks" % (n, s))
    text = STDOUT.get("a", "")
    check("values/stat" in text and "BN − LN" in text,
          "small_batch: the regime tables (values per statistic, BN − LN) are printed")
    check_png(out, "ch310_small_batch")


def facts_finetune(out):
    rows = read_csv(os.path.join(out, "ch310_finetune.csv"))
    check(len(rows) == 2 * 3 * len(SEEDS), "finetune: 2 batch sizes x 3 ways x 2 seeds rows")
    seeds_present(rows, "ch310_finetune", per_seed=6)
    check(sorted({r["batch"] for r in rows}) == [2, 20], "finetune: batches 2 and 20")
    no_nan(rows, ["acc_new", "acc_old", "pretrain_acc_old"], "ch310_finetune")
    for s in SEEDS:
        pre = {r["pretrain_acc_old"] for r in rows if r["seed"] == s}
        check(len(pre) == 1, "finetune: seed %d: every way and batch starts from one pretrained "
              "net" % s)
        for b in (2, 20):
            def way(m):
                return [r for r in rows if r["seed"] == s and r["mode"] == m and r["batch"] == b][0]
            check(way(0)["bn_stats_changed"] == 0,
                  "finetune: seed %d batch %d: frozen BN keeps its running statistics" % (s, b))
            check(way(1)["bn_stats_changed"] == 1,
                  "finetune: seed %d batch %d: update_bn replaces the running statistics" % (s, b))
            check(way(2)["bn_stats_changed"] == 1,
                  "finetune: seed %d batch %d: fully trained BN moves its running statistics"
                  % (s, b))
    curve = read_csv(os.path.join(out, "ch310_finetune_curve.csv"))
    # Quick mode: 40 images for 4 epochs, scored 4 times: in batches of 20, 8 steps, scored
    # every 2; in batches of 2, 80 steps, scored every 20; epochs 1, 2, 3, 4 for both.
    for b, steps in ((20, [2, 4, 6, 8]), (2, [20, 40, 60, 80])):
        sel = [r for r in curve if r["batch"] == b]
        check(sorted({r["step"] for r in sel}) == steps and len(sel) == 4 * 3 * len(SEEDS)
              and sorted({r["epoch"] for r in sel}) == [1, 2, 3, 4],
              "finetune_curve: batch %d: steps %s (epochs 1-4) for every run" % (b, steps))
    no_nan(curve, ["acc_new", "acc_old"], "ch310_finetune_curve")
    for r in rows:
        last = [e for e in curve if e["batch"] == r["batch"] and e["mode"] == r["mode"]
                and e["seed"] == r["seed"] and e["epoch"] == 4]
        check(len(last) == 1 and last[0]["acc_new"] == r["acc_new"]
              and last[0]["acc_old"] == r["acc_old"],
              "finetune: the scores after fine-tuning are the last evaluation's (eval mode "
              "changes nothing)")
    check_png(out, "ch310_finetune")


def facts_finetune_transfer(program, tmp):
    """--pretrain DATASET: pretrained on all of another dataset (Fashion-MNIST), fine-tuned on
    --dataset's first images (the bundled digits); --pretrain equal to --dataset is refused."""
    refused = os.path.join(tmp, "pretrain_refused")
    proc = run([program, "--quick", "--pretrain", "mnist", "--out", refused], expect_ok=False)
    check(proc.returncode != 0 and "--pretrain mnist is --dataset" in proc.stderr
          and not os.path.exists(refused),
          "finetune: --pretrain mnist with --dataset mnist refused, nothing written")
    if not os.path.isdir("/usr/share/datasets/fashion-mnist"):
        print("  skip finetune --pretrain fashion-mnist: dataset-fashion-mnist not installed")
        return
    out = os.path.join(tmp, "transfer")
    text = run([program, "--quick", "--pretrain", "fashion-mnist", "--seed", "3",
                "--seeds", "1", "--finetune-batches", "20", "--out", out]).stdout
    check("pretraining on 1000 images of fashion-mnist" in text
          and "fine-tuning on 40 images of mnist (bundled)" in text
          and "test: 500 images of fashion, 500 of digits" in text,
          "finetune --pretrain fashion-mnist: 1,000 Fashion-MNIST images pretrain, 40 digits "
          "fine-tune, 500 test images of each (quick)")
    check("digits test %" in text and "fashion test %" in text,
          "finetune --pretrain fashion-mnist: the table names both datasets")
    rows = read_csv(os.path.join(out, "ch310_finetune.csv"))
    check(len(rows) == 3 and [r["mode"] for r in rows] == [0, 1, 2]
          and [r["bn_stats_changed"] for r in rows] == [0, 1, 1],
          "finetune --pretrain fashion-mnist: three ways from one pretrained net, frozen BN "
          "keeps its running statistics")
    check_width(text, [tmp])


def facts_covariate_shift(out):
    """ch310_covariate_shift in quick mode: 500 images = 8 steps of 64 per epoch, 2 epochs =
    16 steps, windows of 4, a probe every 4 steps at step sizes 0.05, 0.1 and 0.2."""
    stem = "ch310_covariate_shift"
    rows = read_csv(os.path.join(out, stem + ".csv"))
    curve = read_csv(os.path.join(out, stem + "_curve.csv"))
    land = read_csv(os.path.join(out, stem + "_landscape.csv"))
    summary = read_csv(os.path.join(out, stem + "_summary.csv"))
    check(len(rows) == 3 * len(SEEDS), "covariate_shift: 3 models x 2 seeds rows")
    seeds_present(rows, stem, per_seed=3)
    no_nan(rows, ["first_loss", "diverged", "train_acc", "train_acc_over_steps", "mean_shift",
                  "std_shift"], stem)
    no_nan([r for r in rows if not r["diverged"]], ["final_loss", "test_acc"], stem)
    first = {(int(r["variant"]), int(r["seed"])): r["first_loss"] for r in rows}
    for s in SEEDS:
        # The same weights and batch: noisy BN differs from BN only by the noise, which is on
        # from the first step; no BN is another network.
        check(first[(0, s)] != first[(1, s)] and first[(0, s)] != first[(2, s)],
              "covariate_shift: seed %d: BN, noisy BN and no BN start from different losses" % s)
    # Under plain BN each channel's batch mean after BN is its beta, which moves by lr-sized
    # steps; the noise redraws a shift in [-0.5, 0.5] per channel at every step (|change| about
    # 1/3 of the std): not a statistic of the seed but the amplitude of the injected shift.
    for s in SEEDS:
        bn = [r for r in rows if r["variant"] == 0 and r["seed"] == s][0]
        noisy = [r for r in rows if r["variant"] == 1 and r["seed"] == s][0]
        check(noisy["mean_shift"] > 10 * bn["mean_shift"]
              and noisy["std_shift"] > 10 * bn["std_shift"],
              "covariate_shift: seed %d: the injected shift is what the next layer sees "
              "(mean shift %.4f with noise, %.4f without)" % (s, noisy["mean_shift"],
                                                           bn["mean_shift"]))
    check(len(curve) == 3 * len(SEEDS) * 4
          and sorted({r["step"] for r in curve}) == [4, 8, 12, 16],
          "covariate_shift_curve: windows ending at steps 4, 8, 12, 16 for every run")
    for r in rows:
        last = [c for c in curve if c["variant"] == r["variant"] and c["seed"] == r["seed"]
                and c["step"] == 16]
        check(len(last) == 1 and last[0]["train_acc"] == r["train_acc"],
              "covariate_shift: variant %d seed %d: train_acc = the last window's"
              % (r["variant"], r["seed"]))
        mine = [c["train_acc"] for c in curve
                if c["variant"] == r["variant"] and c["seed"] == r["seed"]]
        check(close(r["train_acc_over_steps"], statistics.mean(mine), 1e-9),
              "covariate_shift: variant %d seed %d: train_acc_over_steps = the windows' mean"
              % (r["variant"], r["seed"]))
    # The landscape is probed along the BN (0) and no-BN (2) paths only.
    check(sorted({int(r["variant"]) for r in land}) == [0, 2],
          "covariate_shift_landscape: probes of BN and no BN only")
    check(len(land) == 2 * len(SEEDS) * 4 * 3
          and sorted({r["step"] for r in land}) == [4, 8, 12, 16]
          and sorted({r["eta"] for r in land}) == [0.05, 0.1, 0.2],
          "covariate_shift_landscape: steps 4, 8, 12, 16 x step sizes 0.05, 0.1, 0.2 per run")
    no_nan(land, ["loss0", "loss", "grad_norm", "grad_diff"], stem + "_landscape")
    # The summary is computed from the rows: per run, the mean over its probes of the loss
    # range over eta, of the largest gradient change, and of the largest ||dg|| / (eta ||g||);
    # per model, their mean and sd over the seeds (and the same for the run rows).
    for srow in summary:
        v = int(srow["variant"])
        mine = [r for r in rows if r["variant"] == v]
        expect = {"train_acc": [r["train_acc"] for r in mine],
                  "train_acc_over_steps": [r["train_acc_over_steps"] for r in mine],
                  "test_acc": [r["test_acc"] for r in mine],
                  "mean_shift": [r["mean_shift"] for r in mine],
                  "std_shift": [r["std_shift"] for r in mine]}
        if v in (0, 2):
            ranges, gdiffs, betas = [], [], []
            for s in SEEDS:
                probes = {}
                for r in land:
                    if r["variant"] == v and r["seed"] == s:
                        probes.setdefault(r["step"], []).append(r)
                ranges.append(statistics.mean(max(p["loss"] for p in ps)
                                              - min(p["loss"] for p in ps)
                                              for ps in probes.values()))
                gdiffs.append(statistics.mean(max(p["grad_diff"] for p in ps)
                                              for ps in probes.values()))
                betas.append(statistics.mean(max(p["grad_diff"] / (p["eta"] * p["grad_norm"])
                                                 for p in ps) for ps in probes.values()))
            expect.update(loss_range=ranges, grad_diff=gdiffs, beta=betas)
        else:
            for k in ("loss_range", "grad_diff", "beta"):
                check(math.isnan(srow[k + "_mean"]),
                      "covariate_shift_summary: noisy BN has no %s (not probed)" % k)
        for k, values in expect.items():
            check(close(srow[k + "_mean"], statistics.mean(values), 1e-9)
                  and close(srow[k + "_sd"], statistics.stdev(values), 1e-9)
                  and srow["runs"] == len(SEEDS),
                  "covariate_shift_summary: variant %d: %s mean and sd of the seeds' values"
                  % (v, k))
    check_png(out, stem)


def facts_covariate_shift_probes(program, tmp, a):
    """The probes leave the training path alone, and a step of 0 gives back the step's loss
    and gradient exactly (the weights, gradients and running statistics are restored)."""
    stem = "ch310_covariate_shift"
    d = os.path.join(tmp, "no_probes")
    run([program, "--quick", "--seed", "3", "--seeds", "2", "--probe-every", "0", "--out", d])
    for f in (stem + ".csv", stem + "_curve.csv"):
        with open(os.path.join(a, f), "rb") as fa, open(os.path.join(d, f), "rb") as fd:
            check(fa.read() == fd.read(),
                  "%s: the same with and without the landscape probes" % f)
    with open(os.path.join(d, stem + "_landscape.csv")) as f:
        check(len(f.read().splitlines()) == 1,
              "covariate_shift: --probe-every 0 writes no probes (a header only)")
    d = os.path.join(tmp, "eta0")
    run([program, "--quick", "--seed", "3", "--seeds", "1", "--etas", "0,0.1", "--out", d])
    land = read_csv(os.path.join(d, stem + "_landscape.csv"))
    zero = [r for r in land if r["eta"] == 0]
    check(len(zero) == 2 * 4 and all(r["loss"] == r["loss0"] and r["grad_diff"] == 0
                                     for r in zero),
          "covariate_shift: a step of 0 gives the step's own loss and gradient, to the bit")
    moved = [r for r in land if r["eta"] == 0.1]
    check(len(moved) == 2 * 4 and all(r["loss"] != r["loss0"] and r["grad_diff"] > 0
                                      for r in moved),
          "covariate_shift: a step of 0.1 moves the loss and the gradient")


FACTS = {
    "lr_sweep": facts_lr_sweep,
    "convergence": facts_convergence,
    "init_scale": facts_init_scale,
    "regularisation": facts_regularisation,
    "placement": facts_placement,
    "small_batch": facts_small_batch,
    "finetune": facts_finetune,
    "covariate_shift": facts_covariate_shift,
}
# Programs that must have --full (their default run is a cut of the sweep of record); any
# program listing it is checked.
HAS_FULL = {"lr_sweep", "init_scale", "small_batch"}
# Files whose numbers are timings: expected to differ between two runs of one seed.
TIMINGS = {"ch310_convergence_timing.csv"}


def check_verdict(name, a, b, c):
    """The chapter page's verdict (scripts/chapter_verdicts.py) is made from what the program
    wrote: one of held / held in part / did not hold, with its evidence, and the same from the
    three runs (but convergence's, which reads the seconds). Which verdict is not checked: a
    --quick run is too short to argue one, and the rules themselves are checked on the full
    runs' numbers by tests/check_chapter_verdicts.py."""
    program = "ch310_" + name
    got = [cv.verdict(d, program) for d in (a, b, c)]
    check(got[0][0] in (cv.HELD, cv.PART, cv.NOT) and got[0][1],
          "%s: the chapter page's verdict from these files: %s (%s)" % (name, *got[0]))
    if name != "convergence":
        check(got[0] == got[1] == got[2], "%s: the same verdict and evidence from the three runs"
              % name)


def csv_files(out):
    return sorted(f for f in os.listdir(out) if f.endswith(".csv") or f.endswith(".gp"))


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in FACTS:
        sys.exit(__doc__)
    name, program = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp(prefix="tapegrad_ch310_%s_" % name)
    try:
        # --help, and flags refused in plain words.
        help_text = run([program, "--help"]).stdout
        for flag in ("--seed", "--seeds", "--out", "--quick", "--threads", "--dataset",
                     "Writes into --out:"):
            check(flag in help_text, "--help mentions %s" % flag)
        wide = [l for l in help_text.splitlines() if len(l) > 80]
        check(not wide, "--help fits 80 columns%s" % ("" if not wide else ": " + wide[0]))
        bad_out = os.path.join(tmp, "not_a_dir")
        with open(bad_out, "w") as f:
            f.write("a file\n")
        for args, message in ((["--seed", "-1"],
                               "--seed must be between 0 and 18446744073709551615 (got -1)"),
                              (["--seeds", "0"], "--seeds must be between 1 and 100 (got 0)"),
                              (["--threads", "-2"], "--threads must be between 0 and 256 (got -2)"),
                              (["--out", os.path.join(bad_out, "x")],
                               "cannot write into --out " + os.path.join(bad_out, "x"))):
            proc = run([program, "--quick", "--out", os.path.join(tmp, "refused")] + args
                       if args[0] != "--out" else [program, "--quick"] + args, expect_ok=False)
            check(proc.returncode != 0 and message in proc.stderr,
                  "%s refused: \"%s\"" % (" ".join(args), message))
        check(not os.path.exists(os.path.join(tmp, "refused")), "nothing written when refused")

        # Two runs of the same seed on 2 threads, and one on 1 thread.
        a, b, c = (os.path.join(tmp, d) for d in "abc")
        common = ["--quick", "--seed", "3", "--seeds", "2"]
        out_a = run([program] + common + ["--threads", "2", "--out", a]).stdout
        STDOUT["a"] = out_a
        run([program] + common + ["--threads", "2", "--out", b])
        run([program] + common + ["--threads", "1", "--out", c])
        check("runs done" in out_a, "progress shown (runs done)")
        check_width(out_a, [tmp])
        FACTS[name](a)
        check_verdict(name, a, b, c)
        files = csv_files(a)
        check(files == csv_files(b), "both runs wrote the same files")
        for f in files:
            if f in TIMINGS:
                continue
            with open(os.path.join(a, f), "rb") as fa, open(os.path.join(b, f), "rb") as fb:
                check(fa.read() == fb.read(), "%s: byte-identical for the same seed" % f)
            # The project's rule: the same numbers at any thread count.
            with open(os.path.join(a, f), "rb") as fa, open(os.path.join(c, f), "rb") as fc:
                check(fa.read() == fc.read(), "%s: byte-identical at 1 and 2 threads" % f)
        # --full (the sweeps of record) in the programs whose default run is a cut of a longer
        # sweep; --quick takes precedence over it.
        check(name not in HAS_FULL or "--full" in help_text, "--help lists --full")
        if "--full" in help_text:
            d = os.path.join(tmp, "quick_full")
            run([program] + common + ["--threads", "2", "--full", "--out", d])
            for f in files:
                with open(os.path.join(a, f), "rb") as fa, open(os.path.join(d, f), "rb") as fd:
                    check(f in TIMINGS or fa.read() == fd.read(),
                          "%s: --quick --full is --quick (byte-identical)" % f)
        if name == "convergence":
            facts_convergence_from_sweep(program, os.path.join(tmp, "c"))
        if name == "covariate_shift":
            facts_covariate_shift_probes(program, tmp, a)
        if name == "finetune":
            facts_finetune_transfer(program, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if FAILURES:
        print("\n%d check(s) failed:\n  %s" % (len(FAILURES), "\n  ".join(FAILURES)))
        sys.exit(1)
    print("\nall checks passed")


if __name__ == "__main__":
    main()
