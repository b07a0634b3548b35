#include "tapegrad/nn/dropout.hpp"

#include <sstream>
#include <stdexcept>

#include "tapegrad/ops/dropout.hpp"

namespace tg::nn {

Dropout::Dropout(double probability, DropoutOptions options)
    : p(probability), generator(options.seed ? *options.seed : default_generator().next()) {
    if (!(p >= 0 && p <= 1)) {
        throw std::invalid_argument(
            "Dropout: dropout probability has to be between 0 and 1, but got " + std::to_string(p));
    }
}

Tensor Dropout::forward(const Tensor& x) {
    return dropout(x, p, is_training(), generator);
}

std::string Dropout::extra_repr() const {
    std::ostringstream s;
    s << "p=" << p;  // PyTorch adds ", inplace=False": there is no in-place variant here
    return s.str();
}

}  // namespace tg::nn
