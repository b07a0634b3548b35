// The student's kernels, declared with exactly the reference kernels' types: a declaration by
// decltype cannot drift from the reference signature (scripts/exercise.sh also static_asserts
// each exercise file's own definition against it).
#pragma once

#include "../../src/core/tape_backward.hpp"
#include "../../src/ops/kernels/batch_norm.hpp"
#include "../../src/ops/kernels/conv2d.hpp"
#include "../../src/ops/kernels/cross_entropy.hpp"
#include "../../src/ops/kernels/normalize_sets.hpp"
#include "../../src/ops/kernels/pool.hpp"
#include "../../src/ops/kernels/relu.hpp"
#include "../../src/optim/sgd_step.hpp"

namespace tg::exercises {
decltype(kernels::reference::batch_norm_forward) batch_norm_forward;
decltype(kernels::reference::batch_norm_update_running) batch_norm_update_running;
decltype(kernels::reference::batch_norm_backward) batch_norm_backward;
decltype(kernels::reference::relu_backward) relu_backward;
decltype(kernels::reference::max_pool2d_backward) max_pool2d_backward;
decltype(kernels::reference::cross_entropy_backward) cross_entropy_backward;
decltype(kernels::reference::normalize_sets_forward) normalize_sets_forward;
decltype(kernels::reference::normalize_sets_backward) normalize_sets_backward;
decltype(kernels::reference::conv2d_backward) conv2d_backward;
decltype(kernels::reference::sgd_step) sgd_step;
decltype(kernels::reference::tape_backward) tape_backward;
}  // namespace tg::exercises
