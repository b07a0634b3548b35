#!/usr/bin/python3
"""Runs the chapter's programs in --quick mode into a temporary directory and checks what
they write (CTest runs this; see tests/CMakeLists.txt).

    check_examples.py histograms <path to ch310_bn_histograms>
    check_examples.py train      <path to ch310_train_cnn>

histograms: the files exist (each figure's .gp script and CSV data; the PNG when gnuplot is
  installed); after batch_norm in training mode every feature (synthetic) and every channel
  (CNN) has mean β and biased variance γ²σ²/(σ² + ε), where σ² is the feature's batch
  variance before BN (γ = 1, β = 0 for the synthetic figure, so mean 0 and variance
  σ²/(σ² + ε) = 1 − ε/σ² + ..., about 1 − 1e-6 for σ² ≈ 9). The outputs are float32: their
  means and variances, summed in double, are within a few 1e-7 of the exact values, so the
  tolerance is 1e-5 (a biased/unbiased mix-up is off by 1/(B − 1) >= 0.002, a wrong ε by
  about ε/σ²). The spread of the batch statistics matches σ/√B and σ²√(2/(B−1)).
train: the files exist (figure, CSV histories, checkpoints); the training loss falls (the
  mean of the first 5 steps vs the last 5); a second run with the same seed prints the same
  numbers (every line but the timings, which contain "ex/s") and writes the same CSV files.
  Then numbers only a correct framework produces, for the run on the fast kernels and for a
  run on the reference kernels (--kernels reference), both at seed 0:
  - PyTorch agrees with eval mode: both checkpoints, read with our own parser and loaded
    into the same torch.nn layers, score the same 500 test images (normalised as the program
    does) with PyTorch's eval mode to the loss and accuracy in the history CSV (loss within
    1e-4, at most one image scored differently). PyTorch is not needed at test time: its
    numbers are in tests/reference/train_cnn_eval.json with each checkpoint's SHA-256
    (tests/reference/gen_train_cnn_eval.py, torch group, writes it); see check_with_pytorch. Eval mode normalising with the batch's
    statistics instead of the running ones is off by 0.0036 at seed 0.
  - The BN model learned as the chapter's BN does: after the 2 quick epochs its mean training
    loss of epoch 2 is below 0.36, its test loss below 0.36 and its test accuracy at least 89%.
    Correct runs at seeds 0-11, fast and reference kernels (24 runs): training loss
    0.214-0.340, test loss 0.245-0.341, test accuracy 91.0-93.4%. A BN backward with the
    mean term's sign flipped (term 2 of dx) fails at seed 0 (0.52, 0.45, 87.6%), and at every
    seed 0-11 in the fast kernel, 11 of 12 in the reference one (not seed 4); with the variance
    term's sign flipped (term 3) it fails at seed 0 (0.37, 0.39, 86.6%) and at 9 of 12 seeds in
    either kernel (at seeds 1, 6 and 9 it stays inside the bounds).
"""
import csv
import gzip
import hashlib
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

FAILURES = []


def check(cond, what):
    if cond:
        print("  ok   " + what)
    else:
        print("  FAIL " + what)
        FAILURES.append(what)
    return cond


def run(cmd):
    print("$ " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=600)
    print(proc.stdout)
    if proc.returncode != 0:
        sys.exit("FAILED: exit code %d" % proc.returncode)
    return proc.stdout


def read_csv(path):
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def check_figure(out, stem, panels):
    """The script, one CSV per panel, and the PNG when gnuplot is on PATH."""
    check(os.path.isfile(os.path.join(out, stem + ".gp")), stem + ".gp written")
    data = [f for f in os.listdir(out) if f.startswith(stem + "_r") and f.endswith(".csv")]
    check(len(data) >= panels, "%s: %d data files for %d panels" % (stem, len(data), panels))
    if shutil.which("gnuplot"):
        png = os.path.join(out, stem + ".png")
        ok = os.path.isfile(png) and os.path.getsize(png) > 10000
        if ok:
            with open(png, "rb") as f:
                ok = f.read(8) == b"\x89PNG\r\n\x1a\n"
        check(ok, stem + ".png rendered")
    else:
        print("  (gnuplot not installed: " + stem + ".png not expected)")


