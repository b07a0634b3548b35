// One SGD step on one parameter, PyTorch's torch.optim.SGD (the kernel tg::optim::SGD::step
// runs for each parameter; exercises/sgd_step.cpp is the exercise of writing it).
#pragma once

#include <cstddef>

#include "tapegrad/config.hpp"

namespace tg::kernels::reference {

/// Updates param [n] in place from its gradient grad [n]:
///     d = grad + weight_decay·param
///     momentum ≠ 0:  buf = d on the first step, else momentum·buf + (1 − dampening)·d;
///                    d = nesterov ? d + momentum·buf : buf
///     param = param − lr·d
/// momentum_buffer [n] is read and written when momentum ≠ 0 (it may be null otherwise);
/// first_step: the buffer holds nothing yet. The coefficients are rounded to `real` first,
/// as PyTorch applies them in the parameters' precision.
void sgd_step(real* param, real* momentum_buffer, const real* grad, std::size_t n, double lr,
              double momentum, double dampening, double weight_decay, bool nesterov,
              bool first_step);

}  // namespace tg::kernels::reference
