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


def pytorch_eval(out):
    """Loads both checkpoints in `out` into torch.nn layers laid out as ch310_train_cnn's
    models and scores the quick run's test set (the first 500 test images, normalised with the
    pixel mean and std of the first 2,000 training images, as the program does) in PyTorch's
    eval mode. Returns {"bn": (loss, right), "nobn": (loss, right)}. Needs PyTorch (the torch
    group); tests/check_examples.py reads what this script wrote."""
    import torch  # the torch group: this script only, never a test
    import torch.nn as nn

    data_dir = os.environ.get("TAPEGRAD_DATA") or os.path.join(check_examples.REPO, "data")
    train_pixels, _ = check_examples.read_idx_gz(os.path.join(data_dir, "train-images-idx3-ubyte.gz"), 2000)
    images, _ = check_examples.read_idx_gz(os.path.join(data_dir, "t10k-images-idx3-ubyte.gz"), 500)
    labels, _ = check_examples.read_idx_gz(os.path.join(data_dir, "t10k-labels-idx1-ubyte.gz"), 500)
    # The loader's look-up table: float((p/255 − mean)/std), mean and biased std in double.
    grey = torch.frombuffer(bytearray(train_pixels), dtype=torch.uint8).double() / 255.0
    mean = grey.mean().item()
    std = math.sqrt(((grey - mean) ** 2).mean().item())
    lut = ((torch.arange(256, dtype=torch.float64) / 255.0 - mean) / std).float()
    x = lut[torch.frombuffer(bytearray(images), dtype=torch.uint8).long()].reshape(500, 1, 28, 28)
    y = torch.frombuffer(bytearray(labels), dtype=torch.uint8).long()

    result = {}
    for run_name, with_bn in (("bn", True), ("nobn", False)):
        def bn(c):
            return [nn.BatchNorm2d(c)] if with_bn else []
        model = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), *bn(6), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Conv2d(6, 16, 5), *bn(16), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84),
                              nn.ReLU(), nn.Linear(84, 10))
        state = check_examples.read_state_file(os.path.join(out, "cnn_%s.tgstate" % run_name))
        model.load_state_dict({
            k: (torch.tensor(int(v[0])) if k.endswith("num_batches_tracked") else
                torch.tensor(v, dtype=torch.float32).reshape(shape))
            for k, (shape, v) in state.items()}, strict=True)
        model.eval()
        with torch.no_grad():
            logits = model(x)
            loss = nn.functional.cross_entropy(logits, y).item()
            right = int((logits.argmax(1) == y).sum())
        result[run_name] = (loss, right)
    return result


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
            scores = pytorch_eval(out)
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
