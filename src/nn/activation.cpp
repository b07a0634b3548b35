#include "tapegrad/nn/activation.hpp"

#include <sstream>
#include <stdexcept>
#include <utility>

#include "tapegrad/nn/catalog.hpp"
#include "tapegrad/ops/activation.hpp"
#include "tapegrad/ops/shape.hpp"

namespace tg::nn {

Tensor ReLU::forward(const Tensor& x) {
    return relu(x);
}

Tensor Tanh::forward(const Tensor& x) {
    return tanh(x);
}

Tensor Sigmoid::forward(const Tensor& x) {
    return sigmoid(x);
}

Tensor LeakyReLU::forward(const Tensor& x) {
    return leaky_relu(x, negative_slope);
}

std::string LeakyReLU::extra_repr() const {
    std::ostringstream s;  // the number as Python prints it: 0.01, 0.2
    s << "negative_slope=" << negative_slope;
    return s.str();
}

GELU::GELU(std::string approximation) : approximate(std::move(approximation)) {
    if (approximate != "none" && approximate != "tanh") {
        throw std::invalid_argument("GELU: approximate '" + approximate +
                                    "', expected 'none' or 'tanh' (as torch.nn.GELU)");
    }
}

Tensor GELU::forward(const Tensor& x) {
    return gelu(x, approximate);
}

std::string GELU::extra_repr() const {
    return "approximate='" + approximate + "'";
}

Tensor Flatten::forward(const Tensor& x) {
    return flatten(x, start_dim, end_dim);
}

std::string Flatten::extra_repr() const {
    return "start_dim=" + std::to_string(start_dim) + ", end_dim=" + std::to_string(end_dim);
}

// ---- catalog -------------------------------------------------------------------------------

// This file's layers in tg::nn::layer_catalog() (tapegrad/nn/catalog.hpp): an example puts its
// layer in every test that walks the catalog.
std::vector<LayerExample> catalog::activation_layers() {
    return {
        layer<ReLU>("ReLU()", {2, 3}, {}),
        layer<Tanh>("Tanh()", {2, 3}, {}),
        layer<Sigmoid>("Sigmoid()", {2, 3}, {}),
        layer<LeakyReLU>("LeakyReLU(negative_slope=0.01)", {2, 3}, {}),
        layer<LeakyReLU>("LeakyReLU(negative_slope=0.2)", {2, 3}, {}, 0.2),
        layer<GELU>("GELU(approximate='none')", {2, 3}, {}),
        layer<GELU>("GELU(approximate='tanh')", {2, 3}, {}, std::string("tanh")),
        layer<Flatten>("Flatten(start_dim=1, end_dim=-1)", {2, 3, 4}, {}),
        layer<Flatten>("Flatten(start_dim=0, end_dim=1)", {2, 3, 4}, {}, 0, 1),
    };
}

}  // namespace tg::nn
