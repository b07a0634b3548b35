#!/usr/bin/python3
"""Writes tests/reference/train_cnn_eval.json: what PyTorch's eval mode scores on the two
checkpoints ch310_train_cnn --quick writes at seed 0, with the fast kernels and with the
reference kernels, and each checkpoint's SHA-256 (tests/check_examples.py compares the
program's own test loss and accuracy against these numbers when its run wrote the same
checkpoint bytes, so the test itself needs no PyTorch). Needs PyTorch (the torch group):

    bash scripts/setup.sh torch
    /usr/bin/python3 tests/reference/gen_train_cnn_eval.py build/ci/examples/ch310_train_cnn

Regenerate after a change that alters the trained weights (the check then says the checkpoint
differs), on a machine whose release build is the one the tests use (-march=native)."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import check_examples  # noqa: E402  (tests/check_examples.py: the parser and the PyTorch model)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    program = os.path.abspath(sys.argv[1])
    result = {"_about": "PyTorch eval-mode test loss and right answers (of 500) on the "
                        "checkpoints of ch310_train_cnn --quick (seed 0); written by "
                        "tests/reference/gen_train_cnn_eval.py"}
    for kernels in ("fast", "reference"):
        out = tempfile.mkdtemp(prefix="gen_train_cnn_")
        try:
            subprocess.run([program, "--quick", "--out", out, "--kernels", kernels], check=True,
                           stdout=subprocess.DEVNULL)
            scores = check_examples.pytorch_eval(out)
            result[kernels] = {}
            for run_name, (loss, right) in scores.items():
                with open(os.path.join(out, "cnn_%s.tgstate" % run_name), "rb") as f:
                    sha = hashlib.sha256(f.read()).hexdigest()
                result[kernels][run_name] = {"checkpoint_sha256": sha,
                                             "pytorch_test_loss": float("%.9g" % loss),
                                             "pytorch_test_right": right}
                print(f"{kernels}, {run_name}: PyTorch test loss {loss:.6f}, {right}/500 right")
        finally:
            shutil.rmtree(out, ignore_errors=True)
    path = os.path.join(HERE, "train_cnn_eval.json")
    with open(path + ".tmp", "w") as f:
        json.dump(result, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(path + ".tmp", path)
    print("wrote " + path)


if __name__ == "__main__":
    main()
