#include "tapegrad/nn/pool.hpp"

#include "tapegrad/nn/catalog.hpp"
#include "tapegrad/ops/pool.hpp"

namespace tg::nn {

namespace {
std::string pool_repr(std::size_t kernel, std::size_t stride, std::size_t padding) {
    return "kernel_size=" + std::to_string(kernel) + ", stride=" + std::to_string(stride) +
           ", padding=" + std::to_string(padding);
}
}  // namespace

MaxPool2d::MaxPool2d(std::size_t kernel, Pool2dOptions options)
    : kernel_size(kernel),
      stride(options.stride == 0 ? kernel : options.stride),
      padding(options.padding) {}

Tensor MaxPool2d::forward(const Tensor& x) {
    return max_pool2d(x, kernel_size, stride, padding);
}

std::string MaxPool2d::extra_repr() const {
    // PyTorch adds ", dilation=1, ceil_mode=False": options this library does not have
    return pool_repr(kernel_size, stride, padding);
}

AvgPool2d::AvgPool2d(std::size_t kernel, Pool2dOptions options)
    : kernel_size(kernel),
      stride(options.stride == 0 ? kernel : options.stride),
      padding(options.padding) {}

Tensor AvgPool2d::forward(const Tensor& x) {
    return avg_pool2d(x, kernel_size, stride, padding);
}

std::string AvgPool2d::extra_repr() const {
    return pool_repr(kernel_size, stride, padding);
}

// ---- catalog -------------------------------------------------------------------------------

// This file's layers in tg::nn::layer_catalog() (tapegrad/nn/catalog.hpp): an example puts its
// layer in every test that walks the catalog.
std::vector<LayerExample> catalog::pool_layers() {
    return {
        layer<MaxPool2d>("MaxPool2d(kernel_size=2, stride=2, padding=0)", {1, 2, 6, 6}, {}, 2),
        layer<MaxPool2d>("MaxPool2d(kernel_size=3, stride=1, padding=1)", {1, 2, 6, 6}, {}, 3,
                         Pool2dOptions{.stride = 1, .padding = 1}),
        layer<AvgPool2d>("AvgPool2d(kernel_size=2, stride=2, padding=0)", {1, 2, 6, 6}, {}, 2),
    };
}

}  // namespace tg::nn
