#include "tapegrad/nn/sequential.hpp"

namespace tg::nn {

Tensor Sequential::forward(const Tensor& input) {
    Tensor x = input;
    for (const auto& [name, layer] : children())
        x = (*layer)(x);
    return x;
}

Module& Sequential::operator[](std::size_t i) const {
    if (i >= size()) {
        throw std::out_of_range("Sequential: index " + std::to_string(i) + " out of range for " +
                                std::to_string(size()) + " layers");
    }
    return *children()[i].second;
}

}  // namespace tg::nn