def check_bn_stats(path, batch_sizes, channels, synthetic):
    rows = read_csv(path)
    check(len(rows) == len(batch_sizes) * channels,
          "%s: %d rows = %d batch sizes x %d channels" %
          (os.path.basename(path), len(rows), len(batch_sizes), channels))
    check(sorted({int(r["batch_size"]) for r in rows}) == batch_sizes,
          "batch sizes %s" % batch_sizes)
    tol = 1e-5
    worst_mean = max(abs(r["out_mean"] - r["expected_out_mean"]) for r in rows)
    worst_var = max(abs(r["out_var"] - r["expected_out_var"]) for r in rows)
    check(worst_mean <= tol, "after BN every channel's mean is β (worst error %.2g)" % worst_mean)
    check(worst_var <= tol,
          "after BN every channel's variance is γ²σ²/(σ²+ε) (worst error %.2g)" % worst_var)
    # The expected values themselves, from the input statistics: var after = σ²/(σ² + ε).
    for r in rows:
        want = r["in_var"] / (r["in_var"] + 1e-5)
        if synthetic and abs(r["expected_out_var"] - want) > 1e-12:
            check(False, "expected_out_var = σ²/(σ² + ε) in row %s" % r)
            break
    if synthetic:
        # γ = 1, β = 0: mean 0, variance 1 − ε/σ² (≥ 1 − 1e-4 unless σ² < 0.1, never here).
        check(max(abs(r["out_mean"]) for r in rows) <= tol, "synthetic: mean 0 after BN")
        check(max(abs(r["out_var"] - 1) for r in rows) <= 1e-4, "synthetic: variance 1 after BN")
        # Before BN the features were N(5, 9): the file really holds the inputs, not outputs.
        m = sum(r["in_mean"] for r in rows) / len(rows)
        v = sum(r["in_var"] for r in rows) / len(rows)
        check(abs(m - 5) < 0.3 and 7 < v < 11, "synthetic inputs from N(5, 9): mean %.2f, "
              "var %.2f" % (m, v))


def histograms(program):
    out = tempfile.mkdtemp(prefix="ch310_hist_")
    try:
        run([program, "--help"])
        run([program, "--quick", "--out", out, "--seed", "1"])
        check_figure(out, "ch310_batchnorm", 8)
        check_figure(out, "ch310_batch_noise", 2)
        check_figure(out, "ch310_batchnorm_cnn", 8)
        sizes = [8, 32, 128, 512]
        check_bn_stats(os.path.join(out, "ch310_batchnorm_stats.csv"), sizes, 64, True)
        check_bn_stats(os.path.join(out, "ch310_batchnorm_cnn_stats.csv"), sizes, 6, False)

        noise = read_csv(os.path.join(out, "ch310_batch_noise.csv"))
        for r in noise:
            # 20 batches x 64 features: the measured spreads are within a few % of the theory.
            B = int(r["batch_size"])
            check(abs(r["sd_mean"] / r["sd_mean_theory"] - 1) < 0.15 and
                  abs(r["sd_var"] / r["sd_var_theory"] - 1) < 0.25,
                  "B=%d: sd(μ_B) %.3f vs σ/√B %.3f, sd(s²_B) %.3f vs σ²√(2/(B−1)) %.3f" %
                  (B, r["sd_mean"], r["sd_mean_theory"], r["sd_var"], r["sd_var_theory"]))
        check(all(a["sd_mean"] > b["sd_mean"] for a, b in zip(noise, noise[1:])),
              "the noise of the batch mean falls as B grows")
        cnn_noise = read_csv(os.path.join(out, "ch310_batchnorm_cnn_noise.csv"))
        check(len(cnn_noise) == 4 and all(r["sd_mean_relative"] > 0 for r in cnn_noise),
              "CNN noise table written")
    finally:
        shutil.rmtree(out, ignore_errors=True)


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_state_file(path):
    """The named tensors of a tapegrad checkpoint, parsed here from the format in
    include/tapegrad/nn/state_file.hpp (not with the library): "TGSTATE\\0", u32 version,
    u64 count, then per tensor u64 name length, name, u64 rank, u64 sizes, float64 values; a
    CRC-32 of everything before it at the end. Returns {name: (shape, [values])}."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"TGSTATE\0" or len(data) < 24:
        raise ValueError(path + ": not a state file")
    if struct.unpack_from("<I", data, len(data) - 4)[0] != zlib.crc32(data[:-4]):
        raise ValueError(path + ": CRC-32 mismatch")
    (count,) = struct.unpack_from("<Q", data, 12)
    off, tensors = 20, {}
    for _ in range(count):
        (length,) = struct.unpack_from("<Q", data, off)
        name = data[off + 8:off + 8 + length].decode()
        off += 8 + length
        (rank,) = struct.unpack_from("<Q", data, off)
        shape = struct.unpack_from("<%dQ" % rank, data, off + 8)
        off += 8 + 8 * rank
        numel = math.prod(shape)
        tensors[name] = (shape, struct.unpack_from("<%dd" % numel, data, off))
        off += 8 * numel
    return tensors


def read_idx_gz(path, count):
    """The first `count` items of a gzip-compressed IDX file, as bytes, and the item size."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    rank = data[3]
    dims = struct.unpack_from(">%dI" % rank, data, 4)
    item = math.prod(dims[1:])
    start = 4 + 4 * rank
    return data[start:start + count * item], item


GOLDEN = os.path.join(REPO, "tests", "reference", "train_cnn_eval.json")
REGENERATE = ("bash scripts/setup.sh torch && /usr/bin/python3 tests/reference/gen_train_cnn_eval.py "
              "build/ci/examples/ch310_train_cnn")


