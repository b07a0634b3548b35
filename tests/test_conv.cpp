// conv2d (src/ops/conv.cpp): two kernels (kernels/{reference,fast}/conv2d.cpp: reference im2col +
// GEMM; fast: the direct convolution for small filters, im2col + GEMM otherwise).
//
// Sections (TEST_CASE name prefixes, e.g. ./tests_f32 -sf='*test_conv.cpp' -tc='vs PyTorch*'):
//   vs PyTorch:           tests/reference/gen_conv.py -> conv.txt, each kernel set and thread count
//   gradcheck float64:    central finite differences (float64 binary only)
//   errors:               bad shapes name the op, the shapes and what was expected
//   fast vs reference:    the fast kernels against the reference kernels
//   behaviour:            which inputs get a gradient
// (The fast kernels' direct convolution: tests/test_conv_direct.cpp.)
#include <cstring>

#include "../src/ops/kernels/fast/conv2d.hpp"
#include "../src/ops/kernels/fast/conv2d_direct.hpp"
#include "conv_helpers.hpp"
#include "tapegrad/ops/conv.hpp"
#include "tapegrad/parallel.hpp"
#include "tapegrad/random.hpp"
#include "thread_count.hpp"

using convtest::error_of;
using convtest::param;
using tg::Tensor;

namespace {
struct ConvCase {
    const char* name;
    std::size_t stride, padding;  // as in gen_conv.py
};
constexpr ConvCase kCases[] = {
    {"conv_s1_p0", 1, 0},
    {"conv_s2_p1_nonsquare", 2, 1},
    {"conv_s1_p1_nobias_rect_kernel", 1, 1},
    {"conv_s2_p0", 2, 0},
    {"conv_s3_p2_k5", 3, 2},
    {"conv_8to16", 1, 0},
    {"conv_pad_exceeds_input", 1, 2},
};
}  // namespace

/// One way to run conv2d, for one scope: the kernel set, the thread count, and how many images
/// the fast kernel puts in a block (0: its own choice).
struct ConvSetting {
    ConvSetting(tg::Kernels k, std::size_t threads, std::size_t images_per_block)
        : saved_threads(tg::num_threads()), kernels(k) {
        tg::set_num_threads(threads);
        tg::kernels::fast::conv2d_images_per_block = images_per_block;
    }
    ~ConvSetting() {
        tg::set_num_threads(saved_threads);
        tg::kernels::fast::conv2d_images_per_block = 0;
    }
    std::size_t saved_threads;
    tgtest::KernelsGuard kernels;
};

TEST_CASE("vs PyTorch: conv2d output, dx, dW, db") {
    const auto& ref = tgtest::reference("conv");
    // Reference kernels; fast kernels with their own blocks (one block for these small
    // batches) on one thread, and with one image per block on three threads.
    const struct {
        tg::Kernels kernels;
        std::size_t threads, images_per_block;
    } settings[] = {
        {tg::Kernels::reference, 1, 0}, {tg::Kernels::fast, 1, 0}, {tg::Kernels::fast, 3, 1}};
    for (const auto& setting : settings) {
        ConvSetting scope(setting.kernels, setting.threads, setting.images_per_block);
        for (const ConvCase& k : kCases) {
            const std::string c = k.name;
            const std::string kernel_set = tg::kernels_name();
            CAPTURE(kernel_set);
            CAPTURE(setting.threads);
            CAPTURE(c);
            const bool has_bias = ref.has(c + "/b");
            Tensor x = param(c, "x"), w = param(c, "w");
            Tensor b = has_bias ? param(c, "b") : Tensor{};
            tg::Tape tape;
            Tensor y = tg::conv2d(x, w, b, k.stride, k.padding);
            CHECK_MATCHES(y.value(), ref.at(c + "/y"));
            tape.backward(y, ref.at(c + "/gy"));
            CHECK_MATCHES(x.grad(), ref.at(c + "/dx"));
            CHECK_MATCHES_SCALED(w.grad(), ref.at(c + "/dw"));  // sums over batch and positions
            if (has_bias) CHECK_MATCHES_SCALED(b.grad(), ref.at(c + "/db"));
        }
    }
}

