#!/usr/bin/python3
"""The chapter page's verdict table: for each of the chapter's claims (docs/ch310_experiments.md)
and gotchas (docs/ch310_gotchas.md), whether it held here, computed from what the program wrote
into OUT (its CSV files, <program>_facts.json, or the table it printed), never typed in.

    verdicts(out) -> {program: (verdict, evidence)}
    verdict: "held", "held in part", "did not hold", or "no verdict" (a demonstration without
    a pass/fail fact, or its files are missing). Each rule reads the same numbers the docs'
    verdicts are argued from; quick runs (--quick) give verdicts about quick runs.
"""
import csv
import json
import math
import os
import re
import statistics

HELD, PART, NOT, NONE = "held", "held in part", "did not hold", "no verdict"


def _csv(out, name):
    with open(os.path.join(out, name), newline="") as f:
        return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]


def _facts(out, program):
    with open(os.path.join(out, program + "_facts.json")) as f:
        return json.load(f)


def _mean(values):
    values = list(values)
    return statistics.mean(values) if values else math.nan


def _pct(x):
    return "%.1f%%" % (100 * x)


def _sweep(out, stem):
    """Per variant: the largest rate no seed failed at, and the best mean accuracy and its rate."""
    res = {}
    for v in (0, 1):
        rows = sorted((r for r in _csv(out, stem + "_summary.csv") if r["variant"] == v),
                      key=lambda r: r["lr"])
        ok = [r["lr"] for r in rows if r["failed_runs"] == 0]
        best = max(rows, key=lambda r: r["test_acc_mean"])
        res[v] = (max(ok) if ok else math.nan, best["lr"], best["test_acc_mean"],
                  best.get("test_acc_sd", 0.0))
    return res


def _ahead(mean, sd, other_mean, other_sd):
    """A mean "ahead" of another: higher by more than the two seed sds together and by more
    than 1 point (closer than that is level: noise). The rule of ch310_small_batch's
    breakdown, with placement's smaller floor (its leads are a point or less; docs)."""
    return mean > other_mean + max(0.01, sd + other_sd)


def _depth_summary(out, stem):
    """{depth: rows of <stem>_summary.csv} when the program wrote its depth part, else {}."""
    if not os.path.exists(os.path.join(out, stem + "_summary.csv")):
        return {}
    rows = _csv(out, stem + "_summary.csv")
    return {d: [r for r in rows if r["depth"] == d] for d in sorted({r["depth"] for r in rows})}


def lr_sweep(out):
    s = _sweep(out, "ch310_lr_sweep")
    ev = ("no seed failed up to lr %g with BN, %g without; best %s at lr %g vs %s at lr %g"
          % (s[0][0], s[1][0], _pct(s[0][2]), s[0][1], _pct(s[1][2]), s[1][1]))
    held = [("chapter CNN", s[0][0] > s[1][0])]
    # The second part: MLPs of several depths with and without BatchNorm1d.
    for depth, rows in _depth_summary(out, "ch310_lr_sweep_depth").items():
        ok = [max([r["lr"] for r in rows if r["variant"] == v and r["failed_runs"] == 0],
                  default=0) for v in (0, 1)]
        held.append(("MLP of %d layers" % depth, ok[0] > ok[1]))
        ev += "; MLP of %d layers: up to lr %g with BN, %g without" % (depth, ok[0], ok[1])
    where = [name for name, h in held if h]
    verdict = HELD if len(where) == len(held) else PART if where else NOT
    return verdict, ev + ("" if verdict != PART else ": held in the %s only" % ", ".join(where))


def convergence(out):
    summary, timing = _csv(out, "ch310_convergence_summary.csv"), _csv(out, "ch310_convergence_timing.csv")
    steps, secs = {}, {}
    for v in (0, 1):
        st = [r["steps_to_target"] for r in summary if r["variant"] == v]
        steps[v] = _mean(math.inf if math.isnan(x) else x for x in st)
        per = _mean(r["seconds_per_step"] for r in timing if r["variant"] == v)
        secs[v] = steps[v] * per
    ev = ("steps to the target: %g with BN, %g without; in seconds %.3g vs %.3g"
          % (steps[0], steps[1], secs[0], secs[1]))
    if steps[0] < steps[1]:
        return (HELD if secs[0] < secs[1] else PART), ev + (
            "" if secs[0] < secs[1] else " (fewer steps, not less time)")
    return NOT, ev


