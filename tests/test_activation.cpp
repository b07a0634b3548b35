// The activations (src/ops/activation.cpp), each with two kernels: relu
// (kernels/{reference,fast}/relu.cpp); tanh, sigmoid, leaky_relu and gelu
// (kernels/{reference,fast}/activation.cpp).
//
// Sections (TEST_CASE name prefixes, e.g. ./tests_f32 -sf='*test_activation*' -tc='vs PyTorch*'):
//   vs PyTorch:           tests/reference/gen_ops.py -> ops.txt, with each kernel set; values
//                         and gradients at 0, ±1e-3, and |x| up to 100, the kinks; NaN, ±inf
//                         and ±0 from tests/reference/gen_activation_specials.py ->
//                         activation_specials.txt
//   gradcheck float64:    central finite differences (float64 binary only), each kernel set
//   errors:               gelu's `approximate`; every op takes any shape, 0-d and empty
//   fast vs reference:    random shapes with odd sizes (the SIMD tails), large |x|; the same
//                         bytes on 1 and 2 threads
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "op_checks.hpp"
#include "tapegrad/ops/activation.hpp"
#include "tapegrad/parallel.hpp"
#include "thread_count.hpp"

using namespace optest;

// ---------------------------------------------------------------------------------------------
// vs PyTorch
// ---------------------------------------------------------------------------------------------

TEST_CASE("vs PyTorch: relu, and relu'(0) = 0 (each kernel set)") {
    for (const tg::Kernels k : tgtest::kBothKernels) {
        tgtest::KernelsGuard guard(k);
        CAPTURE(tg::kernels_name(k));
        check_against_pytorch("relu", X, [](const In& v) { return tg::relu(v[0]); });
        check_against_pytorch("relu_at_zero", X, [](const In& v) { return tg::relu(v[0]); });
    }
}

TEST_CASE(
    "vs PyTorch: tanh and sigmoid, and their gradients where they saturate (each kernel "
    "set)") {
    for (const tg::Kernels k : tgtest::kBothKernels) {
        tgtest::KernelsGuard guard(k);
        CAPTURE(tg::kernels_name(k));
        check_against_pytorch("tanh", X, [](const In& v) { return tg::tanh(v[0]); });
        check_against_pytorch("tanh_edges", X, [](const In& v) { return tg::tanh(v[0]); });
        check_against_pytorch("sigmoid", X, [](const In& v) { return tg::sigmoid(v[0]); });
        check_against_pytorch("sigmoid_edges", X, [](const In& v) { return tg::sigmoid(v[0]); });
    }
}

TEST_CASE(
    "vs PyTorch: leaky_relu with slopes 0.01, 0.2 and -1.5, and the slope at the kink "
    "(each kernel set)") {
    for (const tg::Kernels k : tgtest::kBothKernels) {
        tgtest::KernelsGuard guard(k);
        CAPTURE(tg::kernels_name(k));
        check_against_pytorch("leaky_relu", X, [](const In& v) { return tg::leaky_relu(v[0]); });
        check_against_pytorch("leaky_relu_slope_0_2", X,
                              [](const In& v) { return tg::leaky_relu(v[0], 0.2); });
        check_against_pytorch("leaky_relu_slope_neg_1_5", X,
                              [](const In& v) { return tg::leaky_relu(v[0], -1.5); });
        check_against_pytorch("leaky_relu_edges", X,
                              [](const In& v) { return tg::leaky_relu(v[0], 0.2); });
    }
}

TEST_CASE(
    "vs PyTorch: gelu, exact (erf) and tanh-approximated, at 0 and large |x| (each kernel "
    "set)") {
    for (const tg::Kernels k : tgtest::kBothKernels) {
        tgtest::KernelsGuard guard(k);
        CAPTURE(tg::kernels_name(k));
        check_against_pytorch("gelu", X, [](const In& v) { return tg::gelu(v[0]); });
        check_against_pytorch("gelu_edges", X, [](const In& v) { return tg::gelu(v[0], "none"); });
        check_against_pytorch("gelu_tanh", X, [](const In& v) { return tg::gelu(v[0], "tanh"); });
        check_against_pytorch("gelu_tanh_edges", X,
                              [](const In& v) { return tg::gelu(v[0], "tanh"); });
    }
}

