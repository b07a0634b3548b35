// conv2d, fast: two algorithms, and the rule that picks one per layer shape (conv2d_forward,
// conv2d_backward at the bottom of the file):
//   direct  the direct convolution of conv2d_direct.cpp (no im2col, no BLAS), for the small
//           filters of the chapter's CNNs;
//   GEMM    the reference's im2col + GEMM per image, with the batch cut into a fixed set of
//           blocks of images that threads share (below).
//
// Determinism by design: how many images a block holds depends only on the shapes (enough
// multiply-adds per block to pay for a thread, kMinWorkPerBlock), never on the thread count.
// Each block sums its images' dW and db into its own partial sums, and the partials are added
// in block order. BLAS runs single-threaded inside a block (detail::gemm). So 1 thread or 16
// give bit-identical numbers; threads only pick which block to run next.
//
// Why one image at a time and not one GEMM over the whole batch (cols [K, N·L]): measured on
// the MNIST CNN's layers (K = 9 or 72, O = 8 or 16), the per-image buffers stay in cache, y[n]
// comes out of the GEMM already in [O, OH, OW] layout (the batched product needs a transpose
// to [N, O, OH, OW] and back), and BLAS runs these per-image products as fast or faster. The
// backward pass rebuilds cols image by image instead of keeping all N of them from the
// forward pass: that costs one more im2col but no N·K·L buffer (keeping them measured no
// faster at batch 64, and slower at 512).
#include "conv2d.hpp"

#include <algorithm>
#include <vector>

#include "../im2col.hpp"
#include "conv2d_direct.hpp"
#include "conv2d_lanes.hpp"
#include "conv2d_one_channel.hpp"
#include "tapegrad/ops/gemm.hpp"
#include "tapegrad/parallel.hpp"

