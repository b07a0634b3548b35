// linear (src/ops/linear.cpp): y = x W^T + b.
//
// Sections (TEST_CASE name prefixes, e.g. ./tests_f32 -sf='*test_linear*' -tc='errors*'):
//   vs PyTorch:           tests/reference/gen_conv.py -> conv.txt
//   gradcheck float64:    central finite differences (float64 binary only)
//   errors:               bad shapes name the op, the shapes and what was expected
//   fast vs reference:    none: one kernel pair for both sets (kernels/linear.cpp), a BLAS call
//   behaviour:            which inputs get a gradient, nothing recorded without a tape
#include "conv_helpers.hpp"
#include "tapegrad/ops/linear.hpp"
#include "tapegrad/random.hpp"

using convtest::error_of;
using convtest::param;
using tg::Tensor;

TEST_CASE("vs PyTorch: linear output, dx, dW, db") {
    const auto& ref = tgtest::reference("conv");
    for (std::string c : {"linear_bias", "linear_nobias", "linear_3d"}) {
        CAPTURE(c);
        const bool has_bias = ref.has(c + "/b");
        Tensor x = param(c, "x"), w = param(c, "w");
        Tensor b = has_bias ? param(c, "b") : Tensor{};
        tg::Tape tape;
        Tensor y = tg::linear(x, w, b);
        CHECK_MATCHES(y.value(), ref.at(c + "/y"));
        tape.backward(y, ref.at(c + "/gy"));
        CHECK_MATCHES(x.grad(), ref.at(c + "/dx"));
        CHECK_MATCHES_SCALED(w.grad(), ref.at(c + "/dw"));  // sums over the batch
        if (has_bias) CHECK_MATCHES_SCALED(b.grad(), ref.at(c + "/db"));
    }
}

TEST_CASE(
    "behaviour: linear, an input that does not require grad gets none, nothing recorded without "
    "a tape") {
    tg::Generator gen(3);
    Tensor x(tg::normal({4, 3}, 0, 1, gen)), w(tg::normal({2, 3}, 0, 1, gen), true);
    {
        Tensor y = tg::linear(x, w);  // no tape
        CHECK_FALSE(y.requires_grad());
    }
    tg::Tape tape;
    Tensor y = tg::linear(x, w);
    CHECK(tape.size() == 1);
    tape.backward(y, tg::normal({4, 2}, 0, 1, gen));
    CHECK_FALSE(x.has_grad());
    CHECK(w.has_grad());
}

TEST_CASE("gradcheck float64: linear" * doctest::skip(!tg::is_double)) {
    tg::Generator gen(11);
    Tensor x(tg::normal({3, 4}, 0, 1, gen), true), w(tg::normal({2, 4}, 0, 1, gen), true);
    Tensor b(tg::normal({2}, 0, 1, gen), true);
    const tg::Array r = tg::normal({3, 2}, 0, 1, gen);
    CHECK_GRADCHECK(
        [&](const std::vector<Tensor>& in) {
            return convtest::weighted_sum(tg::linear(in[0], in[1], in[2]), r);
        },
        {x, w, b});
    CHECK_GRADCHECK(
        [&](const std::vector<Tensor>& in) {
            return convtest::weighted_sum(tg::linear(in[0], in[1]), r);
        },
        {x, w});
}

TEST_CASE("errors: linear rejects mismatched shapes with a message naming them") {
    Tensor x = Tensor::zeros({8, 10}), w = Tensor::zeros({5, 12});
    CHECK(error_of([&] { tg::linear(x, w); }) ==
          "linear: input [8, 10] has 10 features, weight [5, 12] expects 12");
    CHECK(error_of([&] { tg::linear(x, Tensor::zeros({10})); }) ==
          "linear: expected a 2-D weight [out, in], got [10]");
    CHECK(error_of([&] {
              tg::linear(x, Tensor::zeros({5, 10}), Tensor::zeros({4}));
          }) == "linear: bias [4] does not match weight [5, 10]: expected [5]");
    CHECK(error_of([&] {
              tg::linear(Tensor::scalar(1), Tensor::zeros({5, 1}));
          }) == "linear: expected an input [N, in] (at least 1-D), got []");
}
