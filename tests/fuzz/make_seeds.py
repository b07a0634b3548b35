#!/usr/bin/python3
"""Writes the fuzz targets' seed corpora and regression inputs (tests/fuzz/{seeds,regressions}).

Every input starts with a mode byte (see each target's header comment): for fuzz_idx, odd =
gzip the rest first; for fuzz_state_file and fuzz_model_state, odd = append a valid CRC-32.
The files are committed; run this again only to change them: /usr/bin/python3 make_seeds.py
"""
import gzip
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def write(kind, target, name, data):
    d = os.path.join(HERE, kind, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def idx(dims, data=None):
    n = 1
    for x in dims:
        n *= x
    if data is None:
        data = bytes((7 * i + 3) % 256 for i in range(n))
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", x) for x in dims) + data


def state(entries):
    """The state file without its CRC: entries are (name bytes, shape, values or None)."""
    out = b"TGSTATE\0" + struct.pack("<IQ", 1, len(entries))
    for name, shape, values in entries:
        out += struct.pack("<Q", len(name)) + name + struct.pack("<Q", len(shape))
        out += b"".join(struct.pack("<Q", d) for d in shape)
        if values is None:
            n = 1
            for d in shape:
                n *= d
            values = [0.25 * (i % 7) - 0.5 for i in range(n)]
        out += b"".join(struct.pack("<d", v) for v in values)
    return out


def with_crc(b):
    return b + struct.pack("<I", zlib.crc32(b) & 0xFFFFFFFF)


# --- fuzz_idx: raw and gzip files, and payloads the target gzips (mode 1)
images, labels = idx([2, 3, 3]), idx([4])
write("seeds", "fuzz_idx", "images-raw", b"\0" + images)
write("seeds", "fuzz_idx", "labels-raw", b"\0" + labels)
write("seeds", "fuzz_idx", "images-gzip-file", b"\0" + gzip.compress(images, mtime=0))
write("seeds", "fuzz_idx", "images-gzip-mode", b"\1" + images)
write("seeds", "fuzz_idx", "empty-dataset", b"\1" + idx([0, 28, 28], b""))
# Defect 7's twin in the IDX reader: a 0 size with huge others (strides would overflow).
write("regressions", "fuzz_idx", "zero-dim-huge-dims", b"\0" + bytes([0, 0, 8, 4]) + b"\0" * 4 + b"\xff" * 12)

# --- fuzz_state_file
small = [(b"w", [2, 3], None), (b"b", [3], None), (b"n", [], [4.0])]
write("seeds", "fuzz_state_file", "small-crc-mode", b"\1" + state(small))
write("seeds", "fuzz_state_file", "small-whole-file", b"\0" + with_crc(state(small)))
write("seeds", "fuzz_state_file", "empty-state", b"\1" + state([]))
# Defect 7: [0, 2^40, 2^40] passed the overflow check (undefined behaviour in xtensor).
write("regressions", "fuzz_state_file", "zero-dim-overflow", b"\1" + state([(b"w", [0, 1 << 40, 1 << 40], [])]))
# Defect 8: a NUL (and an escape sequence) in a name cut the message before the offset.
write("regressions", "fuzz_state_file", "nul-in-name", b"\1" + state([(b"a\0b\x1b[31m", [2], None)])[:-8])
write("regressions", "fuzz_state_file", "nul-in-name-crc", b"\1" + state([(b"x\0", [1], None)]) + b"\0")

# --- fuzz_model_state: the state of Conv2d(1, 2, 3), BatchNorm2d(2), ReLU, MaxPool2d(2),
# Flatten, Linear(8, 3), as Sequential names them.
model = [(b"0.weight", [2, 1, 3, 3], None), (b"0.bias", [2], None),
         (b"1.weight", [2], None), (b"1.bias", [2], None),
         (b"1.running_mean", [2], None), (b"1.running_var", [2], [1.0, 2.0]),
         (b"1.num_batches_tracked", [], [3.0]),
         (b"5.weight", [3, 8], None), (b"5.bias", [3], None)]
write("seeds", "fuzz_model_state", "model-crc-mode", b"\1" + state(model))
write("seeds", "fuzz_model_state", "model-whole-file", b"\0" + with_crc(state(model)))
# A [3, 2]-for-[2, 3]-style transposed shape (same count, other shape) must be refused.
bad = list(model)
bad[7] = (b"5.weight", [8, 3], None)
write("regressions", "fuzz_model_state", "transposed-linear-weight", b"\1" + state(bad))
# Negative running_var and NaN: the eval forward must stay memory-safe.
nan = list(model)
nan[5] = (b"1.running_var", [2], [-1.0, float("nan")])
write("regressions", "fuzz_model_state", "negative-nan-running-var", b"\1" + state(nan))
