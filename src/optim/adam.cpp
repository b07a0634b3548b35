#include "tapegrad/optim/adam.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

#include <xtensor/xbuilder.hpp>

namespace tg::optim {

Adam::Adam(std::vector<Tensor> parameters, AdamOptions options)
    : Optimizer("Adam", std::move(parameters)), options_(options), states_(parameters_.size()) {
    const auto invalid = [](const std::string& what, double v) {
        throw std::invalid_argument("Adam: invalid " + what + ": " + std::to_string(v));
    };
    if (!(options.lr >= 0)) invalid("learning rate", options.lr);
    if (!(options.eps >= 0)) invalid("epsilon value", options.eps);
    if (!(options.betas.first >= 0 && options.betas.first < 1)) {
        invalid("beta parameter at index 0", options.betas.first);
    }
    if (!(options.betas.second >= 0 && options.betas.second < 1)) {
        invalid("beta parameter at index 1", options.betas.second);
    }
    if (!(options.weight_decay >= 0)) invalid("weight_decay value", options.weight_decay);
}

void Adam::step() {
    const auto [beta1, beta2] = options_.betas;
    const real b1 = static_cast<real>(beta1), b2 = static_cast<real>(beta2);
    const real one_minus_b1 = static_cast<real>(1.0 - beta1);
    const real one_minus_b2 = static_cast<real>(1.0 - beta2);
    const real wd = static_cast<real>(options_.weight_decay);
    const real eps = static_cast<real>(options_.eps);

    check_grad_shapes();  // every gradient is read as numel() values below
    for (std::size_t i = 0; i < parameters_.size(); ++i) {
        Tensor& param = parameters_[i];
        if (!param.has_grad()) continue;
        State& s = states_[i];
        if (s.step == 0) {
            s.exp_avg = xt::zeros<real>(param.shape());
            s.exp_avg_sq = xt::zeros<real>(param.shape());
        }
        ++s.step;
        // Bias corrections in double, as PyTorch computes them from the Python float step.
        const double t = static_cast<double>(s.step);
        const double bias_correction1 = 1.0 - std::pow(beta1, t);
        const double bias_correction2 = 1.0 - std::pow(beta2, t);
        const real step_size = static_cast<real>(options_.lr / bias_correction1);
        const real bias_correction2_sqrt = static_cast<real>(std::sqrt(bias_correction2));

        real* p = param.value().data();
        const real* g = param.grad().data();
        real* m = s.exp_avg.data();
        real* v = s.exp_avg_sq.data();
        for (std::size_t k = 0, n = param.numel(); k < n; ++k) {
            real d = g[k];
            if (wd != 0) d = d + wd * p[k];  // L2 penalty
            m[k] = m[k] * b1 + one_minus_b1 * d;
            v[k] = v[k] * b2 + one_minus_b2 * d * d;
            const real denom = std::sqrt(v[k]) / bias_correction2_sqrt + eps;
            p[k] = p[k] - step_size * (m[k] / denom);
        }
    }
}

}  // namespace tg::optim
