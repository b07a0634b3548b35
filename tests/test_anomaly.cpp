// DetectAnomaly (torch.autograd.detect_anomaly): the first NaN/Inf of a forward output or a
// backward gradient throws, naming the tape entry, its op and inputs, and the pass.
#include <cmath>
#include <limits>
#include <string>

#include "tapegrad/anomaly.hpp"
#include "tapegrad/tapegrad.hpp"
#include "testing.hpp"

using tg::AnomalyError;
using tg::Array;
using tg::DetectAnomaly;
using tg::Tape;
using tg::Tensor;

namespace {

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("DetectAnomaly: log of 0 is caught in the forward pass, at the log entry") {
    DetectAnomaly guard;
    Tape tape;
    Tensor x(Array{1.0, 0.0, 2.0}, true, "x");
    const Tensor y = tg::mul(x, 2.0);  // entry %0, finite
    try {
        (void)tg::log(tg::sub(y, x));  // %1 = sub, %2 = log: log(0) = -inf
        FAIL("no AnomalyError");
    } catch (const AnomalyError& e) {
        const std::string m = e.what();
        CHECK(e.entry_index == 2);
        CHECK(std::string(e.op) == "log");
        CHECK_FALSE(e.in_backward);
        CHECK(contains(m, "forward pass"));
        CHECK(contains(m, "%2 = log(%1 [3])"));
        CHECK(contains(m, "0 NaN and 1 Inf values (the first, -inf, at [1])"));
    }
}

TEST_CASE("DetectAnomaly: sqrt of a negative value names the op and its input") {
    DetectAnomaly guard;
    Tape tape;
    Tensor x(Array{{4.0, -1.0}, {9.0, -4.0}}, true, "x");
    try {
        (void)tg::sqrt(x);
        FAIL("no AnomalyError");
    } catch (const AnomalyError& e) {
        CHECK(e.entry_index == 0);
        CHECK(std::string(e.op) == "sqrt");
        CHECK(contains(e.what(),
                       "%0 = sqrt('x' [2, 2]) produced an output [2, 2] with 2 NaN "
                       "and 0 Inf values (the first, nan, at [0, 1])"));
    }
}

TEST_CASE("DetectAnomaly: BatchNorm of a constant channel with eps 0 (σ² = 0, x̂ = 0/0)") {
    DetectAnomaly guard;
    Tape tape;
    // x [4, 2]: channel 0 varies, channel 1 is constant 3, so σ²_B = 0 and 1/sqrt(σ² + 0) = inf.
    Tensor x(Array{{1.0, 3.0}, {2.0, 3.0}, {3.0, 3.0}, {4.0, 3.0}}, true, "x");
    Tensor gamma = Tensor::ones({2}, true).set_name("bn.weight");
    Tensor beta = Tensor::zeros({2}, true).set_name("bn.bias");
    try {
        (void)tg::batch_norm(x, {}, {}, gamma, beta, /*training=*/true, 0.1, /*eps=*/0.0);
        FAIL("no AnomalyError");
    } catch (const AnomalyError& e) {
        CHECK(std::string(e.op) == "batch_norm");
        CHECK_FALSE(e.in_backward);
        CHECK(contains(e.what(), "%0 = batch_norm('x' [4, 2], 'bn.weight' [2], 'bn.bias' [2])"));
        CHECK(contains(e.what(), "4 NaN and 0 Inf values (the first, nan, at [0, 1])"));
    }
}

TEST_CASE("DetectAnomaly: a loss that overflows float") {
    DetectAnomaly guard;
    Tape tape;
    const auto big = static_cast<tg::real>(tg::is_double ? 1e200 : 1e30);  // big² overflows to inf
    Tensor prediction(Array{big, 1.0}, true, "prediction");
    const Tensor target(Array{-big, 0.0}, false, "target");
    try {
        (void)tg::mse_loss(prediction, target);
        FAIL("no AnomalyError");
    } catch (const AnomalyError& e) {
        CHECK(std::string(e.op) == "mse_loss");
        CHECK(contains(e.what(),
                       "mse_loss('prediction' [2], 'target' [2]) produced an output [] "
                       "with 0 NaN and 1 Inf values (the first, inf, at [])"));
    }
}

TEST_CASE("DetectAnomaly: a finite forward whose backward is not (d sqrt(x)/dx at 0)") {
    DetectAnomaly guard;
    Tensor x(Array{1.0, 0.0, 4.0}, true, "x");
    Tape tape;
    const Tensor y = tg::sqrt(x);    // %0, finite: [1, 0, 2]
    const Tensor loss = tg::sum(y);  // %1
    try {
        tape.backward(loss);
        FAIL("no AnomalyError");
    } catch (const AnomalyError& e) {
        CHECK(e.entry_index == 0);
        CHECK(std::string(e.op) == "sqrt");
        CHECK(e.in_backward);
        CHECK(contains(e.what(),
                       "backward pass, tape entry %0 = sqrt('x' [3]) computed a "
                       "gradient for its input 0 ('x' [3]) with 0 NaN and 1 Inf values "
                       "(the first, inf, at [1])"));
    }
}

TEST_CASE("DetectAnomaly: a NaN already in a grad is not blamed on a later op") {
    // w's grad holds a NaN from an earlier step (never zeroed); the new backward adds finite
    // values, so no entry of this tape introduced a NaN.
    Tensor w(Array{1.0, 2.0}, true, "w");
    w.accumulate_grad(Array{std::numeric_limits<tg::real>::quiet_NaN(), 0.0});
    DetectAnomaly guard;
    Tape tape;
    const Tensor loss = tg::sum(tg::mul(w, w));
    CHECK_NOTHROW(tape.backward(loss));
}

TEST_CASE("without a guard nothing is checked; guards nest and end with their scope") {
    Tensor x(Array{0.0}, true, "x");
    {
        Tape tape;
        CHECK_NOTHROW((void)tg::log(x));  // -inf, no guard alive
    }
    {
        DetectAnomaly outer;
        { DetectAnomaly inner; }
        Tape tape;
        CHECK_THROWS_AS((void)tg::log(x), AnomalyError);  // outer still alive
    }
    Tape tape;
    CHECK_NOTHROW((void)tg::log(x));
    CHECK(tg::detail::anomaly_guards == 0);
}

TEST_CASE("DetectAnomaly: a finite training step passes untouched") {
    DetectAnomaly guard;
    Tensor x(Array{{1.0, 2.0}, {3.0, 5.0}, {0.0, -1.0}}, true, "x");
    Tensor w(Array{{0.5, -1.0}, {2.0, 0.25}}, true, "w");
    Tape tape;
    const Tensor loss = tg::cross_entropy(tg::matmul(x, w), tg::Labels{0, 1, 1});
    CHECK_NOTHROW(tape.backward(loss));
    CHECK(w.has_grad());
}
