// tapegrad/nn/pool.hpp — 2-D max and average pooling layers (torch.nn.MaxPool2d, AvgPool2d).
#pragma once

#include <cstddef>

#include "tapegrad/nn/module.hpp"

namespace tg::nn {

struct Pool2dOptions {
    std::size_t stride = 0;  // 0: the kernel size (PyTorch's stride=None)
    std::size_t padding = 0;
};

/// y[n, c, i, j] = max of x[n, c] over the k x k window at (i·stride - pad, j·stride - pad).
///
///     tg::nn::MaxPool2d pool(2);   tg::nn::MaxPool2d overlap(3, {.stride = 2, .padding = 1});
class MaxPool2d : public Module {
  public:
    /// A k x k window moved by options.stride (default: k).
    explicit MaxPool2d(std::size_t kernel_size, Pool2dOptions options = {});
    /// y = max_pool2d(x, kernel, stride, padding).
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "MaxPool2d"; }
    std::string extra_repr() const override;

    std::size_t kernel_size, stride, padding;
};

/// y[n, c, i, j] = mean of x[n, c] over the k x k window (padding counted as zeros).
class AvgPool2d : public Module {
  public:
    /// A k x k window moved by options.stride (default: k).
    explicit AvgPool2d(std::size_t kernel_size, Pool2dOptions options = {});
    /// y = avg_pool2d(x, kernel, stride, padding).
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "AvgPool2d"; }
    std::string extra_repr() const override;

    std::size_t kernel_size, stride, padding;
};

}  // namespace tg::nn