TEST_CASE("behaviour: conv2d, only the inputs that require grad get one") {
    const std::string c = "conv_s2_p1_nonsquare";
    const auto& ref = tgtest::reference("conv");
    Tensor x(ref.at(c + "/x")), w = param(c, "w"), b(ref.at(c + "/b"));  // an image batch
    tg::Tape tape;
    Tensor y = tg::conv2d(x, w, b, 2, 1);
    tape.backward(y, ref.at(c + "/gy"));
    CHECK_FALSE(x.has_grad());
    CHECK_FALSE(b.has_grad());
    CHECK_MATCHES_SCALED(w.grad(), ref.at(c + "/dw"));
}

TEST_CASE("gradcheck float64: conv2d" * doctest::skip(!tg::is_double)) {
    tg::Generator gen(5);
    struct Config {
        tg::Shape x, w;
        std::size_t stride, padding;
        bool bias;
    };
    // Reference kernels; fast kernels with one image per block on two threads.
    for (const tg::Kernels k : tgtest::kBothKernels) {
        const std::size_t threads = k == tg::Kernels::fast ? 2 : 1;
        for (const Config& cfg : {Config{{2, 2, 5, 4}, {3, 2, 3, 3}, 1, 1, true},
                                  Config{{1, 3, 6, 7}, {2, 3, 2, 3}, 2, 0, false},
                                  Config{{2, 1, 5, 5}, {2, 1, 3, 3}, 2, 2, true}}) {
            ConvSetting scope(k, threads, k == tg::Kernels::fast ? 1 : 0);
            const std::string kernel_set = tg::kernels_name();
            CAPTURE(kernel_set);
            CAPTURE(tg::shape_str(cfg.x));
            Tensor x(tg::normal(cfg.x, 0, 1, gen), true), w(tg::normal(cfg.w, 0, 1, gen), true);
            Tensor b = cfg.bias ? Tensor(tg::normal({cfg.w[0]}, 0, 1, gen), true) : Tensor{};
            const Tensor y0 = tg::conv2d(x, w, b, cfg.stride, cfg.padding);
            const tg::Array r = tg::normal(y0.shape(), 0, 1, gen);
            std::vector<Tensor> inputs{x, w};
            if (cfg.bias) inputs.push_back(b);
            CHECK_GRADCHECK(
                [&](const std::vector<Tensor>& in) {
                    const Tensor bias = in.size() == 3 ? in[2] : Tensor{};
                    return convtest::weighted_sum(
                        tg::conv2d(in[0], in[1], bias, cfg.stride, cfg.padding), r);
                },
                inputs);
        }
    }
}

