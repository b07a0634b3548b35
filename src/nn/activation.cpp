#include "tapegrad/nn/activation.hpp"

#include <sstream>
#include <stdexcept>
#include <utility>

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

}  // namespace tg::nn
