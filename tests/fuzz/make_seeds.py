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


# --- fuzz_state_names: [count - 1], then per tensor [name length] name [rank] sizes values
# (8 bytes each), then the file's own name (every byte but '/' and NUL).
def names_input(tensors, file):
    out = bytes([len(tensors) - 1])
    for name, shape in tensors:
        n = 1
        for d in shape:
            n *= d
        out += bytes([len(name)]) + name + bytes([len(shape)]) + bytes(shape)
        out += b"".join(struct.pack("<d", 0.5 * i - 1) for i in range(n))
    return out + file


write("seeds", "fuzz_state_names", "plain", names_input([(b"0.weight", [2, 3]), (b"0.bias", [3])], b"net.tgs"))
write("seeds", "fuzz_state_names", "escapes", names_input([(b"a\\b", [1]), (b"\x00\x1b[31m", [0, 2])], b"x y.tgs"))
# Issue 24: names with backslashes, control bytes, NUL and non-ASCII were never round-tripped.
write("regressions", "fuzz_state_names", "odd-tensor-names",
      names_input([(b"back\\slash\\\\", [2]), (b"\x01\x7f\x00nul", []), (b"caf\xc3\xa9 \xce\xb3", [1, 1]),
                   (b"", [3])], b"-dash\nnew line.tmp-a1B2c3"))
# A 255-byte file name: its temporary name "<name>.tmp-XXXXXX" was 266 bytes (ENAMETOOLONG).
write("regressions", "fuzz_state_names", "file-name-255-bytes",
      names_input([(b"w", [2])], b"n" * 251 + b".tgs"))


# --- fuzz_csv: [columns - 1] [rows | 0x80 for a longer last column], then per column
# [name length] name and its values (8 bytes each).
def csv_input(columns, rows, uneven=False):
    out = bytes([len(columns) - 1, rows | (0x80 if uneven else 0)])
    for i, (name, values) in enumerate(columns):
        out += bytes([len(name)]) + name + b"".join(struct.pack("<d", v) for v in values)
    return out


write("seeds", "fuzz_csv", "two-columns", csv_input([(b"lr", [0.1, 1e-05, 3.0]), (b"loss", [2.3, 0.5, 1e300])], 3))
write("seeds", "fuzz_csv", "quoted-names", csv_input([(b"a,b", [1.0]), (b'say "hi"', [2.0]), (b"line\nbreak\r", [-0.0])], 1))
write("regressions", "fuzz_csv", "non-finite-values",
      csv_input([(b"x", [float("nan"), float("inf"), -float("inf"), 5e-324, -0.0, 1.7976931348623157e308])], 6))
write("regressions", "fuzz_csv", "uneven-columns", csv_input([(b"a", [1.0]), (b"b", [1.0, 2.0])], 1, uneven=True))


# --- fuzz_shapes: [op], then sizes: a byte below 0xc0 is (byte % 5), 0xc0 + i picks the i-th
# size near a boundary (the table in fuzz_shapes.cpp: 0xc1 = 2^31, 0xc0 = 2^31 - 1,
# 0xc3 = 2^32, 0xc4 = 2^33, 0xc7 = 2^40, 0xcc = 2^63 + 3), 0xff 8 raw bytes. A shape is
# [rank] then its sizes.
OPS = {"zeros": 0, "reshape": 1, "add": 2, "matmul": 3, "sum": 4, "transpose": 5, "conv2d": 6,
       "max_pool2d": 8, "linear": 9, "loader": 11}
