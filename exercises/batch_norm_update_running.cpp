// Exercise batch_norm_update_running: the running statistics BatchNorm uses in eval mode.
// Check it:  bash scripts/exercise.sh check batch_norm_update_running   (docs/exercises.md)
// Solution:  src/ops/kernels/reference/batch_norm.cpp (read it after you pass, not before).
//
// After each training step on a batch of B values per channel (B ≥ 2), per channel c:
//
//     running_mean = (1 − momentum)·running_mean + momentum·μ_B
//     running_var  = (1 − momentum)·running_var  + momentum·σ²_B·B/(B − 1)
//
// momentum is the weight of the NEW batch (PyTorch's convention, default 0.1), and the
// running variance estimates the population's variance: it takes the unbiased σ²_B·B/(B − 1),
// although the batch itself was normalised with the biased σ²_B.
// running_mean, running_var [C]: updated in place. mean, var [C]: the forward's μ_B and σ²_B.
#include <cstddef>

#include "tapegrad/config.hpp"
#include "tapegrad/exercise.hpp"

namespace tg::exercises {

void batch_norm_update_running(real* running_mean, real* running_var, const double* mean,
                               const double* var, std::size_t C, std::size_t B, double momentum) {
    throw exercise_not_done("batch_norm_update_running");
}

}  // namespace tg::exercises