TEST_CASE("errors: conv2d rejects bad shapes with a message naming them") {
    CHECK(error_of([] {
              tg::conv2d(Tensor::zeros({8, 3, 28, 28}), Tensor::zeros({8, 1, 3, 3}));
          }) ==
          "conv2d: input [8, 3, 28, 28] has 3 channels, weight expects 1 (weight "
          "[8, 1, 3, 3])");
    CHECK(error_of([] {
              tg::conv2d(Tensor::zeros({3, 28, 28}), Tensor::zeros({8, 3, 3, 3}));
          }) == "conv2d: expected a 4-D input [N, C, H, W], got [3, 28, 28]");
    CHECK(error_of([] {
              tg::conv2d(Tensor::zeros({1, 3, 8, 8}), Tensor::zeros({8, 3, 3}));
          }) == "conv2d: expected a 4-D weight [O, C, kH, kW], got [8, 3, 3]");
    CHECK(error_of([] {
              tg::conv2d(Tensor::zeros({2, 1, 4, 6}), Tensor::zeros({2, 1, 5, 5}), {}, 1, 0);
          }) ==
          "conv2d: kernel 5x5 does not fit the padded input 4x6 (input [2, 1, 4, 6], "
          "padding 0)");
    // With padding 1 the same kernel fits (6x8): no error.
    CHECK(error_of([] {
              tg::conv2d(Tensor::zeros({2, 1, 4, 6}), Tensor::zeros({2, 1, 5, 5}), {}, 1, 1);
          }) == "");
    CHECK(error_of([] {
              tg::conv2d(Tensor::zeros({1, 1, 4, 4}), Tensor::zeros({2, 1, 3, 3}),
                         Tensor::zeros({3}));
          }) == "conv2d: bias [3] does not match weight [2, 1, 3, 3]: expected [2]");
    CHECK(error_of([] {
              tg::conv2d(Tensor::zeros({1, 1, 4, 4}), Tensor::zeros({2, 1, 3, 3}), {}, 0);
          }) == "conv2d: stride must be positive, got 0");
    // PyTorch: "Only zero batch or zero channel inputs are supported". With padding the kernel
    // would fit; the fast kernels once read the empty rows (UBSan in tests/fuzz/fuzz_shapes.cpp).
    CHECK(error_of([] {
              tg::conv2d(Tensor::zeros({1, 1, 3, 0}), Tensor::zeros({2, 1, 1, 1}), {}, 1, 1);
          }) ==
          "conv2d: input [1, 1, 3, 0] has images of 0 rows or columns: only a batch of 0 "
          "images or 0 channels may be empty");
    CHECK(error_of([] {
              tg::conv2d(Tensor::zeros({2, 3, 0, 5}), Tensor::zeros({2, 3, 3, 3}), {}, 1, 2);
          }) ==
          "conv2d: input [2, 3, 0, 5] has images of 0 rows or columns: only a batch of 0 "
          "images or 0 channels may be empty");
    // An empty batch: an empty output, as PyTorch's [0, 2, 5, 5].
    CHECK(tg::conv2d(Tensor::zeros({0, 1, 3, 3}), Tensor::zeros({2, 1, 1, 1}), {}, 1, 1).shape() ==
          tg::Shape{0, 2, 5, 5});
}

// ---------------------------------------------------------------------------------------------
// fast vs reference
// ---------------------------------------------------------------------------------------------

TEST_CASE("fast vs reference: conv2d on 200 random shapes") {
    // Two threads on any runner: with one image per block the fast kernel's blocks are split
    // between them (a block lost or summed out of order on the second thread shows here).
    const tgtest::ThreadCount two(2);
    tg::Generator gen(31);
    const auto pick = [&gen](std::size_t lo, std::size_t hi) {
        return lo + static_cast<std::size_t>(tg::uniform({1}, 0.0, double(hi - lo + 1), gen)(0));
    };
    for (int trial = 0; trial < 200; ++trial) {
        const std::size_t kh = pick(1, 3), kw = pick(1, 3), stride = pick(1, 2), pad = pick(0, 2);
        const tg::Shape xs{pick(1, 5), pick(1, 3), pick(kh, 7), pick(kw, 7)};
        const tg::Shape ws{pick(1, 4), xs[1], kh, kw};
        const bool bias = trial % 3 != 0;
        // Many blocks of one image (the fast kernel's partial sums), or the automatic blocks.
        tg::kernels::fast::conv2d_images_per_block = trial % 2 == 0 ? 1 : 0;
        CAPTURE(tg::shape_str(xs));
        CAPTURE(tg::shape_str(ws));
        CAPTURE(stride);
        CAPTURE(pad);
        std::vector<tg::Array> values{tg::normal(xs, 0.0, 1.0, gen), tg::normal(ws, 0.0, 0.5, gen)};
        if (bias) values.push_back(tg::normal({ws[0]}, 0.0, 0.5, gen));
        CHECK_FAST_MATCHES_REFERENCE(values, [=](const std::vector<Tensor>& in) {
            return tg::conv2d(in[0], in[1], bias ? in[2] : Tensor{}, stride, pad);
        });
    }
    tg::kernels::fast::conv2d_images_per_block = 0;
}

