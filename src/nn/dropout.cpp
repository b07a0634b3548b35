#include "tapegrad/nn/dropout.hpp"

#include <sstream>
#include <stdexcept>

#include "tapegrad/nn/catalog.hpp"
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

// ---- catalog -------------------------------------------------------------------------------

// This file's layers in tg::nn::layer_catalog() (tapegrad/nn/catalog.hpp): an example puts its
// layer in every test that walks the catalog.
std::vector<LayerExample> catalog::dropout_layers() {
    return {
        layer<Dropout>("Dropout(p=0.25)", {2, 3}, {}, 0.25),
    };
}

}  // namespace tg::nn