def checkpoint_sha256(out, run_name):
    with open(os.path.join(out, "cnn_%s.tgstate" % run_name), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def check_with_pytorch(out, history, what, kernels):
    """PyTorch's eval mode on the checkpoints must give the loss and accuracy the program wrote
    for its last epoch. PyTorch's numbers come from tests/reference/train_cnn_eval.json
    (written by tests/reference/gen_train_cnn_eval.py, the torch group), which also holds each
    checkpoint's SHA-256: they apply when this run wrote the same checkpoint bytes (same seed,
    same kernels, same CPU features: the release presets build with -march=native). When it did
    not, PyTorch scores this checkpoint here if it is installed; otherwise this one check is
    skipped with a message that names the torch group."""
    with open(GOLDEN) as f:
        golden = json.load(f)[kernels]
    for run_name in ("bn", "nobn"):
        ref = golden[run_name]
        sha = checkpoint_sha256(out, run_name)
        if sha == ref["checkpoint_sha256"]:
            loss, right, source = ref["pytorch_test_loss"], ref["pytorch_test_right"], GOLDEN
        else:  # no test imports torch: scoring a checkpoint is the torch group's generator's job
            print("SKIPPED this check only (%s, %s model): the checkpoint differs from the one "
                  "PyTorch scored in %s (another CPU or compiler?); regenerate the numbers with "
                  "the torch group: %s" % (what, run_name, os.path.relpath(GOLDEN, REPO), REGENERATE))
            continue
        ours_loss = history[-1][run_name + "_test_loss"]
        ours_right = round(history[-1][run_name + "_test_acc"] * 500)
        check(abs(loss - ours_loss) <= 1e-4 and abs(right - ours_right) <= 1,
              "%s, %s model: PyTorch's eval mode on the checkpoint gives test loss %.6f, %d/500 "
              "right (%s); the program wrote %.6f, %d/500 (|diff| %.2g)" %
              (what, run_name, loss, right, source, ours_loss, ours_right, abs(loss - ours_loss)))


def check_learned(history, what):
    """The BN model's numbers after the quick run (bounds: see the module's docstring)."""
    last = history[-1]
    check(last["bn_train_loss"] < 0.36 and last["bn_test_loss"] < 0.36 and
          last["bn_test_acc"] >= 0.89,
          "%s: BN model, epoch 2: training loss %.4f < 0.36, test loss %.4f < 0.36, test "
          "accuracy %.1f%% >= 89%%" % (what, last["bn_train_loss"], last["bn_test_loss"],
                                       100 * last["bn_test_acc"]))


def train(program):
    outs = [tempfile.mkdtemp(prefix="ch310_train_") for _ in range(3)]
    try:
        run([program, "--help"])
        logs = [run([program, "--quick", "--out", o]) for o in outs[:2]]
        run([program, "--quick", "--out", outs[2], "--kernels", "reference"])
        out = outs[0]
        check_figure(out, "ch310_training", 2)
        for name in ("cnn_bn.tgstate", "cnn_nobn.tgstate"):
            path = os.path.join(out, name)
            ok = os.path.isfile(path)
            if ok:
                with open(path, "rb") as f:
                    ok = f.read(8) == b"TGSTATE\0"
            check(ok, name + " is a state file")

        steps = read_csv(os.path.join(out, "ch310_training_steps.csv"))
        history = read_csv(os.path.join(out, "ch310_training_history.csv"))
        check(len(history) == 2, "quick mode: 2 epochs")
        for run_name in ("bn", "nobn"):
            losses = [r[run_name + "_loss"] for r in steps]
            first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
            check(all(math.isfinite(x) for x in losses) and last < 0.7 * first,
                  "%s: training loss falls, %.3f (first 5 steps) → %.3f (last 5)" %
                  (run_name, first, last))
        check(history[-1]["nobn_test_acc"] > 0.2,
              "no-BN model's test accuracy %.1f%% is above chance" %
              (100 * history[-1]["nobn_test_acc"]))
        for o, what in ((outs[0], "fast kernels"), (outs[2], "reference kernels")):
            h = history if o == out else read_csv(os.path.join(o, "ch310_training_history.csv"))
            check_learned(h, what)
            check_with_pytorch(o, h, what, "fast" if o == out else "reference")

        def numbers(log, o):
            return [l.replace(o, "OUT") for l in log.splitlines() if "ex/s" not in l]
        check(numbers(logs[0], outs[0]) == numbers(logs[1], outs[1]),
              "the same seed prints the same numbers (timings aside)")
        for f in ("ch310_training_history.csv", "ch310_training_steps.csv", "cnn_bn.tgstate"):
            with open(os.path.join(outs[0], f), "rb") as a, open(os.path.join(outs[1], f),
                                                                 "rb") as b:
                check(a.read() == b.read(), "the same seed writes the same " + f)
    finally:
        for o in outs:
            shutil.rmtree(o, ignore_errors=True)


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("histograms", "train"):
        sys.exit(__doc__)
    {"histograms": histograms, "train": train}[sys.argv[1]](sys.argv[2])
    if FAILURES:
        sys.exit("%d check(s) failed:\n  %s" % (len(FAILURES), "\n  ".join(FAILURES)))
    print("all checks passed")


if __name__ == "__main__":
    main()