namespace {

/// tanh, sigmoid, leaky_relu (slope 0.2), gelu and gelu "tanh" under the names
/// gen_activation_specials.py gives them.
const std::map<std::string, Fn>& special_ops() {
    static const std::map<std::string, Fn> ops{
        {"tanh", [](const In& v) { return tg::tanh(v[0]); }},
        {"sigmoid", [](const In& v) { return tg::sigmoid(v[0]); }},
        {"leaky_relu_0.2", [](const In& v) { return tg::leaky_relu(v[0], 0.2); }},
        {"gelu", [](const In& v) { return tg::gelu(v[0]); }},
        {"gelu_tanh", [](const In& v) { return tg::gelu(v[0], "tanh"); }}};
    return ops;
}

/// Empty if `a` is PyTorch's `e` as the special values go: NaN where PyTorch has NaN, the same
/// infinity, the same signed zero; other numbers within kRtol (and an atol of 1e-6 / 1e-12,
/// which covers float32's e^-100, a subnormal number here, 0 in PyTorch).
std::string special_mismatch(double a, double e) {
    const double atol = tg::is_double ? 1e-12 : 1e-6;
    bool ok = false;
    if (std::isnan(e)) {
        ok = std::isnan(a);
    } else if (std::isinf(e)) {
        ok = a == e;
    } else if (a == 0 && e == 0) {
        ok = std::signbit(a) == std::signbit(e);
    } else {
        ok = std::abs(a - e) <= atol + tgtest::kRtol * std::abs(e);
    }
    if (ok) return {};
    std::ostringstream m;
    m.precision(17);
    m << a << " vs PyTorch's " << e;
    return m.str();
}

}  // namespace

TEST_CASE(
    "vs PyTorch: NaN, ±inf, ±0, ±100 and ±1e-30 in tanh, sigmoid, leaky_relu and gelu "
    "(each kernel set)") {
    const std::string path = std::string(TAPEGRAD_REFERENCE_DIR) + "/activation_specials.txt";
    std::ifstream in(path);
    REQUIRE_MESSAGE(in, "cannot open " << path);
    const std::string dtype = tg::is_double ? "f64" : "f32";
    std::size_t walked = 0;
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string op, tag, x, y, dx;  // strtod reads nan, inf and -0.0; operator>> does not
        fields >> op >> tag >> x >> y >> dx;
        REQUIRE_MESSAGE(fields, "malformed line in " << path << ": " << line);
        if (tag != dtype) continue;
        for (const tg::Kernels k : tgtest::kBothKernels) {
            tgtest::KernelsGuard guard(k);
            INFO(op << " at x = " << x << " with the " << tg::kernels_name(k) << " kernels");
            Tensor leaf_x(Array{static_cast<tg::real>(std::strtod(x.c_str(), nullptr))}, true);
            tg::Tape tape;
            const Tensor out = special_ops().at(op)({leaf_x});
            tape.backward(out, Array{1});
            const std::string why_y =
                special_mismatch(out.value()(0), std::strtod(y.c_str(), nullptr));
            CHECK_MESSAGE(why_y.empty(), "y: " << why_y);
            const std::string why_dx =
                special_mismatch(leaf_x.grad()(0), std::strtod(dx.c_str(), nullptr));
            CHECK_MESSAGE(why_dx.empty(), "dx: " << why_dx);
        }
        ++walked;
    }
    CHECK(walked == 5 * 9);
}

// ---------------------------------------------------------------------------------------------
// gradcheck float64
// ---------------------------------------------------------------------------------------------