write("seeds", "fuzz_shapes", "zeros", bytes([OPS["zeros"], 2, 2, 3]))
write("seeds", "fuzz_shapes", "reshape", bytes([OPS["reshape"], 2, 2, 3, 1, 1]))
write("seeds", "fuzz_shapes", "add", bytes([OPS["add"], 2, 2, 1, 1, 3]))
write("seeds", "fuzz_shapes", "matmul", bytes([OPS["matmul"], 2, 2, 3, 2, 3, 4]))
write("seeds", "fuzz_shapes", "sum", bytes([OPS["sum"], 3, 2, 3, 4, 5, 1]))
write("seeds", "fuzz_shapes", "transpose", bytes([OPS["transpose"], 3, 2, 3, 4, 4, 6]))
write("seeds", "fuzz_shapes", "conv2d", bytes([OPS["conv2d"], 1, 2, 4, 4, 3, 3, 3, 1, 1]))
write("seeds", "fuzz_shapes", "max_pool2d", bytes([OPS["max_pool2d"], 1, 2, 4, 4, 2, 0, 0]))
write("seeds", "fuzz_shapes", "linear", bytes([OPS["linear"], 3, 2, 4]))
write("seeds", "fuzz_shapes", "loader", bytes([OPS["loader"], 3, 3, 2, 1]))
# Issue 24's cases: Tensor::zeros({2^33, 2^31}), reshape([2, 3] -> [2, 2^63 + 3]), conv2d of
# [0, 1, 1, 1] with padding 2^31 - 1, Linear(2^40, 2^40), images of 2^32 x 2^32 pixels.
write("regressions", "fuzz_shapes", "zeros-2^33-by-2^31", bytes([OPS["zeros"], 2, 0xc4, 0xc1]))
write("regressions", "fuzz_shapes", "reshape-2^63+3", bytes([OPS["reshape"], 2, 2, 3, 2, 2, 0xcc]))
write("regressions", "fuzz_shapes", "conv2d-padding-2^31-1", bytes([OPS["conv2d"], 0, 1, 1, 1, 1, 1, 1, 1, 0xc0]))
write("regressions", "fuzz_shapes", "linear-2^40", bytes([OPS["linear"], 0xc7, 0xc7, 0]))
write("regressions", "fuzz_shapes", "loader-2^32-by-2^32", bytes([OPS["loader"], 0xc3, 0xc3, 1, 0]))
# Found by fuzz_csv: a NUL in a column name cut write_csv's unequal-lengths message short.
write("regressions", "fuzz_csv", "nul-in-name-message", csv_input([(b"a\0b\x1b[31m", [1.0]), (b"b", [1.0, 2.0])], 1, uneven=True))
# Found by fuzz_shapes: Linear(0, 0) on an empty batch of max_numel / 3 + 1 rows looped over
# every (empty) row of its output (a timeout): [op 10 = Linear, in 0, out 0, batch 0xfc].
write("regressions", "fuzz_shapes", "linear-out-0-huge-batch", bytes([10, 0, 0, 0xfc]))
# Found by fuzz_shapes: conv2d with stride 2^63 - 1 overflowed a signed ceil-division in im2col
# (UBSan): x [3, 4, 4, 4], weight [4, 4, 4, 2], stride 0xdf (2^63 - 1), padding 2.
write("regressions", "fuzz_shapes", "conv2d-stride-2^63-1", bytes([6, 3, 4, 4, 4, 4, 4, 2, 0xdf, 2]))
# Found by fuzz_shapes: a stride of 2^64 - 1 became -1 as std::ptrdiff_t in im2col (UBSan):
# x [3, 1, 2, 2], weight [2, 1, 2, 2], stride 0xf7 (SIZE_MAX), padding 1.
write("regressions", "fuzz_shapes", "conv2d-stride-size-max", bytes([6, 3, 1, 2, 2, 2, 2, 2, 0xf7, 1]))
# Found by fuzz_shapes: conv2d whose output has no elements still walked every image of a batch
# of ~2^57 (a timeout): the input as found (batch from 8 raw bytes after 0xff).
write("regressions", "fuzz_shapes", "conv2d-empty-output-huge-batch",
      bytes.fromhex("06ff0b00ffffffffff010100000001808002"))
# Found by fuzz_shapes: with stride and padding 2^61 + 1, im2col's source pointer passed the
# array in a partial sum (UBSan pointer overflow), the final address being inside it.
write("regressions", "fuzz_shapes", "conv2d-stride-pad-2^61", bytes.fromhex("4e444444bb3d63bbfafafabb02"))
# Found by fuzz_shapes: padding 2^63 - 1 on a 1x1 input (stride 2^63 - 1, so the output is
# 3x3) fitted a size_t but overflowed im2col's signed sum in + (pad - p); conv2d now bounds the
# padded size by std::ptrdiff_t.
write("regressions", "fuzz_shapes", "conv2d-padding-2^63-1", bytes([6, 1, 1, 1, 1, 1, 1, 1, 0xca, 0xca]))
# Backward (op 7: conv2d forward and backward with each kernel set; op 10: nn::Linear forward
# and backward). Seeds: the conv2d and linear seeds above, with backward.
write("seeds", "fuzz_shapes", "conv2d-backward", bytes([7, 1, 2, 4, 4, 3, 3, 3, 1, 1]))
write("seeds", "fuzz_shapes", "linear-backward", bytes([10, 3, 2, 4]))
# conv2d's backward on a batch of 0 images of 2^40 x 1 pixels (kernel 1x1): the reference
# kernel sized its im2col buffers for them (4 TiB: out of memory) before conv2d's backward
# checked for an empty output once, for both kernel sets: x [0, 1, 2^40, 1], weight
# [1, 1, 1, 1], stride 1, padding 0.
write("regressions", "fuzz_shapes", "conv2d-backward-0-images-2^40-positions",
      bytes([7, 0, 1, 0xc7, 1, 1, 1, 1, 1, 0]))
# conv2d-empty-output-huge-batch (~2^57 images, no output channel) again with backward, and
# Linear(2^40, 0) on an empty batch (linear-out-0-huge-batch, op 10, replays its backward too).
write("regressions", "fuzz_shapes", "conv2d-backward-empty-output-huge-batch",
      bytes.fromhex("07ff0b00ffffffffff010100000001808002"))
write("regressions", "fuzz_shapes", "linear-backward-2^40-in-0-out", bytes([10, 0xc7, 0, 0]))
