// tapegrad/nn/catalog.hpp — every layer of tg::nn with a one-input forward, listed with a small
// example, the way tg::op_catalog() lists the ops (tapegrad/ops/catalog.hpp).
//
// tests/test_nn_layers.cpp walks this list: every layer prints as PyTorch prints it, has
// PyTorch's state_dict names, runs forward and backward on its example input in training and
// in eval, gives PyTorch's output where an example names a PyTorch case, and throws the message
// a bad input names. A layer's examples stand beside it, at the end of its file
// (src/nn/normalization.cpp's normalization_layers(), ...): a new layer in an existing file
// joins every such test by an entry there; a new layer file adds its function below and a line
// in layer_catalog() (src/nn/catalog.cpp).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tapegrad/nn/module.hpp"

namespace tg::nn {

/// One example of a layer.
struct LayerExample {
    /// The layer as PyTorch prints it, "RMSNorm((3,), eps=None, elementwise_affine=True)": what
    /// `print` must write, and the example's name (unique in the catalog).
    const char* repr;
    /// Makes the layer.
    std::function<std::unique_ptr<Module>()> make;
    /// An example input's shape.
    Shape input;
    /// Its state_dict's names, in PyTorch's order.
    std::vector<std::string> state;
    /// "catalog/<case>" of tests/reference/catalog.txt, or null: its in0 is the input, in1,
    /// in2, ... the layer's parameters in order, out the output in training mode.
    const char* pytorch_case = nullptr;
    /// A bad input's shape and the start of the message forward must throw
    /// std::invalid_argument with (null: no bad input).
    Shape bad_input = {};
    const char* bad_message = nullptr;
};

/// Every layer's examples, in the order of include/tapegrad/nn/nn.hpp's layer headers.
const std::vector<LayerExample>& layer_catalog();

/// What a layer file's entries are written with.
namespace catalog {

/// The example `T(args...)`: its PyTorch printout, input shape and state_dict names.
template <class T, class... Args>
LayerExample layer(const char* repr, Shape input, std::vector<std::string> state, Args... args) {
    return {repr, [=] { return std::unique_ptr<Module>(std::make_unique<T>(args...)); },
            std::move(input), std::move(state)};
}

/// The example `e`, checked against PyTorch's numbers: "catalog/<case>" of
/// tests/reference/catalog.txt.
inline LayerExample vs_pytorch(const char* pytorch_case, LayerExample e) {
    e.pytorch_case = pytorch_case;
    return e;
}

/// The example `e`, also called on an input of the shape `bad`, which must throw
/// std::invalid_argument with a message that starts with `message`.
inline LayerExample bad_input(Shape bad, const char* message, LayerExample e) {
    e.bad_input = std::move(bad);
    e.bad_message = message;
    return e;
}

/// Each layer file's examples, in layer_catalog()'s order: <file>_layers() is defined at
/// the end of src/nn/<file>.cpp.
std::vector<LayerExample> activation_layers(), conv_layers(), dropout_layers(), linear_layers(),
    normalization_layers(), pool_layers();

}  // namespace catalog

}  // namespace tg::nn
