// One SGD step on one parameter, as torch.optim.SGD (sgd_step.hpp): weight decay, momentum
// with dampening, Nesterov.
#include "sgd_step.hpp"

namespace tg::kernels::reference {

void sgd_step(real* param, real* momentum_buffer, const real* grad, std::size_t n, double lr,
              double momentum, double dampening, double weight_decay, bool nesterov,
              bool first_step) {
    // The coefficients in the parameters' precision, as PyTorch applies them.
    const real lr_r = static_cast<real>(lr);
    const real mu = static_cast<real>(momentum);
    const real keep = static_cast<real>(1.0 - dampening);
    const real wd = static_cast<real>(weight_decay);
    const bool use_momentum = momentum != 0;
    real* b = momentum_buffer;
    for (std::size_t k = 0; k < n; ++k) {
        real d = grad[k];
        if (wd != 0) d = d + wd * param[k];  // L2 penalty: d(wd/2 |p|^2)/dp = wd p
        if (use_momentum) {
            // the first step starts the buffer at d (no dampening), as PyTorch
            b[k] = first_step ? d : b[k] * mu + keep * d;
            d = nesterov ? d + mu * b[k] : b[k];
        }
        param[k] = param[k] - lr_r * d;
    }
}

}  // namespace tg::kernels::reference