def init_scale(out):
    rows = _csv(out, "ch310_init_scale.csv")

    def ratio(bn, key):  # std at init scale 2 over std at scale 0.5, mean over the seeds
        return _mean(r2[key] / r5[key] for r2 in rows for r5 in rows
                     if r2["bn"] == bn == r5["bn"] and r2["seed"] == r5["seed"]
                     and r2["scale"] == 2 and r5["scale"] == 0.5)
    conv_bn, conv_plain, fc_bn = ratio(1, "std_conv2"), ratio(0, "std_conv2"), ratio(1, "std_fc2")
    ev = ("init scale 0.5 -> 2 multiplies conv2's output std by %.3g with BN, %.3g without; "
          "fc2's (no BN there) by %.3g" % (conv_bn, conv_plain, fc_bn))
    conv_ok = abs(conv_bn - 1) < 0.05 and abs(conv_plain - 1) > 0.5
    # The second part: MLPs with BatchNorm1d after every hidden Linear and without; the
    # sensitivity is the spread (best − worst mean test accuracy) over the init scales.
    deep_ev = ""
    path = os.path.join(out, "ch310_init_scale_depth.csv")
    if os.path.exists(path):
        deep = _csv(out, "ch310_init_scale_depth.csv")
        for depth in sorted({r["depth"] for r in deep}):
            spread = []
            for bn in (1, 0):
                means = [_mean(r["test_acc"] for r in deep if r["depth"] == depth
                               and r["bn"] == bn and r["scale"] == sc)
                         for sc in sorted({r["scale"] for r in deep})]
                spread.append(max(means) - min(means))
            deep_ev += ("; MLP of %d layers: accuracy spread over the scales %.1f points with BN "
                        "in every layer, %.1f without" % (depth, 100 * spread[0], 100 * spread[1]))
    if conv_ok:
        return (HELD if abs(fc_bn - 1) < 0.05 else PART), ev + (
            "" if abs(fc_bn - 1) < 0.05 else ": held where BN is, not beyond it") + deep_ev
    return NOT, ev + deep_ev


def _where(held):
    """[(setting, True/False)] -> HELD if it held in every setting, PART in some, NOT in none."""
    where = [name for name, h in held if h]
    return HELD if len(where) == len(held) else PART if where else NOT


def regularisation(out):
    rows = _csv(out, "ch310_regularisation.csv")
    ev, halves = [], []
    for size in sorted({r.get("train_size", 0) for r in rows}):
        def m(bn, dropout, key):
            return _mean(r[key] for r in rows if r.get("train_size", 0) == size
                         and r["bn"] == bn and r["dropout"] == dropout)
        gap_none, gap_bn = m(0, 0, "gap"), m(1, 0, "gap")
        acc_bn, acc_both = m(1, 0, "test_acc"), m(1, 0.5, "test_acc")
        halves.append((gap_bn < gap_none, acc_both <= acc_bn))
        ev.append("%strain-test gap %s with BN, %s without; test %s with BN, %s with BN + Dropout"
                  % ("%d images: " % size if size else "", _pct(gap_bn), _pct(gap_none),
                     _pct(acc_bn), _pct(acc_both)))
    first, second = all(h[0] for h in halves), all(h[1] for h in halves)
    some = any(h[0] or h[1] for h in halves)
    verdict = HELD if first and second else PART if some else NOT
    sizes = sorted({r.get("train_size", 0) for r in rows})
    note = ""
    if verdict == PART:
        narrowed = [s for s, h in zip(sizes, halves) if h[0]]
        unneeded = [s for s, h in zip(sizes, halves) if h[1]]
        if len(sizes) == 1:
            note = ": BN regularised, " + ("and" if unneeded else "but") + " Dropout " + (
                "added nothing" if unneeded else "still helped")
        else:
            note = ("; " + ("BN narrowed the gap at %s images" % ", ".join("%d" % n for n in narrowed)
                            if narrowed else "BN narrowed the gap at no size") + "; " +
                    ("Dropout added nothing to BN at %s images" % ", ".join("%d" % n for n in unneeded)
                     if unneeded else "Dropout still helped BN at every size"))
    return verdict, "; ".join(ev) + note


