#include "tapegrad/nn/sequential.hpp"

#include <typeinfo>

#include "tapegrad/kernels.hpp"
#include "tapegrad/nn/activation.hpp"
#include "tapegrad/nn/normalization.hpp"
#include "tapegrad/nn/pool.hpp"
#include "tapegrad/ops/fused.hpp"

namespace tg::nn {

namespace {

/// True if layers `relu`, `pool` are a ReLU then a 2x2 max-pool with stride 2 and no padding
/// (exactly those classes, not subclasses that may compute something else), and no hook waits
/// for either's output: tg::relu_max_pool2d computes the pair in one pass.
bool is_relu_max_pool2x2(const Module& relu, const Module& pool) {
    if (typeid(relu) != typeid(ReLU) || typeid(pool) != typeid(MaxPool2d)) return false;
    if (relu.has_forward_hooks() || pool.has_forward_hooks()) return false;
    const auto& p = static_cast<const MaxPool2d&>(pool);
    return p.kernel_size == 2 && p.stride == 2 && p.padding == 0;
}

/// True if layers `bn`, `relu`, `pool` are exactly a BatchNorm2d, a ReLU and a 2x2 max-pool
/// with stride 2 and no padding, and no hook waits for the BatchNorm's output:
/// BatchNorm::forward_relu_max_pool2d computes the three in one op.
bool is_batch_norm_relu_max_pool2x2(const Module& bn, const Module& relu, const Module& pool) {
    return typeid(bn) == typeid(BatchNorm2d) && !bn.has_forward_hooks() &&
           is_relu_max_pool2x2(relu, pool);
}

}  // namespace

Tensor Sequential::forward(const Tensor& input) {
    Tensor x = input;
    const auto& layers = children();
    // With the reference kernels every layer runs on its own, as the chapter writes it.
    const bool fuse = kernels_in_use() == Kernels::fast;
    for (std::size_t i = 0; i < layers.size(); ++i) {
        if (fuse && i + 2 < layers.size() &&
            is_batch_norm_relu_max_pool2x2(*layers[i].second, *layers[i + 1].second,
                                           *layers[i + 2].second)) {
            // = max_pool2d(relu(bn(x)), 2): a statistics pass, then one pass each way
            x = static_cast<BatchNorm2d&>(*layers[i].second).forward_relu_max_pool2d(x);
            i += 2;
            continue;
        }
        if (fuse && i + 1 < layers.size() &&
            is_relu_max_pool2x2(*layers[i].second, *layers[i + 1].second)) {
            x = relu_max_pool2d(x);  // = max_pool2d(relu(x), 2) in one pass each way
            ++i;
            continue;
        }
        x = (*layers[i].second)(x);
    }
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
