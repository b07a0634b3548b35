// tapegrad/ops/elementwise.hpp — element-wise arithmetic with NumPy broadcasting.
//
// Broadcasting (as NumPy and PyTorch): shapes are aligned at their last axis; two sizes are
// compatible when equal or when one is 1. In backward, the gradient of a broadcast input is
// summed over the axes it was broadcast along (see unbroadcast).
#pragma once

#include "tapegrad/tensor.hpp"

namespace tg {

/// The broadcast shape of `a` and `b`; throws naming `op` and both shapes if incompatible.
Shape broadcast_shape(const char* op, const Shape& a, const Shape& b);

/// Sums `grad` (of the broadcast shape) back down to `shape`: over the leading axes `shape`
/// lacks and over the axes where `shape` has size 1.
Array unbroadcast(const Array& grad, const Shape& shape);

/// c = a + b. dc/da = 1, dc/db = 1.
Tensor add(const Tensor& a, const Tensor& b);
/// c = a * b. dc/da = b, dc/db = a.
Tensor mul(const Tensor& a, const Tensor& b);

}  // namespace tg
