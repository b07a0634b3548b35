// bench_conv_kernels — which convolution algorithm wins on which layer shape; and the fused
// ReLU + 2x2 max-pool kernel against tg::relu then tg::max_pool2d.
//
// For each layer of the benchmark network and of ch310_train_cnn, at several batch sizes,
// times forward and backward (dW + db, and dx where the layer has an input gradient) of
//   direct     : the direct kernels (src/ops/kernels/fast/conv2d_direct.*)
//   per-image  : im2col + one GEMM per image (the fast kernels' GEMM path, conv2d_gemm_*)
//   batched    : im2col of the whole batch into cols [K, N L] and one GEMM for all images
//   lanes      : the kernels with SIMD lanes across channels (src/ops/kernels/fast/
//                conv2d_lanes.*; "-" where they do not take the layer): the forward pass with
//                lanes across output channels, and the backward's two halves (dW + db, and dx)
//                also timed alone against the direct kernels'
//   1ch        : the kernels for one input channel (conv2d_one_channel.*), forward and dW + db,
//                on the layers they take (C = 1)
// on one thread (tapegrad's and BLAS's), and prints GFLOP/s. Times are the thread's CPU time
// (CLOCK_THREAD_CPUTIME_ID), not wall time, and the minimum over repetitions: on a shared,
// loaded machine that leaves out the time other processes held the core.
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include <xsimd/xsimd.hpp>
#include "../src/ops/kernels/fast/conv2d.hpp"
#include "../src/ops/kernels/fast/conv2d_direct.hpp"
#include "../src/ops/kernels/fast/conv2d_lanes.hpp"
#include "../src/ops/kernels/fast/conv2d_one_channel.hpp"
#include "../src/ops/kernels/fast/relu_max_pool2d.hpp"

#include "tapegrad/ops/gemm.hpp"
#include "tapegrad/parallel.hpp"
#include "tapegrad/tapegrad.hpp"

namespace {

using tg::real;
using tg::kernels::fast::DirectConvShape;

/// CPU time of the calling thread, in seconds.
double thread_seconds() {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

/// The fastest of `reps` runs of f after one to warm up; 1e30 (not run at all) if reps is 0.
double min_seconds(int reps, const std::function<void()>& f) {
    if (reps <= 0) return 1e30;
    f();  // warm up: caches, first-touch of buffers
    double best = 1e30;
    for (int i = 0; i < reps; ++i) {
        const double t0 = thread_seconds();
        f();
        best = std::min(best, thread_seconds() - t0);
    }
    return best;
}

/// cols [K, L] of one image for stride 1 (conv.cpp's im2col, written out plainly here).
void im2col(const DirectConvShape& s, const real* x, real* cols, std::size_t ld) {
    const std::size_t oh = s.oh(), ow = s.ow();
    for (std::size_t c = 0; c < s.c; ++c)
        for (std::size_t p = 0; p < s.kh; ++p)
            for (std::size_t q = 0; q < s.kw; ++q) {
                real* row = cols + ((c * s.kh + p) * s.kw + q) * ld;
                for (std::size_t i = 0; i < oh; ++i) {
                    const auto hi =
                        static_cast<std::ptrdiff_t>(i + p) - static_cast<std::ptrdiff_t>(s.pad_h);
                    for (std::size_t j = 0; j < ow; ++j) {
                        const auto wj = static_cast<std::ptrdiff_t>(j + q) -
                                        static_cast<std::ptrdiff_t>(s.pad_w);
                        const bool in = hi >= 0 && hi < static_cast<std::ptrdiff_t>(s.h) &&
                                        wj >= 0 && wj < static_cast<std::ptrdiff_t>(s.w);
                        row[i * ow + j] = in ? x[(c * s.h + static_cast<std::size_t>(hi)) * s.w +
                                                 static_cast<std::size_t>(wj)]
                                             : real(0);
                    }
                }
            }
}

struct Layer {
    const char* name;
    DirectConvShape s;  // n is set per batch size
    bool input_grad;
};

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"direct vs per-image GEMM vs batched GEMM convolution, one thread"};
    std::vector<std::size_t> sizes = {8, 64, 512};
    int reps = 10;
    bool fused_only = false, no_gemm = false;
    std::string only;
    app.add_option("--batch-sizes", sizes, "batch sizes");
    app.add_flag("--fused-only", fused_only, "only the relu + max_pool2d table");
    app.add_option("--reps", reps, "repetitions (the minimum is kept)");
    app.add_option("--only", only, "only the layers whose name contains this text");
    app.add_flag("--no-gemm", no_gemm, "skip the GEMM columns (printed as 0)");
    CLI11_PARSE(app, argc, argv);
    tg::set_num_threads(1);