def placement(out):
    s = _sweep(out, "ch310_placement")
    ev = ("chapter CNN (part 1): best Conv-BN-ReLU %s ± %s at lr %g; Conv-ReLU-BN %s ± %s at "
          "lr %g" % (_pct(s[0][2]), _pct(s[0][3]), s[0][1], _pct(s[1][2]), _pct(s[1][3]), s[1][1]))
    held = [("the chapter CNN's lr sweep", _ahead(s[0][2], s[0][3], s[1][2], s[1][3]))]
    # The second part: CNNs of several depths trained for several epochs; at each depth each
    # placement's best rate by its mean test accuracy after the last epoch.
    path = os.path.join(out, "ch310_placement_depth_summary.csv")
    if os.path.exists(path):
        rows = _csv(out, "ch310_placement_depth_summary.csv")
        last = max(r["epoch"] for r in rows)
        for depth in sorted({r["depth"] for r in rows}):
            best = [max((r for r in rows if r["depth"] == depth and r["variant"] == v
                         and r["epoch"] == last), key=lambda r: r["test_acc_mean"])
                    for v in (0, 1)]
            held.append(("%d conv layers" % depth,
                         _ahead(best[0]["test_acc_mean"], best[0].get("test_acc_sd", 0.0),
                                best[1]["test_acc_mean"], best[1].get("test_acc_sd", 0.0))))
            ev += ("; %d conv layers, %d epochs: %s ± %s at lr %g vs %s ± %s at lr %g"
                   % (depth, last, _pct(best[0]["test_acc_mean"]),
                      _pct(best[0].get("test_acc_sd", 0.0)), best[0]["lr"],
                      _pct(best[1]["test_acc_mean"]), _pct(best[1].get("test_acc_sd", 0.0)),
                      best[1]["lr"]))
    verdict = _where(held)
    where = [name for name, h in held if h]
    return verdict, ev + {HELD: "", NOT: ": Conv-BN-ReLU ahead by more than the seeds' spread "
                          "(and 1 point) nowhere",
                          PART: ": Conv-BN-ReLU ahead by more than the seeds' spread (and 1 "
                          "point) in the %s only" % ", ".join(where)}[verdict]


def _sd(values):
    values = list(values)
    return statistics.stdev(values) if len(values) > 1 else 0.0


def small_batch(out):
    rows = _csv(out, "ch310_small_batch.csv")
    small = min(r["batch"] for r in rows)

    def at(table, norm, net=None):  # test accuracies at the smallest B, one per seed
        return [r["test_acc"] for r in table if r["norm"] == norm and r["batch"] == small
                and (net is None or r["net"] == net)]

    def below(bn, other):
        # "Breaks down": BN's mean more than 2 points below the batch-independent norm's, and
        # by more than the two seed sds together (closer than that is level: noise).
        return _mean(bn) < _mean(other) - max(0.02, _sd(bn) + _sd(other))
    best = max((1, 2, 3), key=lambda n: _mean(at(rows, n)))
    broke = [("chapter CNN", below(at(rows, 0), at(rows, best)))]
    ev = ("at B = %d: chapter CNN (%d values per statistic): BN %s, best of GroupNorm/LayerNorm "
          "%s, no norm %s" % (small, 100 * small, _pct(_mean(at(rows, 0))),
                              _pct(_mean(at(rows, best))), _pct(_mean(at(rows, 4)))))
    # The second part (ch310_small_batch_regimes.csv): BN against LN where each statistic has
    # few values, a CNN whose last BN sees a 2x2 map (net 1) and an MLP with BatchNorm1d (2).
    if os.path.exists(os.path.join(out, "ch310_small_batch_regimes.csv")):
        regimes = _csv(out, "ch310_small_batch_regimes.csv")
        for net, name in ((1, "CNN with a 2x2 map"), (2, "MLP")):
            per_stat = [r["per_stat"] for r in regimes if r["net"] == net and r["batch"] == small]
            bn, ln = at(regimes, 0, net), at(regimes, 3, net)
            broke.append((name, below(bn, ln)))
            ev += "; %s (%d values): BN %s, LN %s" % (name, per_stat[0], _pct(_mean(bn)),
                                                       _pct(_mean(ln)))
    where = [name for name, b in broke if b]
    verdict = HELD if len(where) == len(broke) else PART if where else NOT
    return verdict, ev + {HELD: "", NOT: " (level within the seeds' spread)",
                          PART: ": BN broke down in the %s only" % " and ".join(where)}[verdict]


