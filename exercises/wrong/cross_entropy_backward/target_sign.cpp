// A seeded wrong solution (the grader must diagnose it as `target_sign`): adds the one-hot label.
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

#include <algorithm>
#include <cmath>
#include <limits>
#include "tapegrad/config.hpp"
#include "tapegrad/exercise.hpp"

namespace tg::exercises {

void cross_entropy_backward(real* dx, real dloss, const real* x, const double* lse,
                            const std::int64_t* targets, std::size_t N, std::size_t C) {
    const double scale = static_cast<double>(dloss) / static_cast<double>(N);  // dL/N
    for (std::size_t n = 0; n < N; ++n) {
        for (std::size_t c = 0; c < C; ++c) {
            const double p = std::exp(x[n * C + c] - lse[n]);  // p[n, c]
            const double is_target = c == static_cast<std::size_t>(targets[n]) ? 1.0 : 0.0;
            dx[n * C + c] = static_cast<real>(scale * (p + is_target));
        }
    }
}

}  // namespace tg::exercises
