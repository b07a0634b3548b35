#include "tapegrad/gradcheck.hpp"

#include <cmath>
#include <sstream>
#include <stdexcept>

#include "tapegrad/tape.hpp"

namespace tg {

GradcheckResult gradcheck(const ScalarFn& f, const std::vector<Tensor>& inputs, double eps,
                          double atol, double rtol) {
    // Analytic gradients: one forward on a fresh tape, one reverse walk.
    std::vector<Array> analytic(inputs.size());
    {
        for (auto t : inputs)
            t.zero_grad(/*set_to_none=*/true);
        Tape tape;
        const Tensor out = f(inputs);
        if (out.numel() != 1) {
            throw std::invalid_argument("gradcheck: f must return one element, got shape " +
                                        shape_str(out.value().shape()));
        }
        tape.backward(out);
        for (std::size_t i = 0; i < inputs.size(); ++i) {
            if (!inputs[i].requires_grad()) continue;
            // An input the output does not depend on has gradient zero.
            analytic[i] =
                inputs[i].has_grad() ? inputs[i].grad() : xt::zeros_like(inputs[i].value());
        }
    }

    // Numeric gradients: central differences, one element at a time, with nothing recorded.
    NoGradGuard no_grad;
    GradcheckResult result;
    std::ostringstream msg;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        if (!inputs[i].requires_grad()) continue;
        Tensor x = inputs[i];
        Array& v = x.value();
        for (std::size_t k = 0; k < v.size(); ++k) {
            const real saved = v.flat(k);
            v.flat(k) = static_cast<real>(saved + eps);
            const double plus = f(inputs).item();
            v.flat(k) = static_cast<real>(saved - eps);
            const double minus = f(inputs).item();
            v.flat(k) = saved;
            const double numeric = (plus - minus) / (2.0 * eps);
            const double a = analytic[i].flat(k);
            const double err = std::abs(a - numeric);
            result.max_abs_error = std::max(result.max_abs_error, err);
            if (result.ok && !(err <= atol + rtol * std::abs(numeric))) {
                result.ok = false;
                msg << "gradcheck: input " << i << (x.name().empty() ? "" : " '" + x.name() + "'")
                    << ' ' << shape_str(v.shape()) << ", flat element " << k << ": analytic " << a
                    << ", numeric " << numeric << " (|diff| " << err << " > " << atol << " + "
                    << rtol << " * |numeric|)";
            }
        }
    }
    result.message = result.ok ? "gradcheck passed, max |analytic - numeric| = " +
                                     std::to_string(result.max_abs_error)
                               : msg.str();
    return result;
}

}  // namespace tg