def finetune(out):
    rows = _csv(out, "ch310_finetune.csv")
    held, ev = [], []
    for batch in sorted({r.get("batch", 0) for r in rows}):
        acc = {m: _mean(r["acc_new"] for r in rows if r["mode"] == m
                        and r.get("batch", 0) == batch) for m in range(3)}
        held.append(("batch %d" % batch, acc[0] >= max(acc[1], acc[2])))
        ev.append("%snew digits: frozen BN %s, recalibrated %s, fully trained %s"
                  % ("batch %d: " % batch if batch else "", _pct(acc[0]), _pct(acc[1]),
                     _pct(acc[2])))
    verdict = _where(held)
    where = [name for name, h in held if h]
    return verdict, "; ".join(ev) + ("" if verdict != PART else ": frozen BN best at %s only"
                                     % ", ".join(where))


def covariate_shift(out):
    """Santurkar et al.'s two findings: (1) shift injected after BN barely hurts: noisy BN keeps
    most (over half) of BN's lead over no BN in training accuracy averaged over the steps,
    although the next layer sees more step-to-step shift than without BN; (2) BN's path is
    smoother: the loss range, the largest gradient change and the effective beta-smoothness
    along it are all below no BN's."""
    rows = {int(r["variant"]): r for r in _csv(out, "ch310_covariate_shift_summary.csv")}
    bn, noisy, none = rows[0], rows[1], rows[2]
    acc = {k: r["train_acc_over_steps_mean"] for k, r in rows.items()}
    lead = acc[0] - acc[2]
    kept = (acc[1] - acc[2]) / lead if lead > 0 else math.nan
    first = lead > 0 and kept > 0.5 and noisy["mean_shift_mean"] > none["mean_shift_mean"]
    keys = ("loss_range_mean", "grad_diff_mean", "beta_mean")
    smoother = [k for k in keys if bn[k] < none[k]]
    second = len(smoother) == len(keys)
    ev = ("training accuracy over the steps: BN %s, noisy BN %s, no BN %s (shift seen by the "
          "next layer %.3g, %.3g, %.3g); along the path BN vs no BN: loss range %.3g vs %.3g, "
          "gradient change %.3g vs %.3g, beta-smoothness %.3g vs %.3g"
          % (_pct(acc[0]), _pct(acc[1]), _pct(acc[2]), bn["mean_shift_mean"],
             noisy["mean_shift_mean"], none["mean_shift_mean"], bn["loss_range_mean"],
             none["loss_range_mean"], bn["grad_diff_mean"], none["grad_diff_mean"],
             bn["beta_mean"], none["beta_mean"]))
    if first and second:
        return HELD, ev
    if first or second:
        return PART, ev + (": the noise finding held, the smoothness one did not" if first
                           else ": BN was smoother, but the injected shift hurt")
    return NOT, ev


def train_vs_eval(out):
    f = _facts(out, "ch310_train_vs_eval")
    shown = f["same_input_train_diff"] > 0 and f["same_input_eval_diff"] == 0
    return (HELD if shown else NOT), (
        "one example's output changes by %.3g with its batch in train mode, %g in eval mode"
        % (f["same_input_train_diff"], f["same_input_eval_diff"]))


def shifted_stats(out):
    f = _facts(out, "ch310_shifted_stats")
    keys = [k[len("acc_before_"):] for k in f if k.startswith("acc_before_")]
    keys = [k for k in keys if k != "none"]  # the unshifted input: nothing to recover
    recovered = [k for k in keys if f["acc_after_" + k] > f["acc_before_" + k]]
    worst = min(keys, key=lambda k: f["acc_before_" + k])
    ev = ("recalibrating the running statistics raised accuracy under %d of %d inputs; "
          "worst (%s): %s -> %s" % (len(recovered), len(keys), worst,
                                   _pct(f["acc_before_" + worst]), _pct(f["acc_after_" + worst])))
    return (HELD if len(recovered) == len(keys) else PART if recovered else NOT), ev


