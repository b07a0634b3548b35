// A seeded wrong solution (the grader must diagnose it as `buffer_restarted`): the buffer is set to
// d at every step. Exercise sgd_step: one step of SGD with momentum on one parameter
// (torch.optim.SGD). Check it:  bash scripts/exercise.sh check sgd_step (docs/exercises.md)
// Solution:  src/optim/sgd_step.cpp (read it after you pass, not before).
//
// param, momentum_buffer, grad are [n] (one parameter tensor, flat). tg::optim::SGD::step calls
// this for each parameter that has a gradient, with its options. PyTorch's update, per element:
//
//     d   = grad + weight_decay·param                    (L2 penalty; weight_decay may be 0)
//     if momentum ≠ 0:
//         buf = d                                        on the first step (first_step: the
//                                                        buffer holds nothing yet; no dampening)
//         buf = momentum·buf + (1 − dampening)·d         on every later step
//         d   = d + momentum·buf   if nesterov, else  d = buf
//     param = param − lr·d
//
// momentum_buffer is read and written only when momentum ≠ 0 (it is null otherwise) and keeps
// buf from one step to the next. Round the coefficients to `real` first
// (static_cast<real>(lr), ..., static_cast<real>(1.0 - dampening)), as PyTorch applies them
// in the parameters' precision.
#include <cstddef>

#include "tapegrad/config.hpp"
#include "tapegrad/exercise.hpp"

namespace tg::exercises {

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
            b[k] = d;
            d = nesterov ? d + mu * b[k] : b[k];
        }
        param[k] = param[k] - lr_r * d;
    }
}

}  // namespace tg::exercises
