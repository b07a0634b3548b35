// tapegrad/ops/dropout.hpp — inverted dropout (torch.nn.functional.dropout).
#pragma once

#include "tapegrad/random.hpp"
#include "tapegrad/tensor.hpp"

namespace tg {

/// Training: y = x * m / (1 - p), m_i ~ Bernoulli(1 - p) drawn from `gen` (each element is
/// zeroed with probability p, the survivors scaled so that E[y] = x); dx = dy * m / (1 - p).
/// p = 1 gives zeros (and zero gradient). Eval (training false) or p = 0: returns x itself.
/// p outside [0, 1] throws.
Tensor dropout(const Tensor& x, double p, bool training, Generator& gen = default_generator());

}  // namespace tg