TEST_CASE("gradcheck float64: relu (each kernel set)" * doctest::skip(!tg::is_double)) {
    for (const tg::Kernels k : tgtest::kBothKernels) {
        tgtest::KernelsGuard guard(k);
        tg::Generator gen(6);
        check_gradcheck(std::string("relu, ") + tg::kernels_name(k),
                        [](const In& v) { return tg::relu(v[0]); },
                        {leaf_away_from_zero({3, 4, 5}, gen)});
    }
}

TEST_CASE(
    "gradcheck float64: tanh, sigmoid, gelu (both), and leaky_relu away from its kink, "
    "each kernel set" *
    doctest::skip(!tg::is_double)) {
    for (const tg::Kernels k : tgtest::kBothKernels) {
        tgtest::KernelsGuard guard(k);
        CAPTURE(tg::kernels_name(k));
        tg::Generator gen(27);
        // Smooth everywhere: values in [-3, 3], where the gradients are far from 0, with 0 itself.
        const auto smooth = [&gen] {
            Tensor x = leaf({3, 4, 5}, gen, -3.0, 3.0);
            x.value().flat(0) = 0;
            return x;
        };
        check_gradcheck("tanh", [](const In& v) { return tg::tanh(v[0]); }, {smooth()});
        check_gradcheck("sigmoid", [](const In& v) { return tg::sigmoid(v[0]); }, {smooth()});
        check_gradcheck("gelu", [](const In& v) { return tg::gelu(v[0]); }, {smooth()});
        check_gradcheck("gelu tanh", [](const In& v) { return tg::gelu(v[0], "tanh"); },
                        {smooth()});
        for (const double slope : {0.01, 0.2, -1.5}) {
            check_gradcheck("leaky_relu, slope " + std::to_string(slope),
                            [slope](const In& v) { return tg::leaky_relu(v[0], slope); },
                            {leaf_away_from_zero({3, 4, 5}, gen)});
        }
    }
}

// ---------------------------------------------------------------------------------------------
// errors: relu has no bad input; a 0-d and an empty tensor go through both ways
// ---------------------------------------------------------------------------------------------

TEST_CASE("errors: none for relu, whose input may have any shape, 0-d and empty included") {
    for (const tg::Shape& shape : {tg::Shape{}, tg::Shape{0, 3}}) {
        CAPTURE(tg::shape_str(shape));
        Array ones = Array::from_shape(shape);
        ones.fill(1);
        Tensor x(ones, true);
        tg::Tape tape;
        const Tensor y = tg::relu(x);
        CHECK(y.shape() == shape);
        CHECK(y.value() == ones);
        tape.backward(y, ones);
        CHECK(x.grad().shape() == shape);
    }
}

TEST_CASE("errors: gelu's approximate is 'none' or 'tanh'; the others take any shape") {
    const Tensor x(Array{1, 2});
    CHECK_THROWS_WITH_AS(tg::gelu(x, "erf"),
                         "gelu: approximate 'erf', expected 'none' or 'tanh' (as "
                         "torch.nn.functional.gelu)",
                         std::invalid_argument);
    const std::vector<std::pair<const char*, Fn>> ops{
        {"tanh", [](const In& v) { return tg::tanh(v[0]); }},
        {"sigmoid", [](const In& v) { return tg::sigmoid(v[0]); }},
        {"leaky_relu", [](const In& v) { return tg::leaky_relu(v[0]); }},
        {"gelu", [](const In& v) { return tg::gelu(v[0]); }},
        {"gelu tanh", [](const In& v) { return tg::gelu(v[0], "tanh"); }}};
    for (const auto& [name, op] : ops) {
        const std::string op_name = name;  // (CAPTURE's lambda cannot name a structured binding)
        for (const tg::Shape& shape : {tg::Shape{}, tg::Shape{0, 3}}) {
            CAPTURE(op_name);
            CAPTURE(tg::shape_str(shape));
            Array ones = Array::from_shape(shape);
            ones.fill(1);
            Tensor in(ones, true);
            tg::Tape tape;
            const Tensor y = op({in});
            CHECK(y.shape() == shape);
            tape.backward(y, ones);
            CHECK(in.grad().shape() == shape);
        }
    }
}

