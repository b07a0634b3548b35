// max_pool2d and avg_pool2d (src/ops/pool.cpp): two kernels each
// (kernels/{reference,fast}/pool.cpp).
//
// Sections (TEST_CASE name prefixes, e.g. ./tests_f32 -sf='*test_pool*' -tc='gradcheck*'):
//   vs PyTorch:           tests/reference/gen_conv.py -> conv.txt, with each kernel set
//   gradcheck float64:    central finite differences (float64 binary only)
//   errors:               bad arguments name the op and what was expected
//   fast vs reference:    the fast kernels against the reference kernels
//   behaviour:            padding, ties and NaN as PyTorch treats them
// (The fused relu + 2x2 max-pool fast kernel: tests/test_fused.cpp.)
#include <cmath>
#include <string>

#include "conv_helpers.hpp"
#include "tapegrad/ops/pool.hpp"
#include "tapegrad/random.hpp"

using convtest::error_of;
using convtest::param;
using tg::Tensor;

namespace {
struct PoolCase {
    const char* name;
    std::size_t kernel, stride, padding;  // as in gen_conv.py; stride 0 = PyTorch's None
};
constexpr PoolCase kCases[] = {
    {"k2", 2, 0, 0},       {"k3_s2_p1_nonsquare", 3, 2, 1}, {"k3_s1", 3, 1, 0},
    {"k2_s1_p1", 2, 1, 1}, {"k4_s3_p2_odd", 4, 3, 2},       {"k2_odd_size", 2, 0, 0},
};
using PoolFn = Tensor (*)(const Tensor&, std::size_t, std::size_t, std::size_t);

void check_against_pytorch(const std::string& prefix, PoolFn pool) {
    const auto& ref = tgtest::reference("conv");
    for (const PoolCase& k : kCases) {
        const std::string c = prefix + k.name;
        CAPTURE(c);
        Tensor x = param(c, "x");
        tg::Tape tape;
        Tensor y = pool(x, k.kernel, k.stride, k.padding);
        CHECK_MATCHES(y.value(), ref.at(c + "/y"));
        tape.backward(y, ref.at(c + "/gy"));
        CHECK_MATCHES(x.grad(), ref.at(c + "/dx"));
    }
}

void check_gradients(PoolFn pool) {
    tg::Generator gen(9);
    for (const PoolCase& k : kCases) {
        CAPTURE(k.name);
        // Random normal inputs: no ties in a max-pool window, so the max is differentiable.
        Tensor x(tg::normal({2, 2, 7, 6}, 0, 1, gen), true);
        const tg::Array r = tg::normal(pool(x, k.kernel, k.stride, k.padding).shape(), 0, 1, gen);
        CHECK_GRADCHECK(
            [&](const std::vector<Tensor>& in) {
                return convtest::weighted_sum(pool(in[0], k.kernel, k.stride, k.padding), r);
            },
            {x});
    }
}
}  // namespace

TEST_CASE("vs PyTorch: max_pool2d output and dx") {
    for (const tg::Kernels k : tgtest::kBothKernels) {
        tgtest::KernelsGuard guard(k);
        const std::string kernel_set = tg::kernels_name();
        CAPTURE(kernel_set);
        check_against_pytorch("max_", tg::max_pool2d);
    }
}

TEST_CASE("vs PyTorch: avg_pool2d output and dx (count_include_pad)") {
    for (const tg::Kernels k : tgtest::kBothKernels) {
        tgtest::KernelsGuard guard(k);
        const std::string kernel_set = tg::kernels_name();
        CAPTURE(kernel_set);
        check_against_pytorch("avg_", tg::avg_pool2d);
    }
}

TEST_CASE("gradcheck float64: max_pool2d" * doctest::skip(!tg::is_double)) {
    check_gradients(tg::max_pool2d);
}

TEST_CASE("gradcheck float64: avg_pool2d" * doctest::skip(!tg::is_double)) {
    check_gradients(tg::avg_pool2d);
}

TEST_CASE("behaviour: max_pool2d never picks the padding, even when every input is negative") {
    Tensor x = Tensor::full({1, 1, 2, 2}, -5);
    x.value()(0, 0, 1, 1) = -3;
    Tensor y = tg::max_pool2d(x, 2, 1, 1);  // 2x2 windows over the padded 4x4
    CHECK(y.value() == tg::Array({{{{-5, -5, -5}, {-5, -3, -3}, {-5, -3, -3}}}}));
}

