#!/usr/bin/python3
"""The chapter page's verdict rules (scripts/chapter_verdicts.py) give, on the numbers of the
full runs that docs/ch310_experiments.md reports (its tables' means, written here as the CSV
files the programs write), the verdicts that page argues for: lr_sweep held in part (commit
52b56ab: in the MLPs, not in the chapter CNN, where one seed of three failed at lr 0.3 with BN;
held in commit ac52a22's run, where none did), convergence held
(in the run of record; held in part, in steps not in seconds, on the older run's machine), regularisation held in part, placement did not hold (commit
52b56ab's --full run: level within the seeds' spread, which the rule's noise margin counts as
level), finetune did not hold, small_batch did not hold in the chapter's CNN but held in part with its second part
(BatchNorm1d in an MLP broke down at B = 2), covariate_shift (Santurkar et al.'s findings)
held; and each half of the covariate_shift rule alone gives "held in part". Plus: a missing
file gives "no verdict" naming it, not a crash.

    check_chapter_verdicts.py
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import chapter_verdicts as cv  # noqa: E402

FAILURES = []


def write(out, name, header, rows):
    with open(os.path.join(out, name), "w") as f:
        f.write(",".join(header) + "\n")
        for r in rows:
            f.write(",".join(str(v) for v in r) + "\n")


def sweep(out, stem, table):
    """table: lr -> (variant 0's mean accuracy %, failed of 3, variant 1's, failed of 3)."""
    rows = []
    for lr, (a0, f0, a1, f1) in table.items():
        rows += [(0, lr, a0 / 100, f0, 3), (1, lr, a1 / 100, f1, 3)]
    write(out, stem + "_summary.csv", ["variant", "lr", "test_acc_mean", "failed_runs", "runs"], rows)


def expect(out, program, want):
    got, evidence = cv.verdict(out, program)
    ok = got == want
    print(("  ok   " if ok else "  FAIL ") + "%s: %s (expected %s): %s" % (program, got, want, evidence))
    if not ok:
        FAILURES.append(program)


with tempfile.TemporaryDirectory() as out:
    # Commit 52b56ab's chapter CNN: with BN one seed of three failed at lr 0.3, so BN's highest
    # rate with no failed seed is 0.1, as without: on the CNN alone the claim did not hold.
    sweep(out, "ch310_lr_sweep", {0.01: (91.90, 0, 87.62, 0), 0.03: (92.97, 0, 92.17, 0),
                                  0.1: (93.77, 0, 87.35, 0), 0.3: (45.13, 1, 10.88, 3),
                                  1: (9.48, 3, 9.45, 3)})
    expect(out, "ch310_lr_sweep", cv.NOT)
    # The run of commit ac52a22 (no seed failed at 0.3 with BN): held.
    sweep(out, "ch310_lr_sweep", {0.003: (84.32, 0, 57.92, 0), 0.01: (92.00, 0, 87.58, 0),
                                  0.03: (93.10, 0, 92.47, 0), 0.1: (93.48, 0, 83.57, 0),
                                  0.3: (66.17, 0, 10.88, 3), 1: (10.35, 3, 9.45, 3),
                                  3: (10.15, 3, 10.43, 3)})
    expect(out, "ch310_lr_sweep", cv.HELD)
    sweep(out, "ch310_placement", {0.01: (91.90, 0, 94.25, 0), 0.03: (92.97, 0, 95.48, 0),
                                   0.1: (93.77, 0, 94.38, 0), 0.3: (45.13, 1, 10.00, 3),
                                   1: (9.48, 3, 9.48, 3)})
    expect(out, "ch310_placement", cv.NOT)
    # The second part: by depth after the last epoch, Conv-ReLU-BN ahead at every depth: still
    # did not hold; Conv-BN-ReLU ahead at one depth by 2 points, sds 0.3: held in part; ahead
    # there by 0.8 points (more than the sds, less than the 1-point floor): level, did not hold.
    def placement_depth(lead6, sd=0.003):
        rows = []
        for d in (2, 4, 6):
            for lr in (0.03, 0.1):
                for e in (1, 3):
                    a1 = 0.95 + 0.001 * e
                    a0 = a1 - 0.01 + (lead6 + 0.01 if d == 6 and lr == 0.1 and e == 3 else 0)
                    rows += [(d, 0, lr, e, a0, sd, 3), (d, 1, lr, e, a1, sd, 3)]
        write(out, "ch310_placement_depth_summary.csv",
              ["depth", "variant", "lr", "epoch", "test_acc_mean", "test_acc_sd", "runs"], rows)
    placement_depth(-0.01)
    expect(out, "ch310_placement", cv.NOT)
    placement_depth(0.02)
    expect(out, "ch310_placement", cv.PART)
    placement_depth(0.008, sd=0.001)
    expect(out, "ch310_placement", cv.NOT)
    # The same 2-point lead inside the seeds' spread (sds 1.5 points): level, did not hold.
    placement_depth(0.02, sd=0.015)
    expect(out, "ch310_placement", cv.NOT)
    # The --full run of commit 52b56ab's code (depth, lr: after 4 epochs Conv-BN-ReLU,
    # Conv-ReLU-BN, mean and sd over 3 seeds): the chapter's placement ahead at 2 and 6 layers
    # by at most 0.32 points, within the seeds' spread everywhere: did not hold (a rule without
    # the noise margin said "held in part", counting 96.87 against 96.87% as ahead).
    full = {(2, 0.03): ((0.9627, 0.0064), (0.9687, 0.0068)),
            (2, 0.1): ((0.9687, 0.0046), (0.9598, 0.0021)),
            (4, 0.03): ((0.9657, 0.0038), (0.9702, 0.0033)),
            (4, 0.1): ((0.9617, 0.0028), (0.9642, 0.0046)),
            (6, 0.03): ((0.9675, 0.0022), (0.9643, 0.0074)),
            (6, 0.1): ((0.9587, 0.0103), (0.9663, 0.0064)),
            (8, 0.03): ((0.9513, 0.0159), (0.9607, 0.0014)),
            (8, 0.1): ((0.9603, 0.0042), (0.9588, 0.0031))}
    write(out, "ch310_placement_depth_summary.csv",
          ["depth", "variant", "lr", "epoch", "test_acc_mean", "test_acc_sd", "runs"],
          [(d, v, lr, 4) + accs[v] + (3,) for (d, lr), accs in full.items() for v in (0, 1)])
    expect(out, "ch310_placement", cv.NOT)
    # The run of record (commit 52b56ab, idle machine): 208 steps of 6.08 ms with BN, 267 of
    # 5.22 ms without (3 seeds each).
    write(out, "ch310_convergence_summary.csv", ["variant", "seed", "steps_to_target"],
          [(0, s, 208) for s in range(3)] + [(1, s, 267) for s in range(3)])
    write(out, "ch310_convergence_timing.csv", ["variant", "seed", "seconds_per_step"],
          [(0, s, 0.00608) for s in range(3)] + [(1, s, 0.00522) for s in range(3)])
    expect(out, "ch310_convergence", cv.HELD)
    # The older run's machine: 150 steps in 1.0 s with BN, 267 steps in 0.9 s without.
    write(out, "ch310_convergence_summary.csv", ["variant", "seed", "steps_to_target"],
          [(0, s, 150) for s in range(3)] + [(1, s, 267) for s in range(3)])
    write(out, "ch310_convergence_timing.csv", ["variant", "seed", "seconds_per_step"],
          [(0, s, 1.0 / 150) for s in range(3)] + [(1, s, 0.9 / 267) for s in range(3)])
    expect(out, "ch310_convergence", cv.PART)
    write(out, "ch310_regularisation.csv", ["bn", "dropout", "gap", "test_acc"],
          [(0, 0, 0.0718, 0.9282), (1, 0, 0.0645, 0.9355), (0, 0.5, 0.0627, 0.9337),
           (1, 0.5, 0.0563, 0.9430)])
    expect(out, "ch310_regularisation", cv.PART)
    # With sizes: BN narrows the gap at every size, Dropout still helps at each: held in part;
    # neither half anywhere: did not hold.
    def regularisation(bn_gap_less, both_better):
        rows = []
        for n in (250, 1000, 8000):
            g, a = 0.1 * 1000 / n, 0.9
            rows += [(n, 0, 0, g, a), (n, 1, 0, g - (0.01 if bn_gap_less else -0.01), a),
                     (n, 0, 0.5, g, a), (n, 1, 0.5, g, a + (0.01 if both_better else -0.01))]
        write(out, "ch310_regularisation.csv", ["train_size", "bn", "dropout", "gap", "test_acc"],
              rows)
    regularisation(True, True)
    expect(out, "ch310_regularisation", cv.PART)
    regularisation(False, True)
    expect(out, "ch310_regularisation", cv.NOT)
    regularisation(True, False)
    expect(out, "ch310_regularisation", cv.HELD)
    # Per seed (0, 1) at B = 2: BN 86.0 and 92.3% is 2.5 points below GN(C)'s mean, but within
    # the seeds' spread: level.
    write(out, "ch310_small_batch.csv", ["norm", "batch", "seed", "test_acc"],
          [(n, 2, k, a) for n, pair in enumerate([(0.86, 0.923), (0.901, 0.916), (0.9155, 0.9175),
                                                  (0.894, 0.9195), (0.8925, 0.871)])
           for k, a in enumerate(pair)])
    expect(out, "ch310_small_batch", cv.NOT)
    # The second part: the 2x2-map CNN (8 values per statistic) level or ahead, the MLP's
    # BatchNorm1d (2 values) 42 points below LayerNorm: held in part.
    write(out, "ch310_small_batch_regimes.csv", ["net", "norm", "batch", "per_stat", "seed",
                                                 "test_acc"],
          [(1, 0, 2, 8, 0, 0.8965), (1, 0, 2, 8, 1, 0.918), (1, 3, 2, 8, 0, 0.7955),
           (1, 3, 2, 8, 1, 0.8655), (2, 0, 2, 2, 0, 0.427), (2, 0, 2, 2, 1, 0.4535),
           (2, 3, 2, 2, 0, 0.865), (2, 3, 2, 2, 1, 0.8665)])
    expect(out, "ch310_small_batch", cv.PART)
    # lr_sweep's second part: the largest rate with no failed seed, with BN above without at
    # every depth (1 against 0.1, 0.1, 0.03): still held.
    write(out, "ch310_lr_sweep_depth_summary.csv", ["depth", "variant", "lr", "failed_runs"],
          [(d, 0, lr, 0) for d in (4, 8, 16) for lr in (0.01, 0.03, 0.1, 0.3, 1)] +
          [(d, 1, lr, f) for d, fails in ((4, (0, 0, 0, 1, 3)), (8, (0, 0, 0, 3, 3)),
                                          (16, (0, 0, 1, 3, 3)))
           for lr, f in zip((0.01, 0.03, 0.1, 0.3, 1), fails)])
    expect(out, "ch310_lr_sweep", cv.HELD)
    # With commit 52b56ab's chapter CNN (BN's safe range no wider than without): held in part,
    # in the MLPs only.
    sweep(out, "ch310_lr_sweep", {0.01: (91.90, 0, 87.62, 0), 0.03: (92.97, 0, 92.17, 0),
                                  0.1: (93.77, 0, 87.35, 0), 0.3: (45.13, 1, 10.88, 3),
                                  1: (9.48, 3, 9.45, 3)})
    expect(out, "ch310_lr_sweep", cv.PART)
    write(out, "ch310_finetune.csv", ["mode", "acc_new"], [(0, 0.3846), (1, 0.3966), (2, 0.8226)])
    expect(out, "ch310_finetune", cv.NOT)
    # The batch axis (the --full run of commit 52b56ab's code): fully trained BN ahead at batches
    # 2, 4, 8, 20 and 50: did not hold; frozen BN ahead at batch 4 only: held in part.
    def finetune(frozen_at_4):
        table = {2: (0.7190, 0.7364, 0.9224), 4: (frozen_at_4, 0.8766, 0.9186),
                 8: (0.7504, 0.8161, 0.9080), 20: (0.3450, 0.4578, 0.8174),
                 50: (0.2195, 0.2195, 0.5275)}
        write(out, "ch310_finetune.csv", ["batch", "mode", "acc_new"],
              [(b, m, a) for b, accs in table.items() for m, a in enumerate(accs)])
    finetune(0.8568)
    expect(out, "ch310_finetune", cv.NOT)
    finetune(0.93)
    expect(out, "ch310_finetune", cv.PART)
    # The full run's summary (docs/ch310_experiments.md): training accuracy over the steps,
    # the shift the next layer sees, and along the path the loss range, gradient change and
    # beta-smoothness (BN, noisy BN, no BN).
    def covariate(over, shift, landscape):
        header = ["variant", "train_acc_over_steps_mean", "mean_shift_mean", "loss_range_mean",
                  "grad_diff_mean", "beta_mean"]
        write(out, "ch310_covariate_shift_summary.csv", header,
              [(v, over[v], shift[v]) + landscape[v] for v in range(3)])
    nan = float("nan")
    full_landscape = [(0.291, 2.438, 10.496), (nan, nan, nan), (0.845, 5.696, 14.375)]
    covariate([0.9224, 0.9064, 0.8718], [0.001, 0.337, 0.036], full_landscape)
    expect(out, "ch310_covariate_shift", cv.HELD)
    # Noise that costs more than half of BN's lead over no BN: only the smoothness half holds.
    covariate([0.9224, 0.8850, 0.8718], [0.001, 0.337, 0.036], full_landscape)
    expect(out, "ch310_covariate_shift", cv.PART)
    # BN's path rougher than no BN's in one of the three measures: only the noise half holds.
    covariate([0.9224, 0.9064, 0.8718], [0.001, 0.337, 0.036],
              [(0.291, 2.438, 15.0), (nan, nan, nan), (0.845, 5.696, 14.38)])
    expect(out, "ch310_covariate_shift", cv.PART)
    got, evidence = cv.verdict(out, "ch310_init_scale")
    ok = got == cv.NONE and "ch310_init_scale.csv" in evidence
    print(("  ok   " if ok else "  FAIL ") + "a missing file: %s: %s" % (got, evidence))
    if not ok:
        FAILURES.append("missing file")

if FAILURES:
    sys.exit("check_chapter_verdicts: %d failed: %s" % (len(FAILURES), ", ".join(FAILURES)))
print("check_chapter_verdicts: all verdicts as docs/ch310_experiments.md argues")