TEST_CASE("NaN in, NaN out, as PyTorch (tanh, sigmoid, leaky_relu, gelu)") {
    const Tensor x(Array{std::numeric_limits<tg::real>::quiet_NaN()});
    CHECK(std::isnan(tg::tanh(x).value()(0)));
    CHECK(std::isnan(tg::sigmoid(x).value()(0)));
    CHECK(std::isnan(tg::leaky_relu(x).value()(0)));
    CHECK(std::isnan(tg::gelu(x).value()(0)));
    CHECK(std::isnan(tg::gelu(x, "tanh").value()(0)));
}

// ---------------------------------------------------------------------------------------------
// fast vs reference
// ---------------------------------------------------------------------------------------------

TEST_CASE("fast vs reference: relu on 100 random shapes, zeros included") {
    tg::Generator gen(5);
    const tgtest::OpFn relu = [](const std::vector<Tensor>& in) { return tg::relu(in[0]); };
    for (int trial = 0; trial < 100; ++trial) {
        tg::Shape shape;
        const auto rank = 1 + static_cast<std::size_t>(tg::uniform({1}, 0, 4, gen)(0));
        for (std::size_t d = 0; d < rank; ++d)
            shape.push_back(1 + static_cast<std::size_t>(tg::uniform({1}, 0, 7, gen)(0)));
        Array x = tg::normal(shape, 0.0, 1.0, gen);
        x.flat(0) = 0;  // relu'(0) = 0 on both
        CAPTURE(tg::shape_str(shape));
        CHECK_FAST_MATCHES_REFERENCE(std::vector<Array>{x}, relu);
    }
    // Large enough to be split between threads: the same numbers as the reference.
    const std::size_t saved = tg::num_threads();
    tg::set_num_threads(2);
    CHECK_FAST_MATCHES_REFERENCE(std::vector<Array>{tg::normal({4, 8, 64, 64}, 0.0, 1.0, gen)},
                                 relu);
    tg::set_num_threads(saved);
}

namespace {

/// tanh, sigmoid, leaky_relu (three slopes), gelu and gelu "tanh": every op of
/// kernels/{reference,fast}/activation.cpp.
const std::vector<std::pair<std::string, tgtest::OpFn>>& activation_ops() {
    using V = std::vector<Tensor>;
    static const std::vector<std::pair<std::string, tgtest::OpFn>> ops{
        {"tanh", [](const V& in) { return tg::tanh(in[0]); }},
        {"sigmoid", [](const V& in) { return tg::sigmoid(in[0]); }},
        {"leaky_relu", [](const V& in) { return tg::leaky_relu(in[0]); }},
        {"leaky_relu 0.2", [](const V& in) { return tg::leaky_relu(in[0], 0.2); }},
        {"leaky_relu -1.5", [](const V& in) { return tg::leaky_relu(in[0], -1.5); }},
        {"gelu", [](const V& in) { return tg::gelu(in[0]); }},
        {"gelu tanh", [](const V& in) { return tg::gelu(in[0], "tanh"); }}};
    return ops;
}

}  // namespace

TEST_CASE("fast vs reference: tanh, sigmoid, leaky_relu, gelu on 40 random shapes, odd sizes") {
    tg::Generator gen(2727);
    for (int trial = 0; trial < 40; ++trial) {
        // Sizes 1 to 4 dims of 1 to 13: most totals are not a multiple of the SIMD width, so
        // the fast kernels' last, partial batch is tested too.
        tg::Shape shape;
        const auto rank = 1 + static_cast<std::size_t>(tg::uniform({1}, 0, 4, gen)(0));
        for (std::size_t d = 0; d < rank; ++d)
            shape.push_back(1 + static_cast<std::size_t>(tg::uniform({1}, 0, 13, gen)(0)));
        // Every other trial wide (σ = 20), where tanh, σ and Φ saturate and e^-x²/2 underflows.
        Array x = tg::normal(shape, 0.0, trial % 2 == 0 ? 2.0 : 20.0, gen);
        x.flat(0) = 0;  // the kinks and the centre
        CAPTURE(tg::shape_str(shape));
        for (const auto& [name, op] : activation_ops()) {
            const std::string op_name = name;  // (CAPTURE cannot name a structured binding)
            CAPTURE(op_name);
            CHECK_FAST_MATCHES_REFERENCE(std::vector<Array>{x}, op);
        }
    }
}

