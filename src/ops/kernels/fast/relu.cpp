// ReLU, fast: the reference loops written so that they vectorise, split between threads when
// large (every value is independent, so the numbers do not depend on the thread count).
#include "../relu.hpp"

#include "tapegrad/parallel.hpp"

namespace tg::kernels::fast {

void relu_forward(real* y, const real* x, std::size_t n) {
    parallel_for(n, grain_for(1), [y, x](std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i)
            y[i] = x[i] <= real(0) ? real(0) : x[i];  // NaN passes through, as in PyTorch
    });
}

void relu_backward(real* dx, const real* dy, const real* y, std::size_t n) {
    parallel_for(n, grain_for(1), [dx, dy, y](std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i) {
            // Load dy_i first, then select: a load made only when y_i > 0 would force a branch
            // on data (mispredicted half the time) instead of a vector blend.
            const real g = dy[i];
            dx[i] = y[i] <= real(0) ? real(0) : g;  // as the reference: NaN passes g
        }
    });
}

}  // namespace tg::kernels::fast
