// batch_norm's hand-derived backward against the same layer composed from primitive ops
// (mean, sub, pow, sqrt, div, mul, add, reshape) and differentiated by the tape: the chapter's
// claim that dx = 1/B · 1/σ · (B·dx̂ − Σdx̂ − x̂·Σ(dx̂·x̂)) is what the chain rule gives.
#include <string>
#include <vector>

#include "tapegrad/ops/elementwise.hpp"
#include "tapegrad/ops/normalization.hpp"
#include "tapegrad/ops/reduce.hpp"
#include "tapegrad/ops/shape.hpp"
#include "tapegrad/random.hpp"
#include "tapegrad/tape.hpp"
#include "testing.hpp"

using tg::Array;
using tg::Shape;
using tg::Tape;
using tg::Tensor;

namespace {

/// The axes batch norm reduces over for x [N, C, *]: 0 and 2, 3, ... (all but the channels).
std::vector<int> stat_axes(std::size_t rank) {
    std::vector<int> axes{0};
    for (std::size_t d = 2; d < rank; ++d)
        axes.push_back(static_cast<int>(d));
    return axes;
}

/// [1, C, 1, ...]: a per-channel tensor shaped to broadcast against x [N, C, *].
Shape channel_shape(const Shape& x_shape) {
    Shape s(x_shape.size(), 1);
    s[1] = x_shape[1];
    return s;
}

/// Batch norm in training mode from primitive ops, the chapter's forward equations one by one:
///   μ = 1/B Σx,  σ² = 1/B Σ(x − μ)²,  x̂ = (x − μ) / sqrt(σ² + ε),  y = γ x̂ + β
Tensor composed_batch_norm_train(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                 double eps) {
    const auto axes = stat_axes(x.dim());
    const Shape cs = channel_shape(x.shape());
    const Tensor mu = tg::mean(x, axes, /*keepdim=*/true);
    const Tensor xc = tg::sub(x, mu);
    const Tensor var = tg::mean(tg::pow(xc, 2), axes, /*keepdim=*/true);
    const Tensor sigma = tg::sqrt(tg::add(var, static_cast<tg::real>(eps)));
    const Tensor xhat = tg::div(xc, sigma);
    return tg::add(tg::mul(xhat, tg::reshape(gamma, cs)), tg::reshape(beta, cs));
}

/// Eval mode from primitive ops: μ, σ² are the fixed running statistics (constants).
Tensor composed_batch_norm_eval(const Tensor& x, const Tensor& running_mean,
                                const Tensor& running_var, const Tensor& gamma, const Tensor& beta,
                                double eps) {
    const Shape cs = channel_shape(x.shape());
    const Tensor mu = tg::reshape(running_mean, cs);
    const Tensor sigma =
        tg::sqrt(tg::add(tg::reshape(running_var, cs), static_cast<tg::real>(eps)));
    const Tensor xhat = tg::div(tg::sub(x, mu), sigma);
    return tg::add(tg::mul(xhat, tg::reshape(gamma, cs)), tg::reshape(beta, cs));
}

struct Grads {
    Array out, dx, dgamma, dbeta;
};

/// Forward, then backward with grad_output dy, on fresh leaves holding x, γ, β.
template <class F>
Grads run(const Array& x_value, const Array& gamma_value, const Array& beta_value, const Array& dy,
          const F& f) {
    Tensor x(x_value, true), gamma(gamma_value, true), beta(beta_value, true);
    Tape tape;
    Tensor y = f(x, gamma, beta);
    tape.backward(y, dy);
    return {y.value(), x.grad(), gamma.grad(), beta.grad()};
}

}  // namespace

TEST_CASE("batch_norm's hand-derived backward equals the tape's gradient of the composed ops") {
    tg::Generator gen(42);
    const double eps = 1e-5;
    for (const Shape& shape : {Shape{6, 3}, Shape{4, 3, 5}, Shape{3, 4, 3, 5}}) {
        INFO("input " << tg::shape_str(shape));
        const Shape c{shape[1]};
        const Array x = tg::normal(shape, 1.5, 2.0, gen);
        const Array gamma = tg::uniform(c, 0.5, 1.5, gen);
        const Array beta = tg::normal(c, 0.0, 0.5, gen);
        const Array dy = tg::normal(shape, 0.0, 1.0, gen);
        const Array running_mean = tg::normal(c, 1.0, 0.5, gen);
        const Array running_var = tg::uniform(c, 0.5, 4.0, gen);

        SUBCASE("training: batch statistics") {
            const Grads hand = run(x, gamma, beta, dy, [&](auto& xt, auto& g, auto& b) {
                return tg::batch_norm(xt, {}, {}, g, b, true, 0.1, eps);
            });
            const Grads composed = run(x, gamma, beta, dy, [&](auto& xt, auto& g, auto& b) {
                return composed_batch_norm_train(xt, g, b, eps);
            });
            CHECK_MATCHES(hand.out, composed.out);
            CHECK_MATCHES(hand.dx, composed.dx);
            CHECK_MATCHES_SCALED(hand.dgamma, composed.dgamma);
            CHECK_MATCHES_SCALED(hand.dbeta, composed.dbeta);
        }
        SUBCASE("eval: running statistics") {
            const Grads hand = run(x, gamma, beta, dy, [&](auto& xt, auto& g, auto& b) {
                return tg::batch_norm(xt, Tensor(running_mean), Tensor(running_var), g, b, false,
                                      0.1, eps);
            });
            const Grads composed = run(x, gamma, beta, dy, [&](auto& xt, auto& g, auto& b) {
                return composed_batch_norm_eval(xt, Tensor(running_mean), Tensor(running_var), g, b,
                                                eps);
            });
            CHECK_MATCHES(hand.out, composed.out);
            CHECK_MATCHES(hand.dx, composed.dx);
            CHECK_MATCHES_SCALED(hand.dgamma, composed.dgamma);
            CHECK_MATCHES_SCALED(hand.dbeta, composed.dbeta);
        }
    }
}
