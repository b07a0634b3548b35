// tapegrad/ops/shape.hpp — ops that move elements without changing them.
//
// Every output owns its data (no views): reshape and flatten copy, transpose and permute copy
// into the new axis order. Their backward passes undo the move on the gradient.
#pragma once

#include <vector>

#include "tapegrad/tensor.hpp"

namespace tg {

/// y = x with shape `shape` (same elements in row-major order). dx = g reshaped to x's shape.
Tensor reshape(const Tensor& x, const Shape& shape);
/// y = x with axes start_dim .. end_dim merged into one: [N, C, H, W] -> [N, C*H*W] by default.
/// dx = g reshaped to x's shape.
Tensor flatten(const Tensor& x, int start_dim = 1, int end_dim = -1);
/// y = x with axes dim0 and dim1 swapped: y[.., j, .., i, ..] = x[.., i, .., j, ..].
/// dx = g with the same two axes swapped back.
Tensor transpose(const Tensor& x, int dim0, int dim1);
/// y = x with its axes reordered: y.shape[d] = x.shape[dims[d]].
/// dx = g permuted by the inverse permutation.
Tensor permute(const Tensor& x, const std::vector<std::size_t>& dims);

}  // namespace tg
