// tapegrad/ops/catalog.hpp — every op of the library, listed once with a small example call.
//
// The tests walk this list: every op records a named backward struct (tests/test_tape.cpp),
// every op gives zero gradients of the right shapes on an empty batch
// (tests/test_reliability_ops.cpp), and tests/test_catalog.cpp checks that every op with a
// reference and a fast kernel gives the same numbers with both, that every op's gradients pass
// a float64 gradcheck, that an example naming a PyTorch case gives PyTorch's numbers, and that
// an example's bad call throws the message it names. An op's examples stand beside the op, at
// the end of its file (src/ops/normalization.cpp's normalization_examples(), ...): a new op in
// an existing file joins every such test by an entry there; a new op file adds its function
// below and a line in op_catalog() (src/ops/catalog.cpp).
#pragma once

#include <functional>
#include <vector>

#include "tapegrad/tensor.hpp"

namespace tg {

/// One example call of an op.
struct OpExample {
    /// What the example is: the op's name, and the variant if the op has several entries.
    const char* name;
    /// The named struct (deriving from BackwardClosure) its tape entry holds with the fast
    /// kernels, e.g. "BatchNormBackward".
    const char* backward;
    /// True if the op computes through kernels::in_use (a reference and a fast kernel).
    bool two_kernels;
    /// The example inputs' shapes: each input is a leaf that requires grad.
    std::vector<Shape> inputs;
    /// The same call on an empty batch: its inputs' shapes ({} if the op takes no batch), and
    /// the output's shape.
    std::vector<Shape> empty_inputs;
    Shape empty_output;
    /// The call itself, on inputs of the shapes above.
    std::function<Tensor(const std::vector<Tensor>&)> call;
    /// A bad call: the same call on inputs of these shapes (empty: none), and the start of
    /// the message it must throw std::invalid_argument with (naming the op, the shapes and
    /// what was expected).
    std::vector<Shape> bad_inputs;
    const char* bad_message;
    /// "catalog/<case>": PyTorch's numbers for this call in tests/reference/catalog.txt (inputs
    /// in0, in1, ... of the shapes above, upstream gradient dy, out, and din0, din1, ...;
    /// tests/reference/gen_catalog.py writes them from the case's line there), or null.
    const char* pytorch_case;
};

/// Every op's examples, in the order of include/tapegrad/tapegrad.hpp's op headers.
const std::vector<OpExample>& op_catalog();

/// What an op file's entries are written with.
namespace catalog {

using In = std::vector<Tensor>;

/// The example shapes most entries share: rows [N, D] = [2, 3] and an empty batch of them,
/// images [N, C, H, W] = [2, 2, 6, 6] and an empty batch of 5×5 ones.
inline const Shape rows{2, 3}, rows0{0, 3}, img{2, 2, 6, 6}, img0{0, 2, 5, 5};

/// One catalog entry (a function, not a braced list, so that each entry stays a few lines).
OpExample op(const char* name, const char* backward, bool two_kernels, std::vector<Shape> inputs,
             std::vector<Shape> empty_inputs, Shape empty_output,
             std::function<Tensor(const In&)> call);

/// The example `e`, also called on inputs of the shapes `bad` and expected to throw
/// std::invalid_argument with a message that starts with `message`.
OpExample bad_call(std::vector<Shape> bad, const char* message, OpExample e);

/// The example `e`, checked against PyTorch's numbers for it: "catalog/<case>" of
/// tests/reference/catalog.txt (the case's line there gives PyTorch's formula).
OpExample vs_pytorch(const char* pytorch_case, OpExample e);

/// Each op file's examples, in op_catalog()'s order: <file>_examples() is defined at
/// the end of src/ops/<file>.cpp.
std::vector<OpExample> elementwise_examples(), reduce_examples(), linalg_examples(),
    linear_examples(), shape_examples(), dropout_examples(), activation_examples(), pool_examples(),
    fused_examples(), conv_examples(), loss_examples(), normalization_examples();

}  // namespace catalog

}  // namespace tg
