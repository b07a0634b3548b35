// Exercise cross_entropy_backward: the gradient of softmax + cross-entropy, in one step.
// Check it:  bash scripts/exercise.sh check cross_entropy_backward  (docs/exercises.md)
// Solution:  src/ops/kernels/reference/cross_entropy.cpp (read it after you pass, not before).
//
// Logits x [N, C] (row n at n·C), class labels targets [N] (t_n in [0, C)). The forward
// computed, per row, lse_n = log Σ_c e^(x[n, c]) (given to you, in double) and
//
//     loss = 1/N Σ_n (lse_n − x[n, t_n])          (the mean over the rows)
//
// With p[n, c] = softmax(x)[n, c] = e^(x[n, c] − lse_n) and dloss = ∂L/∂loss:
//
//     dx[n, c] = dloss/N · (p[n, c] − [c = t_n])
//
// dx [N, C]: write every element.
#include <cstddef>
#include <cstdint>

#include "tapegrad/config.hpp"
#include "tapegrad/exercise.hpp"

namespace tg::exercises {

void cross_entropy_backward(real* dx, real dloss, const real* x, const double* lse,
                            const std::int64_t* targets, std::size_t N, std::size_t C) {
    throw exercise_not_done("cross_entropy_backward");
}

}  // namespace tg::exercises