    const Layer layers[] = {
        {"bench conv1 1->8 3x3 28x28", {0, 1, 28, 28, 8, 3, 3, 0, 0}, false},
        {"bench conv2 8->16 3x3 13x13", {0, 8, 13, 13, 16, 3, 3, 0, 0}, true},
        {"cnn conv1 1->6 5x5 p2 28x28", {0, 1, 28, 28, 6, 5, 5, 2, 2}, false},
        {"cnn conv2 6->16 5x5 14x14", {0, 6, 14, 14, 16, 5, 5, 0, 0}, true},
        // wider layers than the chapter's, for the rule's threshold on C kH kW
        {"16->32 3x3 p1 14x14 (K 144)", {0, 16, 14, 14, 32, 3, 3, 1, 1}, true},
        {"32->32 3x3 p1 14x14 (K 288)", {0, 32, 14, 14, 32, 3, 3, 1, 1}, true},
        {"64->64 3x3 p1 8x8 (K 576)", {0, 64, 8, 8, 64, 3, 3, 1, 1}, true},
    };
    std::printf("BLAS kernels: %s; SIMD: %zu-byte registers (%s)\n", tg::detail::blas_core(),
                sizeof(xsimd::batch<real>), xsimd::default_arch::name());
    std::printf("%-30s %5s  %-9s %9s %9s %9s %9s   (GFLOP/s, fwd / bwd = dW+db[+dx])\n", "layer",
                "N", "pass", "direct", "per-image", "batched", "lanes");
    for (const Layer& layer : layers) {
        if (fused_only) break;
        if (!only.empty() && std::string(layer.name).find(only) == std::string::npos) continue;
        for (std::size_t n : sizes) {
            DirectConvShape s = layer.s;
            s.n = n;
            const std::size_t K = s.c * s.kh * s.kw, L = s.oh() * s.ow();
            const double macs = static_cast<double>(n * s.o * K * L);
            tg::Array x = tg::uniform({n, s.c, s.h, s.w}, -1, 1);
            tg::Array w = tg::uniform({s.o, s.c, s.kh, s.kw}, -1, 1);
            tg::Array b = tg::uniform({s.o}, -1, 1);
            tg::Array gy = tg::uniform({n, s.o, s.oh(), s.ow()}, -1, 1);
            tg::Array y = tg::Array::from_shape({n, s.o, s.oh(), s.ow()});
            tg::Array dx = tg::Array::from_shape({n, s.c, s.h, s.w});
            tg::Array dw = tg::Array::from_shape({s.o, K}), db = tg::Array::from_shape({s.o});

            // direct
            const double d_fwd = min_seconds(reps, [&] {
                tg::kernels::fast::conv2d_direct_forward(s, x.data(), w.data(), b.data(), y.data());
            });
            const double d_bwd = min_seconds(reps, [&] {
                tg::kernels::fast::conv2d_direct_backward_weight(s, x.data(), gy.data(), dw.data(),
                                                                 db.data());
                if (layer.input_grad)
                    tg::kernels::fast::conv2d_direct_backward_input(s, gy.data(), w.data(),
                                                                    dx.data());
            });
            // per image: the fast kernels' im2col + GEMM path, whatever the rule would pick
            tg::kernels::Conv2dShape cs{};
            cs.n = n, cs.c = s.c, cs.h = s.h, cs.w = s.w, cs.o = s.o, cs.kh = s.kh, cs.kw = s.kw;
            cs.oh = s.oh(), cs.ow = s.ow(), cs.stride = 1, cs.pad = s.pad_h;
            const int gemm_reps = no_gemm ? 0 : reps;
            const double p_fwd = min_seconds(gemm_reps, [&] {
                tg::kernels::fast::conv2d_gemm_forward(y.data(), x.data(), w.data(), b.data(), cs);
            });
            const double p_bwd = min_seconds(gemm_reps, [&] {
                tg::kernels::fast::conv2d_gemm_backward(layer.input_grad ? dx.data() : nullptr,
                                                        dw.data(), db.data(), gy.data(), x.data(),
                                                        w.data(), cs);
            });
            // batched: cols [K, N L]; Y [O, N L] = W cols; then Y -> y [N, O, L]
            std::vector<real> cols(K * n * L), big(s.o * n * L), gbig(s.o * n * L);
            std::vector<real> dcols(K * n * L);
            const double b_fwd = min_seconds(gemm_reps, [&] {
                for (std::size_t i = 0; i < n; ++i)
                    im2col(s, x.data() + i * s.c * s.h * s.w, cols.data() + i * L, n * L);
                tg::detail::gemm(false, false, s.o, n * L, K, 1, w.data(), K, cols.data(), n * L, 0,
                                 big.data(), n * L);
                for (std::size_t i = 0; i < n; ++i)
                    for (std::size_t o = 0; o < s.o; ++o)
                        for (std::size_t l = 0; l < L; ++l)
                            y.data()[(i * s.o + o) * L + l] = big[o * n * L + i * L + l] + b[o];
            });
            const double b_bwd = min_seconds(gemm_reps, [&] {
                for (std::size_t i = 0; i < n; ++i)  // g [N, O, L] -> G [O, N L]
                    for (std::size_t o = 0; o < s.o; ++o)
                        std::copy_n(gy.data() + (i * s.o + o) * L, L,
                                    gbig.data() + o * n * L + i * L);
                for (std::size_t i = 0; i < n; ++i)
                    im2col(s, x.data() + i * s.c * s.h * s.w, cols.data() + i * L, n * L);
                tg::detail::gemm(false, true, s.o, K, n * L, 1, gbig.data(), n * L, cols.data(),
                                 n * L, 0, dw.data(), K);
                for (std::size_t o = 0; o < s.o; ++o) {
                    real t = 0;
                    for (std::size_t l = 0; l < n * L; ++l)
                        t += gbig[o * n * L + l];
                    db.data()[o] = t;
                }
                if (layer.input_grad)  // dcols = W^T G (col2im not timed: a lower bound)
                    tg::detail::gemm(true, false, K, n * L, s.o, 1, w.data(), K, gbig.data(), n * L,
                                     0, dcols.data(), n * L);
            });
            // lanes across channels: each half where it takes the layer, and both halves of
            // both kernels alone
            namespace fast = tg::kernels::fast;
            const bool lanes_w = fast::conv2d_lanes_weight_supports(s, 1);
            const bool lanes_x = layer.input_grad && fast::conv2d_lanes_input_supports(s, 1);
            const bool lanes_y = fast::conv2d_lanes_forward_supports(s, 1);
            const double l_fwd = !lanes_y ? 0 : min_seconds(reps, [&] {
                fast::conv2d_lanes_forward(s, x.data(), w.data(), b.data(), y.data());
            });
            const double d_dw = min_seconds(reps, [&] {
                fast::conv2d_direct_backward_weight(s, x.data(), gy.data(), dw.data(), db.data());
            });
            const double l_dw = !lanes_w ? 0 : min_seconds(reps, [&] {
                fast::conv2d_lanes_backward_weight(s, x.data(), gy.data(), dw.data(), db.data());
            });
            const double d_dx = !layer.input_grad ? 0 : min_seconds(reps, [&] {
                fast::conv2d_direct_backward_input(s, gy.data(), w.data(), dx.data());
            });
            const double l_dx = !lanes_x ? 0 : min_seconds(reps, [&] {
                fast::conv2d_lanes_backward_input(s, gy.data(), w.data(), dx.data());
            });
            const double bwd_macs = macs * (layer.input_grad ? 2 : 1);
            const auto rate = [](double m, double sec) {
                char text[16];
                if (sec > 0)
                    std::snprintf(text, sizeof text, "%9.1f", 2 * m / sec / 1e9);
                else
                    std::snprintf(text, sizeof text, "%9s", "-");
                return std::string(text);
            };
            const double lanes_bwd =
                lanes_w || lanes_x ? (lanes_w ? l_dw : d_dw) + (lanes_x ? l_dx : d_dx) : 0;
            std::printf("%-30s %5zu  %-9s %9.1f %9.1f %9.1f %s\n", layer.name, n, "forward",
                        2 * macs / d_fwd / 1e9, 2 * macs / p_fwd / 1e9, 2 * macs / b_fwd / 1e9,
                        rate(macs, l_fwd).c_str());
            std::printf("%-30s %5zu  %-9s %9.1f %9.1f %9.1f %s\n", layer.name, n, "backward",
                        2 * bwd_macs / d_bwd / 1e9, 2 * bwd_macs / p_bwd / 1e9,
                        2 * bwd_macs / b_bwd / 1e9, rate(bwd_macs, lanes_bwd).c_str());
            std::printf("%-30s %5zu  %-9s %s %9s %9s %s\n", layer.name, n, "  dW+db",
                        rate(macs, d_dw).c_str(), "", "", rate(macs, l_dw).c_str());
            if (fast::conv2d_one_channel_supports(s, 1)) {  // C = 1: conv2d_one_channel.*
                const double o_fwd = min_seconds(reps, [&] {
                    fast::conv2d_one_channel_forward(s, x.data(), w.data(), b.data(), y.data());
                });
                const double o_dw = min_seconds(reps, [&] {
                    fast::conv2d_one_channel_backward_weight(s, x.data(), gy.data(), dw.data(),
                                                             db.data());
                });
                std::printf("%-30s %5zu  %-9s %s   (one input channel, against direct %s)\n",
                            layer.name, n, "  1ch fwd", rate(macs, o_fwd).c_str(),
                            rate(macs, d_fwd).c_str());
                std::printf("%-30s %5zu  %-9s %s   (one input channel, against direct %s)\n",
                            layer.name, n, "  1ch dW", rate(macs, o_dw).c_str(),
                            rate(macs, d_dw).c_str());
            }
            if (layer.input_grad)
                std::printf("%-30s %5zu  %-9s %s %9s %9s %s\n", layer.name, n, "  dx",
                            rate(macs, d_dx).c_str(), "", "", rate(macs, l_dx).c_str());
        }
    }