def manual_batchnorm(out):
    f = _facts(out, "ch310_manual_batchnorm")
    keys = [k for k in f if k.endswith("_max_diff")]
    worst = max(keys, key=lambda k: f[k])
    return (HELD if f[worst] < 1e-4 else NOT), (
        "the hand-written BatchNorm matches the built-in one over %d steps: largest difference "
        "%.3g (%s)" % (f["steps"], f[worst], worst[:-len("_max_diff")]))


def variance_convention(out):
    f = _facts(out, "ch310_variance_convention")
    return (HELD if f["worst_convention"] < 1e-5 else NOT), (
        "running_var stores the unbiased batch variance: largest relative difference %.2g"
        % f["worst_convention"])


def layernorm_vs_batchnorm(out):
    f = _facts(out, "ch322_layernorm_vs_batchnorm")
    shown = (f["layernorm_first_token_change"] == 0 and f["batchnorm_first_token_change"] > 0
             and f["layernorm_train_eval_diff"] == 0)
    return (HELD if shown else NOT), (
        "changing the other tokens moves token 0's output by %g under LayerNorm, %.3g under "
        "BatchNorm" % (f["layernorm_first_token_change"], f["batchnorm_first_token_change"]))


def tape_backprop(out):
    f = _facts(out, "ch306_tape_backprop")
    shown = f["gradcheck_ok"] and f["bn_without_term2_error"] > 0 and f["bn_without_term3_error"] > 0
    return (HELD if shown else NOT), (
        "gradcheck %s (max error %.3g); dropping term 2 or 3 of BN's dx errs by %.3g, %.3g"
        % ("passed" if f["gradcheck_ok"] else "FAILED", f["gradcheck_max_abs_error"],
           f["bn_without_term2_error"], f["bn_without_term3_error"]))


def checkpoint_bn(out):
    with open(os.path.join(out, "ch310_checkpoint_bn.txt"), errors="replace") as fh:
        text = fh.read()
    tracked = {m.group(1): int(m.group(2)) for m in
               re.finditer(r"^\s+(plain|checkpointed|fixed)\s+\d+\s+(\d+)\s", text, re.M)}
    f = _facts(out, "ch310_checkpoint_bn")
    ev = ("num_batches_tracked after %d steps: %s; memory after forward %s lower"
          % (f["steps"], ", ".join("%s %d" % kv for kv in tracked.items()),
             _pct(f["memory_saved_after_forward"])))
    shown = tracked.get("checkpointed", 0) > tracked.get("plain", 0) == tracked.get("fixed", -1)
    return (HELD if shown else NOT), ev


RULES = {
    "ch310_lr_sweep": lr_sweep, "ch310_convergence": convergence, "ch310_init_scale": init_scale,
    "ch310_regularisation": regularisation, "ch310_placement": placement,
    "ch310_small_batch": small_batch, "ch310_finetune": finetune,
    "ch310_covariate_shift": covariate_shift,
    "ch310_train_vs_eval": train_vs_eval, "ch310_shifted_stats": shifted_stats,
    "ch310_manual_batchnorm": manual_batchnorm, "ch310_variance_convention": variance_convention,
    "ch322_layernorm_vs_batchnorm": layernorm_vs_batchnorm, "ch306_tape_backprop": tape_backprop,
    "ch310_checkpoint_bn": checkpoint_bn,
}


def verdict(out, program):
    """(verdict, evidence) for one program; NONE with the reason when it has no rule or its
    files are missing or unreadable."""
    rule = RULES.get(program)
    if rule is None:
        return NONE, "a demonstration: no pass/fail fact to judge"
    try:
        return rule(out)
    except (OSError, KeyError, ValueError, ZeroDivisionError) as e:
        return NONE, "cannot judge from the files in this directory (%s: %s)" % (
            type(e).__name__, e)