namespace tg::kernels::fast {

namespace {

/// The least work worth a block of its own: 2^22 multiply-adds, about 0.15 ms (waking a
/// thread costs some 40 microseconds).
constexpr std::size_t kMinWorkPerBlock = std::size_t{1} << 22;

/// The fixed blocks of images: `per` images each (the last may have fewer), `count` blocks.
struct ImageBlocks {
    std::size_t per, count;
    std::size_t first(std::size_t b) const { return b * per; }
    std::size_t last(std::size_t b, std::size_t n) const { return std::min(n, (b + 1) * per); }
};

ImageBlocks image_blocks(const Conv2dShape& s) {
    const std::size_t per_image = std::max<std::size_t>(1, s.o * s.k() * s.l());
    std::size_t per = (kMinWorkPerBlock + per_image - 1) / per_image;
    if (conv2d_images_per_block > 0) per = conv2d_images_per_block;
    return {per, (s.n + per - 1) / per};
}

}  // namespace

void conv2d_gemm_forward(real* y, const real* x, const real* weight, const real* bias,
                         const Conv2dShape& s) {
    const ImageBlocks blocks = image_blocks(s);
    const std::size_t K = s.k(), L = s.l(), x_image = s.c * s.h * s.w, y_image = s.o * L;
    parallel_for_blocks(blocks.count, [&](std::size_t b) {
        std::vector<real> cols(K * L);  // reused for every image of the block
        for (std::size_t n = blocks.first(b); n < blocks.last(b, s.n); ++n) {
            real* yn = y + n * y_image;
            for (std::size_t o = 0; o < s.o; ++o)
                std::fill(yn + o * L, yn + (o + 1) * L, bias ? bias[o] : real(0));
            if (L == 0 || s.o == 0 || K == 0) continue;
            im2col(s, x + n * x_image, cols.data());
            detail::gemm(false, false, s.o, L, K, 1, weight, K, cols.data(), L, 1, yn, L);
        }
    });
}

void conv2d_gemm_backward(real* dx, real* dweight, real* dbias, const real* dy, const real* x,
                          const real* weight, const Conv2dShape& s) {
    const ImageBlocks blocks = image_blocks(s);
    const std::size_t K = s.k(), L = s.l(), x_image = s.c * s.h * s.w, y_image = s.o * L;
    if (dx) std::fill(dx, dx + s.n * x_image, real(0));
    if (dweight) std::fill(dweight, dweight + s.o * K, real(0));
    if (dbias) std::fill(dbias, dbias + s.o, real(0));
    if (L == 0 || s.o == 0 || blocks.count == 0) return;

    // Each block's own dW [O, K] and db [O], added in block order at the end.
    std::vector<std::vector<real>> block_dw(blocks.count), block_db(blocks.count);
    parallel_for_blocks(blocks.count, [&](std::size_t b) {
        std::vector<real>& dw = block_dw[b];
        std::vector<real>& db = block_db[b];
        if (dweight) dw.assign(s.o * K, real(0));
        if (dbias) db.assign(s.o, real(0));
        std::vector<real> cols(dweight ? K * L : 0), dcols(dx ? K * L : 0);
        const std::vector<real> ones(dbias ? L : 0, real(1));
        for (std::size_t n = blocks.first(b); n < blocks.last(b, s.n); ++n) {
            const real* G = dy + n * y_image;  // dL/dy[n] [O, L]
            if (dbias) {                       // db [O] += G [O, L] · 1 [L]
                detail::gemm(false, false, s.o, 1, L, 1, G, L, ones.data(), 1, 1, db.data(), 1);
            }
            if (K == 0) continue;
            if (dweight) {  // dW [O, K] += G [O, L] · colsᵀ [L, K]
                im2col(s, x + n * x_image, cols.data());
                detail::gemm(false, true, s.o, K, L, 1, G, L, cols.data(), L, 1, dw.data(), K);
            }
            if (dx) {  // dcols [K, L] = Wᵀ G;  dx[n] = col2im(dcols)
                detail::gemm(true, false, K, L, s.o, 1, weight, K, G, L, 0, dcols.data(), L);
                col2im(s, dcols.data(), dx + n * x_image);
            }
        }
    });
    for (std::size_t b = 0; b < blocks.count; ++b) {  // the fixed order of the reduction
        if (dweight) {
            for (std::size_t i = 0; i < s.o * K; ++i)
                dweight[i] += block_dw[b][i];
        }
        if (dbias) {
            for (std::size_t o = 0; o < s.o; ++o)
                dbias[o] += block_db[b][o];
        }
    }
}

// The rule, per layer shape (measured with bench/bench_conv_kernels.cpp, one thread, and inside
// the training step with bench/bench_tapegrad; the tables are in docs/performance.md,
// "Convolution kernels: which algorithm for which layer"):
//   forward and backward: direct when the direct kernels apply (stride 1, kW <= 7, padding <
//   kernel), the filters are short, C kH kW <= 150, and few, O <= 16; GEMM otherwise.
// Where C kH kW and O are small (the chapter's layers: C kH kW = 9 to 150, O = 6 to 16) the
// per-image GEMM [O x C kH kW] x [C kH kW x OH OW] is too small for BLAS and im2col copies as
// much as it multiplies: direct measured 1.06 to 1.4 times faster forward with AVX2, 1.3 to 2.5
// with AVX-512. With 32 filters GEMM won the forward pass on AVX2 (AVX-512's direct still won:
// a wider rule for AVX-512 is possible, not measured enough), and from 64 input channels
// GEMM's backward won on both. With AVX2 the direct weight gradient kept only 2 filters per
// register block then (4 with AVX-512's 32 registers; 4 for 3x3 filters with AVX2 since
// 2026-12-07), and one thread alone ran conv2's backward
// (C = 6 or 8) 4 to 8% slower than GEMM; but inside the 2-thread training step the direct
// backward of the benchmark's conv2 ran at about twice GEMM's rate (39-41 against 19-22
// GFLOP/s), so the rule does not depend on the SIMD width.
// No choice depends on the batch size or the thread count, so the numbers do not either.
namespace {

DirectConvShape direct_shape(const Conv2dShape& s) {
    return {s.n, s.c, s.h, s.w, s.o, s.kh, s.kw, s.pad, s.pad};
}

}  // namespace

bool conv2d_forward_takes_direct(const Conv2dShape& s) {
    return s.c * s.kh * s.kw <= kMaxDirectFilter && s.o <= kMaxDirectFilters &&
           conv2d_direct_supports(direct_shape(s), s.stride);
}

bool conv2d_backward_takes_direct(const Conv2dShape& s) {
    return conv2d_forward_takes_direct(s);
}

// Within the direct rule, the backward kernels with SIMD lanes across channels
// (conv2d_lanes.hpp), measured with bench/bench_conv_kernels (one thread, AMD EPYC, AVX2,
// 2026-12-07; docs/performance.md, "Convolution backward with lanes across channels"):
//   dW, db: where the O filters fit two registers and a filter has at least kMinLanesFilter
//     numbers. conv2's dW (C kH kW = 72 and 150) ran 1.8-2.6 times the direct kernel's rate;
//     conv1's (9 and 25) at half of it: there g's transposition per image costs more than the
//     few multiply-adds per position it serves.
//   dx: where the C input channels fit two registers and fill at least half of one: conv2's dx
//     (C = 8 and 6) ran 1.4-1.6 times the direct kernel's rate; with one channel, seven lanes
//     of eight would idle.
// Shapes alone decide (and the SIMD width compiled), so the numbers do not depend on the batch
// size or the thread count.
bool conv2d_backward_weight_takes_lanes(const Conv2dShape& s) {
    return conv2d_use_lanes && conv2d_backward_takes_direct(s) && s.k() >= kMinLanesFilter &&
           conv2d_lanes_weight_supports(direct_shape(s), s.stride);
}

bool conv2d_backward_input_takes_lanes(const Conv2dShape& s) {
    return conv2d_use_lanes && conv2d_backward_takes_direct(s) &&
           2 * s.c >= conv2d_direct_simd_bytes() / sizeof(real) &&
           conv2d_lanes_input_supports(direct_shape(s), s.stride);
}

// The forward pass with lanes across output channels (conv2d_lanes.hpp), within the direct
// rule, where the O filters fit two registers and a filter has at least kMinLanesFilter numbers.
// Measured with bench/bench_conv_kernels (one thread, AMD EPYC, AVX2, 2026-12-07, load average
// 9 from other builds; docs/performance.md, "Convolution forward with lanes across output
// channels"): conv2 (C kH kW = 72, O = 16) ran at 35-50 GFLOP/s against the direct kernel's 34
// in three runs; conv1 (9 numbers a filter, O = 8) at 19-25 against 21-26: there the
// transposition of y back to [O, OH, OW] costs what the lanes save. Re-measured 2026-12-08
// with the 3x3 and 5x5 tiles unrolled (same command, batch 512, load average 4-7;
// docs/performance.md, "conv2's lanes kernels with the taps unrolled"): 34-50 GFLOP/s against
// the direct kernel's 25-30 for the benchmark's conv2, 43-54 against 29-30 for the CNN's (6 ->
// 16, 5x5), so the rule stands.
bool conv2d_forward_takes_lanes(const Conv2dShape& s) {
    return conv2d_use_lanes && conv2d_forward_takes_direct(s) && s.k() >= kMinLanesFilter &&
           conv2d_lanes_forward_supports(direct_shape(s), s.stride);
}

// One input channel, forward and weight gradient: the kernels of conv2d_one_channel.hpp (lanes
// along output rows, each 3x3 filter held in registers for 6 output rows, no padded-width grid,
// no copy of y), within the direct rule, where C = 1, the filter is 3x3 and a row holds at
// least one SIMD vector. Measured with bench/bench_conv_kernels (one thread, AMD EPYC, AVX2,
// 2026-12-08 00:40 UTC, load average 9.7 from other builds; docs/performance.md, "Convolution
// with one input channel (conv1)"), GFLOP/s, three runs: the benchmark's conv1 (1 -> 8, 3x3,
// 28x28) forward 32-44 against the direct kernel's 20-28, dW + db 19-34 against 17-28, at batch
// 8, 64 and 512 in every run. ch310_train_cnn's conv1 (1 -> 6, 5x5, pad 2) ran level with the
// direct kernels (forward 20-32 against 21-34, dW + db 24-38 against 24-39: 25 weights do not
// fit 16 registers, so its filters are broadcast from memory as the direct kernel's are) and
// stays with them. Those dW + db figures are the first version's: since the flat runs (h28g,
// later on 2026-12-08) the benchmark's conv1 dW + db took 1.18-1.38 ms of one thread's CPU at
// batch 512 against the first version's 2.06-2.10 (load 3.6-6.5; the same section of
// docs/performance.md). Shapes alone decide (and the SIMD width compiled).
bool conv2d_takes_one_channel(const Conv2dShape& s) {
    return conv2d_use_one_channel && conv2d_forward_takes_direct(s) && s.kh == 3 && s.kw == 3 &&
           conv2d_one_channel_supports(direct_shape(s), s.stride);
}

void conv2d_forward(real* y, const real* x, const real* weight, const real* bias,
                    const Conv2dShape& s) {
    if (conv2d_takes_one_channel(s))
        conv2d_one_channel_forward(direct_shape(s), x, weight, bias, y);
    else if (conv2d_forward_takes_lanes(s))
        conv2d_lanes_forward(direct_shape(s), x, weight, bias, y);
    else if (conv2d_forward_takes_direct(s))
        conv2d_direct_forward(direct_shape(s), x, weight, bias, y);
    else
        conv2d_gemm_forward(y, x, weight, bias, s);
}

void conv2d_backward(real* dx, real* dweight, real* dbias, const real* dy, const real* x,
                     const real* weight, const Conv2dShape& s) {
    if (!conv2d_backward_takes_direct(s)) {
        conv2d_gemm_backward(dx, dweight, dbias, dy, x, weight, s);
        return;
    }
    const DirectConvShape d = direct_shape(s);
    if (dx) {  // dx is overwritten
        if (conv2d_backward_input_takes_lanes(s))
            conv2d_lanes_backward_input(d, dy, weight, dx);
        else
            conv2d_direct_backward_input(d, dy, weight, dx);
    }
    // the weight kernels add to dW and db: start them at 0
    if (dweight) std::fill(dweight, dweight + s.o * s.k(), real(0));
    if (dbias) std::fill(dbias, dbias + s.o, real(0));
    if (conv2d_takes_one_channel(s))
        conv2d_one_channel_backward_weight(d, x, dy, dweight, dbias);
    else if (conv2d_backward_weight_takes_lanes(s))
        conv2d_lanes_backward_weight(d, x, dy, dweight, dbias);
    else
        conv2d_direct_backward_weight(d, x, dy, dweight, dbias);
}

}  // namespace tg::kernels::fast
