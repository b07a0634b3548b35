// ReLU, one value at a time: y = max(x, 0); its derivative is 1 where x > 0, else 0.
#include "../relu.hpp"

namespace tg::kernels::reference {

void relu_forward(real* y, const real* x, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
        y[i] = x[i] <= 0 ? real(0) : x[i];  // y = max(x, 0), and NaN stays NaN (as PyTorch)
}

void relu_backward(real* dx, const real* dy, const real* y, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
        // dx = dy · [x > 0]; written as PyTorch's threshold_backward (0 where y <= 0), so a NaN
        // input passes its gradient on, as in PyTorch.
        dx[i] = y[i] <= 0 ? real(0) : dy[i];
}

}  // namespace tg::kernels::reference
