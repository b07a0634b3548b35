// tests/op_checks.hpp — the two checks the small ops' test files share (test_elementwise,
// test_reduce, test_shape, test_linalg, test_loss, test_activation):
//   check_against_pytorch  an op's output and input gradients against PyTorch's
//                          (tests/reference/gen_ops.py -> ops.txt);
//   check_gradcheck        an op's gradients against central finite differences (float64).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "tapegrad/ops/elementwise.hpp"
#include "tapegrad/ops/reduce.hpp"
#include "tapegrad/random.hpp"
#include "tapegrad/tape.hpp"
#include "testing.hpp"

namespace optest {

using tg::Array;
using tg::Shape;
using tg::Tensor;
using In = std::vector<Tensor>;
using Fn = std::function<Tensor(const In&)>;

const std::vector<std::string> AB{"a", "b"};
const std::vector<std::string> X{"x"};

// How gradients are compared with PyTorch's: element-wise, or against the tensor's scale for
// gradients that are sums over broadcast axes or matrix products (float32 summation order).
enum class Grad { elementwise, scaled };

/// Loads the inputs of case `name` (in `inputs` order), runs `f` on a tape, compares the
/// output, then walks back with grad_output = w (the gradient of sum(out * w)) and compares
/// each input's gradient; float32 within 1e-5 relative, float64 within 1e-10.
inline void check_against_pytorch(const std::string& name, const std::vector<std::string>& inputs,
                                  const Fn& f, Grad grad_mode = Grad::elementwise) {
    const auto& ref = tgtest::reference("ops");
    CAPTURE(name);
    std::vector<Tensor> xs;
    for (const auto& in : inputs)
        xs.emplace_back(ref.at(name + "/" + in), true, in);
    tg::Tape tape;
    const Tensor out = f(xs);
    CHECK_MATCHES(out.value(), ref.at(name + "/out"));
    tape.backward(out, ref.at(name + "/w"));
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        CAPTURE(inputs[i]);
        REQUIRE(xs[i].has_grad());
        const Array& expected = ref.at(name + "/grad_" + inputs[i]);
        if (grad_mode == Grad::scaled) {
            CHECK_MATCHES_SCALED(xs[i].grad(), expected);
        } else {
            CHECK_MATCHES(xs[i].grad(), expected);
        }
    }
}

/// The class labels stored with case `name`.
inline tg::Labels labels_of(const std::string& name) {
    tg::Labels out;
    for (auto v : tgtest::reference("ops").at(name + "/targets"))
        out.push_back(static_cast<std::int64_t>(v));
    return out;
}

/// A leaf requiring grad, uniform in [lo, hi).
inline Tensor leaf(const Shape& shape, tg::Generator& gen, double lo = -2.0, double hi = 2.0) {
    return Tensor(tg::uniform(shape, lo, hi, gen), true);
}

/// Values with |v| in [0.5, 2] and random signs: away from relu's kink and division by 0.
inline Tensor leaf_away_from_zero(const Shape& shape, tg::Generator& gen) {
    Array v = tg::uniform(shape, 0.5, 2.0, gen);
    for (auto& e : v)
        e *= gen.uniform01() < 0.5 ? -1 : 1;
    return Tensor(std::move(v), true);
}

/// gradcheck of f, reduced to the scalar sum(f(in) * w) with w ~ N(0, 1) fixed, so every
/// output element's gradient matters (float64 build only).
inline void check_gradcheck(const std::string& what, const Fn& f, const In& inputs) {
    INFO(what);
    Array y;
    {
        tg::NoGradGuard no_grad;
        y = f(inputs).value();
    }
    tg::Generator wgen(99);
    const Tensor w(tg::normal(Shape(y.shape().begin(), y.shape().end()), 0.0, 1.0, wgen));
    CHECK_GRADCHECK([&](const In& in) { return tg::sum(tg::mul(f(in), w)); }, inputs);
}

}  // namespace optest
