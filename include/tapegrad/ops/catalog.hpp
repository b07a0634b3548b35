// tapegrad/ops/catalog.hpp — every op of the library, listed once with a small example call.
//
// The tests walk this list: every op records a named backward struct (tests/test_tape.cpp),
// every op gives zero gradients of the right shapes on an empty batch
// (tests/test_reliability_ops.cpp), and tests/test_catalog.cpp checks that every op with a
// reference and a fast kernel gives the same numbers with both, that every op's gradients pass
// a float64 gradcheck, that an example naming a PyTorch case gives PyTorch's numbers, and that
// an example's bad call throws the message it names. A new
// op joins every such test by being added to op_catalog() (src/ops/catalog.cpp).
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
    /// "<group>/<case>": PyTorch's numbers for this call in tests/reference/<group>.txt (inputs
    /// in0, in1, ... of the shapes above, upstream gradient dy, out, and din0, din1, ...; the
    /// family's generator writes them with catalog_case), or null.
    const char* pytorch_case;
};

/// Every op's examples, in the order of include/tapegrad/tapegrad.hpp's op headers.
const std::vector<OpExample>& op_catalog();

}  // namespace tg
