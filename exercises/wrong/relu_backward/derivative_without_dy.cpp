// A seeded wrong solution (the grader must diagnose it as `derivative_without_dy`): writes relu'(x)
// without dy. Exercise relu_backward: the gradient of y = max(x, 0). Check it:  bash
// scripts/exercise.sh check relu_backward           (docs/exercises.md) Solution:
// src/ops/kernels/reference/relu.cpp (read it after you pass, not before).
//
// y = relu(x) = max(x, 0) over n values (any shape, flat). From the forward's output y and
// dy = ∂L/∂y:
//
//     dx_i = dy_i · relu'(x_i) = dy_i if y_i > 0, else 0
//
// relu'(0) = 0, as in PyTorch. Written PyTorch's way round (0 where y ≤ 0, else dy), a NaN
// input passes its gradient on. dx [n]: write every element (do not add to it).
#include <cstddef>

#include "tapegrad/config.hpp"
#include "tapegrad/exercise.hpp"

namespace tg::exercises {

void relu_backward(real* dx, const real* dy, const real* y, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
        // dx = dy · [x > 0]; written as PyTorch's threshold_backward (0 where y <= 0), so a NaN
        // input passes its gradient on, as in PyTorch.
        dx[i] = y[i] <= 0 ? real(0) : (y[i] > 0 ? real(1) : y[i]);
}

}  // namespace tg::exercises
