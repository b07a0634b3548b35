// conv2d (im2col + GEMM) against PyTorch and finite differences.
#include "conv_helpers.hpp"
#include "tapegrad/ops/conv.hpp"
#include "tapegrad/random.hpp"

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

/// Sets detail::conv2d_threads for one scope.
struct ConvThreads {
    explicit ConvThreads(std::size_t n) { tg::detail::conv2d_threads = n; }
    ~ConvThreads() { tg::detail::conv2d_threads = 0; }
};

TEST_CASE("conv2d matches PyTorch: output, dx, dW, db") {
    const auto& ref = tgtest::reference("conv");
    // 0: the automatic choice (one thread for these small batches); 3: the images split into
    // blocks on three threads (some blocks get one image, some none when N < 3).
    for (std::size_t threads : {0, 3}) {
        ConvThreads scope(threads);
        for (const ConvCase& k : kCases) {
            const std::string c = k.name;
            CAPTURE(threads);
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

TEST_CASE("conv2d: only the inputs that require grad get one") {
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

TEST_CASE("conv2d gradcheck (float64)" * doctest::skip(!tg::is_double)) {
    tg::Generator gen(5);
    struct Config {
        tg::Shape x, w;
        std::size_t stride, padding;
        bool bias;
    };
    for (std::size_t threads : {0, 2}) {  // 2: the batch's images split between two threads
        for (const Config& cfg : {Config{{2, 2, 5, 4}, {3, 2, 3, 3}, 1, 1, true},
                                  Config{{1, 3, 6, 7}, {2, 3, 2, 3}, 2, 0, false},
                                  Config{{2, 1, 5, 5}, {2, 1, 3, 3}, 2, 2, true}}) {
            ConvThreads scope(threads);
            CAPTURE(threads);
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

TEST_CASE("conv2d rejects bad shapes with a message naming them") {
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
}