// The fast kernels' rule: the direct convolution for the chapter's small filters, im2col + GEMM
// otherwise (src/ops/kernels/fast/conv2d.cpp). The random shapes above take both paths; here
// the chapter's own layers, with enough images for several of the direct kernels' 8-image
// blocks of dW, at 1 and 3 threads (bit-identical), against the reference kernels.
TEST_CASE(
    "fast vs reference: conv2d on the layers that take the "
    "direct path, at 1 and 3 threads") {
    struct Layer {
        const char* name;
        tg::Shape x, w;
        std::size_t padding;
        bool direct;  // what the rule should pick
    };
    const Layer layers[] = {
        {"ch310_train_cnn conv1", {17, 1, 28, 28}, {6, 1, 5, 5}, 2, true},
        {"ch310_train_cnn conv2", {17, 6, 14, 14}, {16, 6, 5, 5}, 0, true},
        {"bench conv1", {9, 1, 28, 28}, {8, 1, 3, 3}, 0, true},
        {"bench conv2", {9, 8, 13, 13}, {16, 8, 3, 3}, 0, true},
        {"rectangular 2x7 kernel", {3, 2, 9, 11}, {5, 2, 2, 7}, 1, true},
        {"C kH kW = 153 > 150: GEMM", {3, 17, 6, 6}, {4, 17, 3, 3}, 1, false},
        {"O = 17 > 16 filters: GEMM", {2, 2, 7, 7}, {17, 2, 3, 3}, 1, false},
        {"padding = kernel: GEMM", {2, 2, 5, 5}, {3, 2, 1, 1}, 1, false},
        {"kW = 8 > 7: GEMM", {2, 1, 4, 10}, {2, 1, 1, 8}, 0, false},
    };
    tg::Generator gen(1414);
    for (const Layer& layer : layers) {
        CAPTURE(layer.name);
        tg::kernels::Conv2dShape s{};
        s.n = layer.x[0], s.c = layer.x[1], s.h = layer.x[2], s.w = layer.x[3];
        s.o = layer.w[0], s.kh = layer.w[2], s.kw = layer.w[3];
        s.stride = 1, s.pad = layer.padding;
        s.oh = s.h + 2 * s.pad - s.kh + 1, s.ow = s.w + 2 * s.pad - s.kw + 1;
        CHECK(tg::kernels::fast::conv2d_forward_takes_direct(s) == layer.direct);
        // the backward rule: the same shapes, at any SIMD width (see conv2d.cpp)
        CHECK(tg::kernels::fast::conv2d_backward_takes_direct(s) == layer.direct);
        const std::vector<tg::Array> values{tg::normal(layer.x, 0.0, 1.0, gen),
                                            tg::normal(layer.w, 0.0, 0.5, gen),
                                            tg::normal({layer.w[0]}, 0.0, 0.5, gen)};
        const std::size_t pad = layer.padding;
        const tgtest::OpFn op = [pad](const std::vector<Tensor>& in) {
            return tg::conv2d(in[0], in[1], in[2], 1, pad);
        };
        CHECK_FAST_MATCHES_REFERENCE(values, op);
        std::vector<tg::Array> one, three;
        {
            ConvSetting scope(tg::Kernels::fast, 1, 0);
            one = tgtest::run_with_kernels(tg::Kernels::fast, values, op);
        }
        {
            ConvSetting scope(tg::Kernels::fast, 3, 0);
            three = tgtest::run_with_kernels(tg::Kernels::fast, values, op);
        }
        REQUIRE(one.size() == three.size());
        for (std::size_t i = 0; i < one.size(); ++i) {
            CAPTURE(i);  // 0: y, then dx, dW, db
            CHECK(std::memcmp(one[i].data(), three[i].data(), one[i].size() * sizeof(tg::real)) ==
                  0);
        }
    }
}
