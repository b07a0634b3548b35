#!/usr/bin/python3
"""Runs one of the ch310/ch306/ch322 gotcha demonstrations in --quick mode into a temporary
directory and checks the deterministic facts it writes (<program>_facts.json) and prints.

    check_ch310_gotchas.py <which> <program>

which: manual | variance | checkpoint | family | layernorm | tape | train_eval | shift
Exit status 0 when every check passes; otherwise each failed check is printed.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)


def run(program, out, *extra):
    help_text = subprocess.run([program, "--help"], capture_output=True, text=True)
    check(help_text.returncode == 0 and "--seed" in help_text.stdout and "--out" in
          help_text.stdout and "--quick" in help_text.stdout, "--help lists --seed, --out, --quick")
    p = subprocess.run([program, "--quick", "--seed", "0", "--out", out, *extra],
                       capture_output=True, text=True, timeout=600)
    sys.stdout.write(p.stdout)
    sys.stderr.write(p.stderr)
    check(p.returncode == 0, f"{os.path.basename(program)} --quick exits with 0 (got {p.returncode})")
    name = os.path.basename(program)
    # tg::viz::Figure renders text as written (pngcairo noenhanced): a backslash meant to escape
    # an underscore for gnuplot's enhanced mode shows up in the figure ("running\_var").
    for gp in sorted(f for f in os.listdir(out) if f.endswith(".gp")):
        with open(os.path.join(out, gp), encoding="utf-8") as f:
            escaped = [line.strip() for line in f if re.search(r"\\\\[_^{}]", line)]
        check(not escaped, f"{gp}: no enhanced-mode escape shown literally {escaped[:1]}")
    path = os.path.join(out, name + "_facts.json")
    if not os.path.exists(path):
        check(False, f"{path} written")
        return p.stdout, {}
    with open(path) as f:
        return p.stdout, json.load(f)


def close(a, b, tol):
    return abs(a - b) <= tol


def manual(stdout, f, program):
    for key in ("train_output_max_diff", "train_grad_max_diff", "eval_output_max_diff",
                "running_mean_max_diff", "running_var_max_diff"):
        check(f[key] < 1e-6, f"manual vs built-in {key} = {f[key]:.3g} < 1e-6")
    # The facts file cannot be written (a directory holds its name): the program says so, fails,
    # and leaves no temporary file behind (examples/gotchas/facts.hpp; every program saves so).
    out = tempfile.mkdtemp(prefix="tapegrad_gotchas_blocked_")
    try:
        os.mkdir(os.path.join(out, "ch310_manual_batchnorm_facts.json"))
        p = subprocess.run([program, "--quick", "--out", out], capture_output=True, text=True)
        left = sorted(os.listdir(out))
        check(p.returncode != 0 and re.search(r"cannot (write|rename|create)", p.stderr) and
              "ch310_manual_batchnorm_facts.json" in p.stderr,
              f"an unwritable facts file is an error naming it ({p.stderr.strip()!r})")
        check(left == ["ch310_manual_batchnorm_facts.json"], f"nothing left behind ({left})")
    finally:
        shutil.rmtree(out, ignore_errors=True)


def variance(stdout, f, program):
    sizes = sorted(int(k[1:].split("_")[0]) for k in f if k.endswith("_train_var_pytorch"))
    check(sizes == [2, 8, 64, 512], f"batch sizes 2, 8, 64, 512 measured (got {sizes})")
    check(f["worst_convention"] < 1e-5,
          f"BatchNorm1d stores the unbiased batch variance (rel. diff {f['worst_convention']:.2g})")
    for B in sizes:
        k = f"B{B}_"
        eps_effect = 1e-3  # σ²/(σ²+ε) with σ² of order 4, and float32 sums
        check(close(f[k + "train_var_pytorch"], 1.0, eps_effect),
              f"B={B}: training output variance {f[k + 'train_var_pytorch']:.5f} = 1 (biased σ²)")
        check(close(f[k + "train_var_unbiased"], (B - 1) / B, eps_effect),
              f"B={B}: normalised by the unbiased σ², variance {f[k + 'train_var_unbiased']:.5f} "
              f"= (B-1)/B = {(B - 1) / B:.5f}")
        # Same batches, both linear in the batch variances: the ratio is exactly (B-1)/B once
        # the initial running_var = 1 has decayed (0.9^150 ~ 1e-7).
        ratio = f[k + "running_over_sigma2_biased"] / f[k + "running_over_sigma2_pytorch"]
        check(close(ratio, (B - 1) / B, 1e-4),
              f"B={B}: biased/unbiased running_var = {ratio:.5f} = (B-1)/B")
    check(f["B2_eval_var_biased"] > 1.5, "B=2: storing the biased variance inflates the eval "
          f"variance ({f['B2_eval_var_biased']:.3f} > 1.5)")


def checkpoint(stdout, f, program):
    steps = f["steps"]
    check(f["plain_num_batches_tracked_max"] == steps, "plain run counts each batch once")
    check(f["checkpointed_num_batches_tracked_min"] == 2 * steps,
          "checkpointed run counts each batch twice (PyTorch's behaviour)")
    check(f["fixed_num_batches_tracked_max"] == steps and f["fixed_num_batches_tracked_min"] == steps,
          "fixed run counts each batch once")
    check(f["checkpointed_running_mean_max_diff"] > 0, "checkpointed running_mean drifts")
    check(f["fixed_running_mean_max_diff"] == 0, "fixed running_mean equals the plain run's exactly")
    check(f["checkpointed_grad_max_diff"] == 0 and f["fixed_grad_max_diff"] == 0,
          "gradients equal the plain run's exactly")
    check(f["checkpointed_tape_entries"] < f["plain_tape_entries"], "fewer tape entries")
    check(f["memory_saved_after_forward"] > 0.3,
          f"memory held after forward {100 * f['memory_saved_after_forward']:.0f}% lower (> 30%)")
    check(f["memory_saved_peak"] > 0, f"peak memory {100 * f['memory_saved_peak']:.0f}% lower")


def family(stdout, f, program):
    for n in ("batchnorm", "layernorm", "groupnorm", "instancenorm"):
        check(close(f[n + "_mean"], 0, 1e-3) and close(f[n + "_std"], 1, 1e-3),
              f"{n}: output mean 0, std 1 ({f[n + '_mean']:.4f}, {f[n + '_std']:.4f})")
    for n in ("batchnorm", "instancenorm"):  # per channel: no skew left
        check(f[n + "_channel_mean_hi"] - f[n + "_channel_mean_lo"] < 1e-3,
              f"{n}: every channel has mean 0")
    check(f["layernorm_channel_mean_hi"] - f["layernorm_channel_mean_lo"] > 1.0,
          "layernorm: the channel means stay skewed")
    spread = {n: f[n + "_channel_mean_hi"] - f[n + "_channel_mean_lo"]
              for n in ("layernorm", "groupnorm", "instancenorm")}
    check(spread["instancenorm"] < spread["groupnorm"] < 0.75 * spread["layernorm"],
          "groupnorm: channel means between instancenorm's and layernorm's "
          f"(spreads {spread['instancenorm']:.3f} < {spread['groupnorm']:.3f} < "
          f"{spread['layernorm']:.3f})")
    check(f["batchnorm_batch_dependence"] > 0.1, "batchnorm: output depends on the batch")
    check(f["batchnorm_train_eval_diff"] > 0.1, "batchnorm: train and eval differ")
    for n in ("layernorm", "groupnorm", "instancenorm", "rmsnorm"):
        check(f[n + "_batch_dependence"] == 0, f"{n}: output independent of the batch")
        check(f[n + "_train_eval_diff"] == 0, f"{n}: train and eval identical")
    # RMSNorm: no centring, so mean² + std² (the output's mean square) is 1, not mean 0, std 1
    check(close(f["rmsnorm_mean"] ** 2 + f["rmsnorm_std"] ** 2, 1, 1e-3),
          f"rmsnorm: output mean square 1 ({f['rmsnorm_mean']:.4f}² + {f['rmsnorm_std']:.4f}²)")
    check(f["rmsnorm_channel_mean_hi"] - f["rmsnorm_channel_mean_lo"] > 1.0,
          "rmsnorm: the channel means stay skewed")


ONE_VALUE_ERROR = "expected more than 1 value per channel when training"


def layernorm(stdout, f, program):
    check(f["layernorm_token_mean_max"] < 1e-5 and f["layernorm_token_std_max_dev"] < 1e-3,
          "LayerNorm: every token mean 0, std 1 on a batch of one")
    check(ONE_VALUE_ERROR in f["batchnorm_one_token_error"],
          f"BatchNorm1d on one token raises: {f['batchnorm_one_token_error']!r}")
    check(ONE_VALUE_ERROR in stdout, "the error text is printed")
    check(f["layernorm_one_token_vs_sequence"] == 0, "LayerNorm of a lone token = its row")
    check(f["layernorm_first_token_change"] == 0, "LayerNorm: token 0 independent of later tokens")
    check(f["batchnorm_first_token_change"] > 0.01, "BatchNorm over positions: token 0 depends "
          "on the last token")
    check(f["layernorm_train_eval_diff"] == 0, "LayerNorm identical in train and eval")
    check(f["batchnorm_train_eval_diff"] > 0.01, "BatchNorm differs between train and eval")


def tape(stdout, f, program):
    check(f["gradcheck_ok"] is True and f["gradcheck_max_abs_error"] < 1e-6,
          f"finite differences agree (max error {f['gradcheck_max_abs_error']:.3g})")
    check(f["bn_formula_vs_composed"] < 1e-12,
          f"BN backward formula = composed ops' gradient ({f['bn_formula_vs_composed']:.3g})")
    check(f["bn_fused_vs_composed"] < 1e-12,
          f"fused batch_norm = composed ops' gradient ({f['bn_fused_vs_composed']:.3g})")
    check(f["bn_without_term2_error"] > 1e-3 and f["bn_without_term3_error"] > 1e-3,
          "dropping term 2 or term 3 gives a wrong gradient")
    check(f["tape_entries"] >= 5 and "Tape with" in stdout, "the tape is printed")


def train_eval(stdout, f, program):
    check(ONE_VALUE_ERROR in f["batch_of_one_error"],
          f"one example in training mode raises: {f['batch_of_one_error']!r}")
    check(f["same_input_eval_diff"] == 0, "eval outputs independent of the batch (exactly)")
    check(f["same_input_train_diff"] > 1e-3, "training-mode outputs depend on the batch")
    check(f["acc_eval"] > 0.8, f"the trained model scores {100 * f['acc_eval']:.1f}% in eval")
    check(f["acc_train_mode_sorted_B2"] < f["acc_eval"] - 0.1,
          "training mode on class-sorted batches of 2 loses accuracy")
    check(f["drift_batches_counted"] > 0 and f["drift_running_mean"] > 0,
          "a forgotten eval() moves the running statistics")
    check(f["guard_eval_inside"] is True and f["guard_restored_after_throw"] is True,
          "EvalGuard: eval inside, training restored after an exception")


def shift(stdout, f, program):
    check(f["acc_before_contrast"] < f["acc_before_none"] - 0.1,
          "contrast 0.5: accuracy collapses with the training statistics "
          f"({100 * f['acc_before_contrast']:.1f}% vs {100 * f['acc_before_none']:.1f}%)")
    for key in ("contrast", "bright", "strong"):  # affine shifts: recalibration undoes them
        check(f[f"acc_after_{key}"] > f[f"acc_before_{key}"] and
              f[f"acc_after_{key}"] >= f["acc_after_none"] - 0.03,
              f"{key}: update_bn recovers the accuracy ({100 * f[f'acc_before_{key}']:.1f}% -> "
              f"{100 * f[f'acc_after_{key}']:.1f}%)")
    check(f["acc_after_inverted"] < f["acc_after_none"] - 0.3,
          "inverted: recalibration cannot undo a sign flip")
    for key in ("none", "contrast", "bright", "strong", "inverted"):
        check(f[f"tracked_after_{key}"] == f["calibration_batches"],
              f"{key}: num_batches_tracked = calibration batches")
        check(f[f"eval_mode_kept_{key}"] is True and f[f"momentum_kept_{key}"] is True,
              f"{key}: update_bn restored eval mode and momentum")


CHECKS = {"manual": manual, "variance": variance, "checkpoint": checkpoint, "family": family,
          "layernorm": layernorm, "tape": tape, "train_eval": train_eval, "shift": shift}


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in CHECKS:
        sys.exit(__doc__)
    out = tempfile.mkdtemp(prefix="tapegrad_gotchas_")
    try:
        stdout, facts = run(sys.argv[2], out, *sys.argv[3:])
        if facts:
            CHECKS[sys.argv[1]](stdout, facts, sys.argv[2])
    finally:
        shutil.rmtree(out, ignore_errors=True)
    if failures:
        print(f"{len(failures)} check(s) failed")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
