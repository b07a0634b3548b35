// tapegrad/ops/reduce.hpp — sums and means over all or some axes.
//
// Negative dims count from the end, as in PyTorch. An empty dims list reduces every axis
// (PyTorch's convention for sum(x, dim=[])).
#pragma once

#include <vector>

#include "tapegrad/tensor.hpp"

namespace tg {

/// s = sum_i x_i over every element: a 0-dimensional tensor. ds/dx_i = 1.
Tensor sum(const Tensor& x);
/// s = sum of x over the axes `dims` (dropped, or kept with size 1 when keepdim).
/// ds/dx = 1, i.e. the gradient is g broadcast back over the reduced axes.
Tensor sum(const Tensor& x, const std::vector<int>& dims, bool keepdim = false);
/// m = (1/n) sum_i x_i over every element: a 0-dimensional tensor. dm/dx_i = 1/n.
Tensor mean(const Tensor& x);
/// m = the mean of x over the axes `dims`, n = the product of their sizes. dm/dx = 1/n.
Tensor mean(const Tensor& x, const std::vector<int>& dims, bool keepdim = false);

namespace detail {

/// The sum of `x` over the axes flagged in `reduced` (one flag per axis of x), in x's rank
/// with size 1 on the reduced axes (keepdim form). Accumulates in double.
Array sum_axes(const Array& x, const std::vector<bool>& reduced);

/// Normalises `dim` (negative counts from the end) for a tensor of `ndim` axes; throws
/// std::invalid_argument "<op>: dim 5 out of range for shape [2, 3] (expected in [-2, 1])".
std::size_t normalize_dim(const char* op, int dim, const Shape& shape);

}  // namespace detail

}  // namespace tg