TEST_CASE("fast vs reference: the fast activations give the same bytes on 1 and 2 threads") {
    // 140001 values: more than two threads' shares of the cheapest kernels (2^16 values each,
    // tapegrad/parallel.hpp), so both threads work, and not a multiple of the SIMD width.
    tg::Generator gen(28);
    const std::vector<Array> x{tg::normal({140001}, 0.0, 3.0, gen)};
    for (const auto& [name, op] : activation_ops()) {
        const std::string op_name = name;
        CAPTURE(op_name);
        std::vector<Array> by_threads[2];
        for (const std::size_t threads : {1, 2}) {
            const tgtest::ThreadCount count(threads);
            by_threads[threads - 1] = tgtest::run_with_kernels(tg::Kernels::fast, x, op);
        }
        for (std::size_t i = 0; i < 2; ++i) {
            const Array& one = by_threads[0][i];
            const Array& two = by_threads[1][i];
            REQUIRE(one.size() == two.size());
            CHECK_MESSAGE(std::memcmp(one.data(), two.data(), one.size() * sizeof(tg::real)) == 0,
                          (i == 0 ? "output" : "gradient") << " differs between 1 and 2 threads");
        }
        const tgtest::ThreadCount count(2);
        CHECK_FAST_MATCHES_REFERENCE(x, op);
    }
}

TEST_CASE(
    "fast vs reference: a sweep of x over [-30, 30], outputs and gradients within 8 eps "
    "(64 in float64)") {
    // 2^17 + 1 evenly spaced values (steps of 4.6e-4); the upstream gradient is 1, so the
    // gradient is the derivative itself. The error is counted in units of the precision's
    // epsilon at the scale max(|reference|, 1): tanh and σ are within [-1, 1], GELU's
    // Φ(x) = ½ (1 + erf) cancels for x < -3 in both kernels alike. The largest is in the
    // check's message (shown with -s).
    const std::size_t n = (std::size_t{1} << 17) + 1;
    Array x = Array::from_shape({n});
    for (std::size_t i = 0; i < n; ++i)
        x.flat(i) = static_cast<tg::real>(-30.0 + 60.0 * static_cast<double>(i) /
                                                      static_cast<double>(n - 1));
    const double eps = std::numeric_limits<tg::real>::epsilon();
    for (const auto& [name, op] : activation_ops()) {
        const std::string op_name = name;
        CAPTURE(op_name);
        std::vector<Array> result[2];
        for (const tg::Kernels k : tgtest::kBothKernels) {
            tgtest::KernelsGuard guard(k);
            Tensor leaf_x(x, true);
            tg::Tape tape;
            const Tensor y = op({leaf_x});
            Array ones = Array::from_shape({n});
            ones.fill(1);
            tape.backward(y, ones);
            result[k == tg::Kernels::fast] = {y.value(), leaf_x.grad()};
        }
        double worst[2] = {0, 0};
        for (std::size_t t = 0; t < 2; ++t) {
            for (std::size_t i = 0; i < n; ++i) {
                const double r = result[0][t].flat(i), f = result[1][t].flat(i);
                worst[t] = std::max(worst[t], std::abs(f - r) / (eps * std::max(std::abs(r), 1.0)));
            }
        }
        INFO(op_name << ": fast - reference, at most " << worst[0] << " eps (output), " << worst[1]
                     << " eps (gradient)");
        // xsimd's float64 erf is the least exact: 52 eps measured (1.2e-14 of the scale).
        const double bound = tg::is_double ? 64 : 8;
        CHECK(worst[0] <= bound);
        CHECK(worst[1] <= bound);
    }
}