TEST_CASE("errors: pooling rejects bad arguments with a message naming them") {
    for (PoolFn pool : {PoolFn(tg::max_pool2d), PoolFn(tg::avg_pool2d)}) {
        const std::string op = pool == PoolFn(tg::max_pool2d) ? "max_pool2d" : "avg_pool2d";
        CAPTURE(op);
        CHECK(error_of([&] {
                  pool(Tensor::zeros({3, 8, 8}), 2, 0, 0);
              }) == op + ": expected a 4-D input [N, C, H, W], got [3, 8, 8]");
        CHECK(error_of([&] {
                  pool(Tensor::zeros({1, 1, 8, 8}), 3, 1, 2);
              }) == op + ": padding 2 is more than half the kernel size 3");
        CHECK(error_of([&] {
                  pool(Tensor::zeros({1, 1, 2, 5}), 3, 0, 0);
              }) ==
              op +
                  ": kernel 3x3 does not fit the padded input 2x5 (input [1, 1, 2, 5], padding 0)");
        CHECK(error_of([&] {
                  pool(Tensor::zeros({1, 1, 2, 5}), 0, 0, 0);
              }) == op + ": kernel size must be positive, got 0");
    }
}

TEST_CASE(
    "behaviour: max_pool2d, a tie goes to the first maximum in scan order, a NaN always wins") {
    // PyTorch: torch.nn.functional.max_pool2d(torch.tensor([[[[1., 3.], [3., 2.]]]]), 2,
    // return_indices=True) gives value 3 at index 1; with a NaN at index 2 the output is NaN
    // with index 2. The gradient follows the index.
    for (const auto& [x0, expect_at] :
         std::vector<std::pair<tg::Array, std::size_t>>{{tg::Array{1, 3, 3, 2}, 1},
                                                        {tg::Array{1, 3, NAN, 2}, 2},
                                                        {tg::Array{5, 5, 5, 5}, 0}}) {
        tg::Array a = x0;
        a.reshape({1, 1, 2, 2});
        tg::Tensor x(a, true);
        tg::Tape tape;
        tg::Tensor y = tg::max_pool2d(x, 2);
        tape.backward(y);
        for (std::size_t i = 0; i < 4; ++i)
            CHECK(x.grad().flat(i) == (i == expect_at ? 1 : 0));
        if (expect_at == 2) {
            CHECK(std::isnan(y.item()));
        } else {
            CHECK(y.item() == x0.flat(expect_at));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// fast vs reference
// ---------------------------------------------------------------------------------------------

TEST_CASE("fast vs reference: max_pool2d, avg_pool2d on 200 random shapes") {
    tg::Generator gen(17);
    const auto pick = [&gen](std::size_t lo, std::size_t hi) {
        return lo + static_cast<std::size_t>(tg::uniform({1}, 0.0, double(hi - lo + 1), gen)(0));
    };
    for (int trial = 0; trial < 200; ++trial) {
        const bool max = trial % 2 == 0;
        // Every fourth case is the fast path's 2x2 window, stride 2, no padding.
        const std::size_t k = trial % 4 == 0 ? 2 : pick(1, 3);
        const std::size_t stride = trial % 4 == 0 ? 2 : pick(1, 3);
        const std::size_t pad = trial % 4 == 0 ? 0 : pick(0, k / 2);
        const tg::Shape shape{pick(1, 3), pick(1, 3), pick(k, 9), pick(k, 9)};
        tg::Array x = tg::normal(shape, 0.0, 1.0, gen);
        if (trial % 8 == 4) x.flat(pick(0, x.size() - 1)) = std::nan("");  // a NaN wins
        if (trial % 8 == 6) x.fill(1.0);                                   // ties everywhere
        CAPTURE(max);
        CAPTURE(tg::shape_str(shape));
        CAPTURE(k);
        CAPTURE(stride);
        CAPTURE(pad);
        const tgtest::OpFn fn = [=](const std::vector<Tensor>& in) {
            return max ? tg::max_pool2d(in[0], k, stride, pad)
                       : tg::avg_pool2d(in[0], k, stride, pad);
        };
        const auto ref =
            tgtest::run_with_kernels(tg::Kernels::reference, std::vector<tg::Array>{x}, fn);
        const auto fast =
            tgtest::run_with_kernels(tg::Kernels::fast, std::vector<tg::Array>{x}, fn);
        // Pooling does no arithmetic that could round differently (a max, or the same sums in
        // the same order): the fast kernels give the reference's numbers exactly, NaN included.
        for (std::size_t i = 0; i < ref.size(); ++i) {
            CAPTURE(i);
            CHECK(ref[i].shape() == fast[i].shape());
            bool same = true;
            for (std::size_t j = 0; j < ref[i].size(); ++j) {
                const double a = ref[i].flat(j), b = fast[i].flat(j);
                same = same && (a == b || (std::isnan(a) && std::isnan(b)));
            }
            CHECK(same);
        }
    }
}
