// Normalisation ops (src/ops/normalization.cpp): batch_norm, instance_norm, layer_norm,
// group_norm; two kernels each (kernels/{reference,fast}/{batch_norm,normalize_sets}.cpp).
//
// Sections (TEST_CASE name prefixes, e.g. ./tests_f32 -sf='*test_normalization.cpp' -tc='errors*'):
//   vs PyTorch:           tests/reference/gen_norm.py -> norm.txt, with each kernel set
//   gradcheck float64:    central finite differences (float64 binary only)
//   errors:               bad input names the op, the shapes and what was expected
//   fast vs reference:    the fast kernels against the reference kernels
//   behaviour:            what PyTorch cannot be asked: tape entries, running statistics
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <xtensor/xmath.hpp>

#include "tapegrad/gradcheck.hpp"
#include "tapegrad/ops/normalization.hpp"
#include "tapegrad/random.hpp"
#include "tapegrad/tape.hpp"
#include "testing.hpp"

using tg::Array;
using tg::Shape;
using tg::Tape;
using tg::Tensor;

namespace {

const tgtest::Reference& ref() {
    return tgtest::reference("norm");
}

/// A parameter from the reference (requires grad), or undefined if the case has none.
Tensor param(const std::string& key) {
    return ref().has(key) ? Tensor(ref().at(key), true) : Tensor{};
}

using NormFn = std::function<Tensor(const Tensor& x, const Tensor& w, const Tensor& b)>;

/// Runs fn on the reference's <key>/x, weight, bias; backward of sum(out * dy); compares out,
/// dx, dweight, dbias with PyTorch's.
void check_step(const std::string& key, const NormFn& fn) {
    INFO("reference case " << key);
    Tensor x(ref().at(key + "/x"), true);
    Tensor w = param(key + "/weight"), b = param(key + "/bias");
    Tape tape;
    Tensor out = fn(x, w, b);
    CHECK_MATCHES(out.value(), ref().at(key + "/out"));
    tape.backward(out, ref().at(key + "/dy"));  // = backward of sum(out * dy)
    CHECK_MATCHES(x.grad(), ref().at(key + "/dx"));
    CHECK(w.defined() == ref().has(key + "/dweight"));
    CHECK(b.defined() == ref().has(key + "/dbias"));
    if (w.defined()) CHECK_MATCHES_SCALED(w.grad(), ref().at(key + "/dweight"));
    if (b.defined()) CHECK_MATCHES_SCALED(b.grad(), ref().at(key + "/dbias"));
}

/// batch_norm or instance_norm: (x, running_mean, running_var, weight, bias, training or
/// use_input_stats, momentum, eps).
using StatefulFn = std::function<Tensor(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                        const Tensor&, bool, double, double)>;

struct StatefulCase {
    std::string name;
    std::vector<double> momenta;  // of the three training steps
    double eps;
};

const std::vector<double> kMomentum01{0.1, 0.1, 0.1};
const std::vector<double> kCumulative{1.0, 1.0 / 2, 1.0 / 3};  // momentum = 1/k: running average

/// Three training steps on three batches (output, grads, running stats after each), then eval.
void check_stateful(const StatefulCase& c, const StatefulFn& fn) {
    INFO("reference case " << c.name);
    const bool running = ref().has(c.name + "/rm_init");
    Tensor rm = running ? Tensor(ref().at(c.name + "/rm_init")) : Tensor{};
    Tensor rv = running ? Tensor(ref().at(c.name + "/rv_init")) : Tensor{};
    for (int k = 0; k < 3; ++k) {
        const std::string key = c.name + "/step" + std::to_string(k);
        check_step(key, [&](const Tensor& x, const Tensor& w, const Tensor& b) {
            return fn(x, rm, rv, w, b, true, c.momenta[k], c.eps);
        });
        if (running) {
            CHECK_MATCHES(rm.value(), ref().at(key + "/running_mean"));
            CHECK_MATCHES(rv.value(), ref().at(key + "/running_var"));
            CHECK_FALSE(rm.has_grad());
            CHECK_FALSE(rv.has_grad());
        }
    }
    const Array rm_before = running ? rm.value() : Array{};
    const Array rv_before = running ? rv.value() : Array{};
    // Eval: with running stats, normalise with them; without, with the batch's statistics
    // (batch_norm), or use_input_stats = true (instance_norm, as nn.InstanceNorm does).
    const bool use_input_stats_in_eval = !running && c.name.rfind("in", 0) == 0;
    check_step(c.name + "/eval", [&](const Tensor& x, const Tensor& w, const Tensor& b) {
        return fn(x, rm, rv, w, b, use_input_stats_in_eval, 0.1, c.eps);
    });
    if (running) {  // eval leaves the running statistics alone
        CHECK(rm.value() == rm_before);
        CHECK(rv.value() == rv_before);
    }
}

/// sum(out * weights) as one recorded op: the scalar a gradcheck needs (d/d out = weights).
Tensor weighted_sum(const Tensor& out, const Array& weights) {
    Tensor s = Tensor::scalar(xt::sum(out.value() * weights)());
    if (Tape* tape = tg::recording_tape(out)) {
        tape->record("weighted_sum", {out}, s,
                     [out, weights](const Array& g) { out.accumulate_grad(g() * weights); });
    }
    return s;
}

/// A random leaf [shape] requiring grad, channels (axis 1) with different means and spreads.
Tensor random_input(const Shape& shape, tg::Generator& gen) {
    Array a = tg::normal(shape, 0.0, 1.0, gen);
    if (shape.size() >= 2) {
        const std::size_t C = shape[1];
        const std::size_t L = a.size() / (shape[0] * C);
        for (std::size_t n = 0; n < shape[0]; ++n) {
            for (std::size_t c = 0; c < C; ++c) {
                for (std::size_t l = 0; l < L; ++l) {
                    a.data()[(n * C + c) * L + l] =
                        a.data()[(n * C + c) * L + l] * (1.0 + 0.5 * c) + 2.0 * c - 1.0;
                }
            }
        }
    }
    return Tensor(std::move(a), true);
}

/// Gradcheck of sum(norm(x, w, b) * r) with respect to x, w, b (those defined), r random.
void check_gradcheck(const Shape& x_shape, const Shape& param_shape, bool affine, const NormFn& fn,
                     std::uint64_t seed) {
    tg::Generator gen(seed);
    Tensor x = random_input(x_shape, gen);
    Tensor w = affine ? Tensor(tg::uniform(param_shape, 0.5, 1.5, gen), true) : Tensor{};
    Tensor b = affine ? Tensor(tg::normal(param_shape, 0.0, 0.5, gen), true) : Tensor{};
    const Array r = tg::normal(x_shape, 0.0, 1.0, gen);
    std::vector<Tensor> inputs{x};
    if (affine) {
        inputs.push_back(w);
        inputs.push_back(b);
    }
    CHECK_GRADCHECK(
        [&](const std::vector<Tensor>& in) {
            return weighted_sum(fn(in[0], affine ? in[1] : Tensor{}, affine ? in[2] : Tensor{}), r);
        },
        inputs);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// vs PyTorch (each kernel set)
// ---------------------------------------------------------------------------------------------

TEST_CASE("vs PyTorch: batch_norm, 3 training steps (output, grads, running stats), eval") {
    const std::vector<StatefulCase> cases{
        {"bn4d", kMomentum01, 1e-5},             // [4, 3, 5, 6]
        {"bn3d_cumulative", kCumulative, 1e-5},  // [5, 4, 7], momentum 1/k, random initial stats
        {"bn2d", kMomentum01, 1e-5},             // [8, 5]
        {"bn2d_batch2", kMomentum01, 0.5},       // [2, 3]: two values per channel, large eps
        {"bn4d_noaffine", kMomentum01, 1e-5},    // weight, bias undefined
        {"bn3d_norunning", kMomentum01, 1e-5},   // no running stats: eval uses batch statistics
        {"bn3d_large_mean", kMomentum01, 1e-5},  // x ≈ 100 ± 0.15: |μ| ≫ σ
        {"bn4d_eps", kCumulative, 1e-1},         // a large eps shows where it goes
    };
    for (const tg::Kernels k : tgtest::kBothKernels) {
        tgtest::KernelsGuard guard(k);
        const std::string kernel_set = tg::kernels_name();
        CAPTURE(kernel_set);
        for (const auto& c : cases)
            check_stateful(c, tg::batch_norm);
    }
}

TEST_CASE("vs PyTorch: instance_norm, 3 training steps (output, grads, running stats), eval") {
    const std::vector<StatefulCase> cases{
        {"in4d", kMomentum01, 1e-5},             // [3, 4, 5, 5], random initial stats
        {"in3d_noaffine", kCumulative, 1e-5},    // [4, 3, 7]
        {"in3d_norunning", kMomentum01, 1e-5},   // [2, 3, 6]: use_input_stats always
        {"in3d_large_mean", kMomentum01, 1e-5},  // x ≈ 100 ± 0.15: |μ| ≫ σ
    };
    for (const tg::Kernels k : tgtest::kBothKernels) {
        tgtest::KernelsGuard guard(k);
        const std::string kernel_set = tg::kernels_name();
        CAPTURE(kernel_set);
        for (const auto& c : cases)
            check_stateful(c, tg::instance_norm);
    }
}

TEST_CASE("vs PyTorch: layer_norm output, dx, dweight, dbias") {
    const auto ln = [](Shape normalized_shape, double eps = 1e-5) {
        return [normalized_shape, eps](const Tensor& x, const Tensor& w, const Tensor& b) {
            return tg::layer_norm(x, normalized_shape, w, b, eps);
        };
    };
    for (const tg::Kernels k : tgtest::kBothKernels) {
        tgtest::KernelsGuard guard(k);
        const std::string kernel_set = tg::kernels_name();
        CAPTURE(kernel_set);
        check_step("ln2d", ln({10}));                     // [6, 10]
        check_step("ln4d", ln({5, 6}));                   // [3, 4, 5, 6]
        check_step("ln3d_noaffine", ln({8}));             // [4, 3, 8]
        check_step("ln_whole", ln({2, 3, 4}));            // [2, 3, 4]: one set
        check_step("ln_weight_only_eps", ln({7}, 1e-2));  // [5, 7], bias undefined
        check_step("ln1d", ln({9}));                      // [9]
        check_step("ln_large_mean", ln({16}));            // [4, 16], x ≈ 100 ± 0.15: |μ| ≫ σ
    }
}

TEST_CASE("vs PyTorch: group_norm output, dx, dweight, dbias") {
    const auto gn = [](std::size_t groups, double eps = 1e-5) {
        return [groups, eps](const Tensor& x, const Tensor& w, const Tensor& b) {
            return tg::group_norm(x, groups, w, b, eps);
        };
    };
    for (const tg::Kernels k : tgtest::kBothKernels) {
        tgtest::KernelsGuard guard(k);
        const std::string kernel_set = tg::kernels_name();
        CAPTURE(kernel_set);
        check_step("gn4d", gn(3));                            // [3, 6, 4, 5], 3 groups
        check_step("gn3d_noaffine", gn(2));                   // [4, 8, 5]
        check_step("gn2d", gn(2));                            // [5, 6]
        check_step("gn_one_group", gn(1));                    // [2, 4, 3, 3]
        check_step("gn_group_per_channel_eps", gn(4, 1e-1));  // [2, 4, 6]
        check_step("gn_large_mean", gn(2));  // [2, 4, 8], x ≈ 100 ± 0.15: |μ| ≫ σ
    }
}

// ---------------------------------------------------------------------------------------------
// gradcheck float64
// ---------------------------------------------------------------------------------------------

TEST_CASE("gradcheck float64: batch_norm, training and eval, ranks 2-4, affine or not" *
          doctest::skip(!tg::is_double)) {
    for (const Shape& shape : {Shape{5, 3}, Shape{3, 2, 4}, Shape{2, 3, 3, 2}}) {
        INFO("input " << tg::shape_str(shape));
        const Shape c_shape{shape[1]};
        Tensor rm(tg::normal(c_shape, 0.5, 1.0, tg::default_generator()));
        Tensor rv(tg::uniform(c_shape, 0.5, 2.0, tg::default_generator()));
        for (bool affine : {true, false}) {
            // training (batch statistics; running stats are updated but do not matter)
            check_gradcheck(
                shape, c_shape, affine,
                [&](const Tensor& x, const Tensor& w, const Tensor& b) {
                    return tg::batch_norm(x, rm, rv, w, b, true, 0.1, 1e-5);
                },
                1);
            // eval with running statistics: an affine map of x
            check_gradcheck(
                shape, c_shape, affine,
                [&](const Tensor& x, const Tensor& w, const Tensor& b) {
                    return tg::batch_norm(x, rm, rv, w, b, false, 0.1, 1e-5);
                },
                2);
            // eval without running statistics: batch statistics
            check_gradcheck(
                shape, c_shape, affine,
                [&](const Tensor& x, const Tensor& w, const Tensor& b) {
                    return tg::batch_norm(x, {}, {}, w, b, false, 0.1, 1e-5);
                },
                3);
        }
    }
}

TEST_CASE("gradcheck float64: instance_norm, input statistics and running statistics" *
          doctest::skip(!tg::is_double)) {
    for (const Shape& shape : {Shape{3, 2, 4}, Shape{2, 3, 3, 2}}) {
        INFO("input " << tg::shape_str(shape));
        const Shape c_shape{shape[1]};
        Tensor rm(tg::normal(c_shape, 0.5, 1.0, tg::default_generator()));
        Tensor rv(tg::uniform(c_shape, 0.5, 2.0, tg::default_generator()));
        for (bool affine : {true, false}) {
            check_gradcheck(
                shape, c_shape, affine,
                [&](const Tensor& x, const Tensor& w, const Tensor& b) {
                    return tg::instance_norm(x, rm, rv, w, b, true, 0.1, 1e-5);
                },
                4);
            check_gradcheck(
                shape, c_shape, affine,
                [&](const Tensor& x, const Tensor& w, const Tensor& b) {
                    return tg::instance_norm(x, rm, rv, w, b, false, 0.1, 1e-5);
                },
                5);
        }
    }
}

TEST_CASE("gradcheck float64: layer_norm" * doctest::skip(!tg::is_double)) {
    for (bool affine : {true, false}) {
        check_gradcheck(
            {4, 5}, {5}, affine,
            [](const Tensor& x, const Tensor& w, const Tensor& b) {
                return tg::layer_norm(x, {5}, w, b);
            },
            6);
        check_gradcheck(
            {2, 3, 2, 3}, {2, 3}, affine,
            [](const Tensor& x, const Tensor& w, const Tensor& b) {
                return tg::layer_norm(x, {2, 3}, w, b);
            },
            7);
    }
}

TEST_CASE("gradcheck float64: group_norm" * doctest::skip(!tg::is_double)) {
    for (bool affine : {true, false}) {
        check_gradcheck(
            {2, 4, 3}, {4}, affine,
            [](const Tensor& x, const Tensor& w, const Tensor& b) {
                return tg::group_norm(x, 2, w, b);
            },
            8);
        check_gradcheck(
            {2, 6, 2, 2}, {6}, affine,
            [](const Tensor& x, const Tensor& w, const Tensor& b) {
                return tg::group_norm(x, 3, w, b);
            },
            9);
        check_gradcheck(
            {3, 4}, {4}, affine,
            [](const Tensor& x, const Tensor& w, const Tensor& b) {
                return tg::group_norm(x, 2, w, b);
            },
            10);
    }
}

// ---------------------------------------------------------------------------------------------
// behaviour: recording and running statistics
// ---------------------------------------------------------------------------------------------

TEST_CASE(
    "behaviour: batch_norm records one tape entry; running stats are not inputs and get no grad") {
    Tensor x(Array{{1, 2}, {3, 5}, {4, 0}}, true);
    Tensor w(Array{1, 2}, true), b(Array{0, 1}, true);
    Tensor rm(Array{0, 0}), rv(Array{1, 1});
    {
        Tensor y = tg::batch_norm(x, rm, rv, w, b, true, 0.1, 1e-5);  // no tape: not recorded
        CHECK_FALSE(y.requires_grad());
    }
    Tape tape;
    Tensor y = tg::batch_norm(x, rm, rv, w, b, true, 0.1, 1e-5);
    REQUIRE(tape.size() == 1);
    CHECK(std::string(tape.entries()[0].op) == "batch_norm");
    CHECK(tape.entries()[0].inputs.size() == 3);  // x, weight, bias
    // Two training calls: running_mean = 0.9 (0.9·0 + 0.1·μ) + 0.1·μ with μ = [8/3, 7/3].
    CHECK(rm.value()(0) == doctest::Approx(0.19 * 8.0 / 3.0));
    CHECK(rm.value()(1) == doctest::Approx(0.19 * 7.0 / 3.0));
    tape.backward(y, Array{{1, 0}, {0, 1}, {1, 1}});
    CHECK_FALSE(rm.has_grad());
    CHECK(b.grad() == Array{2, 2});  // dβ = Σdy
}

TEST_CASE(
    "behaviour: batch_norm normalises each channel to mean 0, variance 1 (biased) in training") {
    Tensor x(Array{{1, 10}, {2, 20}, {6, 60}});
    const Array y = tg::batch_norm(x, {}, {}, {}, {}, true, 0.1, 0.0).value();
    // channel 0: μ = 3, σ² = (4 + 1 + 9)/3 = 14/3
    const double s = std::sqrt(14.0 / 3.0);
    CHECK(y(0, 0) == doctest::Approx(-2.0 / s));
    CHECK(y(1, 0) == doctest::Approx(-1.0 / s));
    CHECK(y(2, 0) == doctest::Approx(3.0 / s));
    CHECK(y(2, 1) == doctest::Approx(3.0 / s));  // channel 1 is channel 0 times 10
}

// ---------------------------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------------------------

TEST_CASE("errors: batch_norm names the op, the shapes and what was expected") {
    Tensor rm(Array{0, 0, 0, 0}), rv(Array{1, 1, 1, 1});
    CHECK_THROWS_WITH_AS(
        tg::batch_norm(Tensor(Array{{1, 2, 3, 4}}), rm, rv, {}, {}, true, 0.1, 1e-5),
        "batch_norm: expected more than 1 value per channel when training, got "
        "input size [1, 4]",
        std::invalid_argument);
    // [1, 4] in eval normalises with the running statistics: fine; without them it needs the
    // batch statistics of one value: the same error as training.
    CHECK_NOTHROW(tg::batch_norm(Tensor(Array{{1, 2, 3, 4}}), rm, rv, {}, {}, false, 0.1, 1e-5));
    CHECK_THROWS_WITH_AS(
        tg::batch_norm(Tensor(Array{{1, 2, 3, 4}}), {}, {}, {}, {}, false, 0.1, 1e-5),
        "batch_norm: expected more than 1 value per channel when training, got input size [1, 4]",
        std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        tg::batch_norm(Tensor::zeros({1, 4, 1, 1}), {}, {}, {}, {}, true, 0.1, 1e-5),
        "batch_norm: expected more than 1 value per channel when training, got input size "
        "[1, 4, 1, 1]",
        std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::batch_norm(Tensor(Array{1, 2, 3, 4}), {}, {}, {}, {}, true, 0.1, 1e-5),
                         "batch_norm: input [4] has rank 1, expected rank 2 or more ([N, C, *])",
                         std::invalid_argument);
    const Tensor x = Tensor::zeros({2, 4, 5});
    CHECK_THROWS_WITH_AS(tg::batch_norm(x, rm, rv, Tensor::ones({3}), {}, true, 0.1, 1e-5),
                         "batch_norm: weight has shape [3], expected [4] (one per channel of input "
                         "[2, 4, 5])",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        tg::batch_norm(x, rm, rv, {}, Tensor::ones({5}), true, 0.1, 1e-5),
        "batch_norm: bias has shape [5], expected [4] (one per channel of input [2, 4, 5])",
        std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::batch_norm(x, Tensor::zeros({3}), rv, {}, {}, true, 0.1, 1e-5),
                         "batch_norm: running_mean has shape [3], expected [4] (one per "
                         "channel of input [2, 4, 5])",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        tg::batch_norm(x, rm, Tensor::ones({2, 2}), {}, {}, true, 0.1, 1e-5),
        "batch_norm: running_var has shape [2, 2], expected [4] (one per channel of "
        "input [2, 4, 5])",
        std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::batch_norm(x, rm, {}, {}, {}, true, 0.1, 1e-5),
                         "batch_norm: running_mean and running_var must be both defined or both "
                         "undefined",
                         std::invalid_argument);
}

TEST_CASE("errors: layer_norm, group_norm, instance_norm") {
    const Tensor x = Tensor::zeros({2, 6, 4});
    CHECK_THROWS_WITH_AS(tg::layer_norm(Tensor::zeros({2, 3}), {4}),
                         "layer_norm: normalized_shape [4] does not match input [2, 3] (expected "
                         "input of shape [*, 4])",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::layer_norm(Tensor::zeros({3}), {2, 3}),
                         "layer_norm: normalized_shape [2, 3] does not match input [3] (expected "
                         "input of shape [*, 2, 3])",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::layer_norm(x, {}),
                         "layer_norm: normalized_shape is empty, expected at least one dim",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::layer_norm(x, {4}, Tensor::ones({2})),
                         "layer_norm: weight has shape [2], expected normalized_shape [4]",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::layer_norm(x, {6, 4}, {}, Tensor::ones({24})),
                         "layer_norm: bias has shape [24], expected normalized_shape [6, 4]",
                         std::invalid_argument);

    CHECK_THROWS_WITH_AS(tg::group_norm(x, 4),
                         "group_norm: input [2, 6, 4] has 6 channels, expected a number "
                         "divisible by num_groups = 4",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::group_norm(x, 0),
                         "group_norm: input [2, 6, 4] has 6 channels, expected a number "
                         "divisible by num_groups = 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::group_norm(Tensor::zeros({6}), 2),
                         "group_norm: input [6] has rank 1, expected rank 2 or more ([N, C, *])",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::group_norm(x, 3, Tensor::ones({3})),
                         "group_norm: weight has shape [3], expected [6] (one per channel "
                         "of input [2, 6, 4])",
                         std::invalid_argument);

    CHECK_THROWS_WITH_AS(
        tg::instance_norm(Tensor::zeros({2, 3, 1}), {}, {}, {}, {}, true, 0.1, 1e-5),
        "instance_norm: expected more than 1 spatial element when training, got input size "
        "[2, 3, 1]",
        std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::instance_norm(x, {}, {}, {}, {}, false, 0.1, 1e-5),
                         "instance_norm: running_mean and running_var must be defined when "
                         "use_input_stats is false",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        tg::instance_norm(x, Tensor::zeros({3}), Tensor::ones({3}), {}, {}, true, 0.1, 1e-5),
        "instance_norm: running_mean has shape [3], expected [6] (one per channel of "
        "input [2, 6, 4])",
        std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::instance_norm(Tensor::zeros({4}), {}, {}, {}, {}, true, 0.1, 1e-5),
                         "instance_norm: input [4] has rank 1, expected rank 2 or more ([N, C, *])",
                         std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------
// fast vs reference
// ---------------------------------------------------------------------------------------------

namespace {

/// Running statistics [C] for the fast-vs-reference checks (the same for both kernel sets).
std::pair<Array, Array> running_stats(std::size_t C) {
    tg::Generator gen(11);
    Array rm = tg::normal({C}, 0.0, 1.0, gen);
    Array rv = tg::uniform({C}, 0.5, 2.0, gen);
    return {rm, rv};
}

/// batch_norm on leaves {x, weight, bias} (weight and bias used when `affine`), with the
/// running statistics of running_stats() when `running`.
tgtest::OpFn batch_norm_op(bool affine, bool running, bool training) {
    return [=](const std::vector<Tensor>& in) {
        const auto [rm0, rv0] = running_stats(in[0].shape()[1]);
        Tensor rm = running ? Tensor(rm0) : Tensor{}, rv = running ? Tensor(rv0) : Tensor{};
        return tg::batch_norm(in[0], rm, rv, affine ? in[1] : Tensor{}, affine ? in[2] : Tensor{},
                              training, 0.1, 1e-5);
    };
}

/// CHECKs that a training step updates the running statistics alike with both kernel sets.
void check_running_update(const Array& x) {
    std::vector<Array> after[2];
    for (int i = 0; i < 2; ++i) {
        tgtest::KernelsGuard guard(tgtest::kBothKernels[i]);
        const auto [rm0, rv0] = running_stats(x.shape()[1]);
        Tensor rm(rm0), rv(rv0);
        tg::batch_norm(Tensor(x), rm, rv, {}, {}, true, 0.1, 1e-5);
        after[i] = {rm.value(), rv.value()};
    }
    for (int s = 0; s < 2; ++s) {
        const std::string why = tgtest::mismatch_scaled(after[1][s], after[0][s],
                                                        tgtest::kKernelsRtol, tgtest::kKernelsRtol);
        CHECK_MESSAGE(why.empty(), (s == 0 ? "running_mean: " : "running_var: ") << why);
    }
}

}  // namespace

TEST_CASE("fast vs reference: batch_norm on the PyTorch cases") {
    for (const std::string name :
         {"bn4d", "bn3d_cumulative", "bn2d", "bn2d_batch2", "bn4d_noaffine", "bn3d_norunning",
          "bn3d_large_mean", "bn4d_eps"}) {
        CAPTURE(name);
        const std::string key = name + "/step0";
        const bool affine = ref().has(key + "/weight");
        std::vector<Array> values{ref().at(key + "/x")};
        if (affine) {
            values.push_back(ref().at(key + "/weight"));
            values.push_back(ref().at(key + "/bias"));
        }
        for (const bool training : {true, false}) {
            CAPTURE(training);
            CHECK_FAST_MATCHES_REFERENCE(values, batch_norm_op(affine, true, training));
            CHECK_FAST_MATCHES_REFERENCE(values, batch_norm_op(affine, false, training));
        }
        check_running_update(values[0]);
    }
}

TEST_CASE("fast vs reference: batch_norm on 200 random shapes") {
    tg::Generator gen(2024);
    for (int trial = 0; trial < 200; ++trial) {
        // [N, C, *] with 0 to 2 spatial dims, every size small: the check is about shapes.
        const std::size_t rank = 2 + static_cast<std::size_t>(tg::uniform({1}, 0, 3, gen)(0));
        Shape shape;
        for (std::size_t d = 0; d < rank; ++d)
            shape.push_back(1 +
                            static_cast<std::size_t>(tg::uniform({1}, 0, d == 0 ? 6 : 5, gen)(0)));
        const bool affine = trial % 2 == 0, running = trial % 3 != 0, training = trial % 4 != 1;
        std::size_t values_per_channel = shape[0];
        for (std::size_t d = 2; d < rank; ++d)
            values_per_channel *= shape[d];
        if ((training || !running) && values_per_channel == 1) continue;  // an error, tested below
        CAPTURE(tg::shape_str(shape));
        CAPTURE(affine);
        CAPTURE(running);
        CAPTURE(training);
        // Channels with different means and spreads, some far from 0.
        Array x = tg::normal(shape, 0.0, 1.0, gen) * (0.5 + 2.0 * tg::uniform({1}, 0, 1, gen)(0)) +
                  10.0 * tg::normal({1}, 0.0, 1.0, gen)(0);
        std::vector<Array> values{x};
        if (affine) {
            values.push_back(tg::uniform({shape[1]}, 0.5, 1.5, gen));
            values.push_back(tg::normal({shape[1]}, 0.0, 0.5, gen));
        }
        CHECK_FAST_MATCHES_REFERENCE(values, batch_norm_op(affine, running, training));
        if (training && running) check_running_update(x);
    }
}

TEST_CASE("fast vs reference: layer_norm, group_norm, instance_norm on 300 random shapes") {
    tg::Generator gen(2025);
    const auto pick = [&gen](std::size_t lo, std::size_t hi) {  // a size in [lo, hi]
        return lo + static_cast<std::size_t>(tg::uniform({1}, 0.0, double(hi - lo + 1), gen)(0));
    };
    for (int trial = 0; trial < 300; ++trial) {
        const int op = trial % 3;  // 0 layer_norm, 1 group_norm, 2 instance_norm
        const std::size_t N = pick(1, 4), G = pick(1, 3), C = G * pick(1, 3);
        Shape shape{N, C};
        for (std::size_t d = 0, rank = pick(op == 2 ? 1 : 0, 2); d < rank; ++d)
            shape.push_back(pick(op == 2 ? 2 : 1, 5));
        const bool affine = trial % 2 == 0;
        CAPTURE(op);
        CAPTURE(tg::shape_str(shape));
        CAPTURE(affine);
        Array x = tg::normal(shape, 0.0, 1.0, gen) * (0.5 + 2.0 * tg::uniform({1}, 0, 1, gen)(0)) +
                  5.0 * tg::normal({1}, 0.0, 1.0, gen)(0);
        Shape param_shape{C};
        if (op == 0) param_shape.assign(shape.begin() + 1, shape.end());  // normalize [C, *]
        std::vector<Array> values{x};
        if (affine) {
            values.push_back(tg::uniform(param_shape, 0.5, 1.5, gen));
            values.push_back(tg::normal(param_shape, 0.0, 0.5, gen));
        }
        const bool use_input_stats = trial % 4 != 3;
        const tgtest::OpFn fn = [=](const std::vector<Tensor>& in) {
            const Tensor w = affine ? in[1] : Tensor{}, b = affine ? in[2] : Tensor{};
            if (op == 0) return tg::layer_norm(in[0], param_shape, w, b);
            if (op == 1) return tg::group_norm(in[0], G, w, b);
            const auto [rm0, rv0] = running_stats(C);
            return tg::instance_norm(in[0], Tensor(rm0), Tensor(rv0), w, b, use_input_stats, 0.1,
                                     1e-5);
        };
        CHECK_FAST_MATCHES_REFERENCE(values, fn);
    }
}
