// tapegrad/gradcheck.hpp — compare the tape's gradient with central finite differences.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "tapegrad/tensor.hpp"

namespace tg {

struct GradcheckResult {
    bool ok = true;
    double max_abs_error = 0.0;  // max |analytic - numeric| over every checked element
    std::string message;         // the first failing element, or a summary
    explicit operator bool() const { return ok; }
};

/// The function under test: takes the inputs, returns a one-element tensor.
using ScalarFn = std::function<Tensor(const std::vector<Tensor>&)>;

/// For every element x_i of every input that requires grad, compares d f / d x_i from
/// Tape::backward with the central difference (f(x + eps e_i) - f(x - eps e_i)) / (2 eps).
/// An element passes when |analytic - numeric| <= atol + rtol * |numeric|.
/// Meant for the float64 build; `f` must be deterministic.
GradcheckResult gradcheck(const ScalarFn& f, const std::vector<Tensor>& inputs, double eps = 1e-6,
                          double atol = 1e-7, double rtol = 1e-5);

}  // namespace tg