    std::printf("\n%-30s %5s  %12s %12s   (ms, forward + backward, one thread)\n",
                "relu + max_pool2d 2x2", "N", "two ops", "fused");
    for (std::size_t n : sizes) {
        // c and h as plain variables: clang 14 cannot capture a structured binding in a lambda.
        for (const auto& shape : {std::pair<std::size_t, std::size_t>{8, 26}, {16, 11}}) {
            const std::size_t c = shape.first, h = shape.second;
            tg::Array x = tg::uniform({n, c, h, h}, -1, 1);
            tg::Array g = tg::uniform({n, c, h / 2, h / 2}, -1, 1);
            tg::Array y = tg::Array::from_shape(g.shape()), dx = tg::Array::from_shape(x.shape());
            std::vector<std::size_t> argmax(y.size());
            tg::Tensor xt(x, true);
            const double two_ops = min_seconds(reps, [&] {
                tg::Tape tape;
                tape.backward(tg::max_pool2d(tg::relu(xt), 2, 2, 0), g);
                xt.zero_grad();
            });
            const double one_pass = min_seconds(reps, [&] {
                tg::kernels::fast::relu_max_pool2x2_forward(y.data(), argmax.data(), x.data(),
                                                            n * c, h, h);
                tg::kernels::fast::relu_max_pool2x2_backward(dx.data(), g.data(), y.data(),
                                                             argmax.data(), n * c, h, h);
            });
            char label[64];
            std::snprintf(label, sizeof label, "[N, %zu, %zu, %zu]", c, h, h);
            std::printf("%-30s %5zu  %12.3f %12.3f\n", label, n, 1e3 * two_ops, 1e3 * one_pass);
        }
    }
}
