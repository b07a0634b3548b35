// conv2d as im2col + GEMM, one image at a time.
//
// A convolution is a matrix product once the input is unrolled. For one image x[n] [C, H, W],
// with K = C kH kW (the length of one filter) and L = OH OW (its output positions):
//
//   im2col:  cols [K, L],  cols[(c, p, q), (i, j)] = x[n, c, i s + p - pad, j s + q - pad]
//                          (0 where that falls in the padding)
//   GEMM:    y[n] [O, L] = W [O, K] cols [K, L] + b      (W viewed as a matrix [O, K];
//                                                          y[n] is [O, OH, OW] viewed as [O, L])
//
// Backward, from G = dL/dy[n] viewed as [O, L]:
//   dW [O, K]   += G cols^T                    (a sum over the images and positions)
//   db [O]      += sum over the positions of G
//   dcols [K, L] = W^T G,  then col2im: dx[n, c, i s + p - pad, j s + q - pad] += dcols[...]
//                  (the adjoint of im2col: every copy becomes an accumulation)
//
// Why one image at a time and not one GEMM over the whole batch (cols [K, N L]): measured on
// the MNIST CNN's layers (K = 9 or 72, O = 8 or 16), the per-image buffers stay in cache, y[n]
// comes out of the GEMM already in [O, OH, OW] layout (the batched product needs a transpose
// to [N, O, OH, OW] and back), and BLAS runs these per-image products as fast or faster. The
// backward pass rebuilds cols image by image instead of keeping all N of them from the
// forward pass: that costs one more im2col but no N K L buffer (keeping them measured no
// faster at batch 64, and slower at 512).
//
// The images are independent, so a large batch is split into blocks, one per thread (as many
// threads as BLAS uses); dW and db, sums over the images, are summed per block and then added.
#include "tapegrad/ops/conv.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include <xtensor/xbuilder.hpp>

#include "tapegrad/ops/gemm.hpp"
#include "tapegrad/parallel.hpp"
#include "tapegrad/tape.hpp"

namespace tg {

namespace {

/// The sizes of one conv2d call.
struct ConvShape {
    std::size_t n, c, h, w;  // input  [N, C, H, W]
    std::size_t o, kh, kw;   // weight [O, C, kH, kW]
    std::size_t oh, ow;      // output [N, O, OH, OW]
    std::size_t stride, pad;
    std::size_t k() const { return c * kh * kw; }  // rows of cols: one per (c, p, q)
    std::size_t l() const { return oh * ow; }      // output positions per image
};

/// The output indices [lo, hi) along one axis whose input index i s + p - pad lies inside
/// [0, in), for kernel offset p; outside that range the kernel tap sees padding.
struct Span {
    std::size_t lo, hi;
};
Span inside(std::size_t p, std::size_t stride, std::size_t pad, std::size_t in, std::size_t out) {
    // i s + p - pad >= 0   <=>  i >= ceil((pad - p) / s)
    // i s + p - pad < in   <=>  i <  ceil((in + pad - p) / s)
    const auto s = static_cast<std::ptrdiff_t>(stride);
    const auto first = static_cast<std::ptrdiff_t>(pad) - static_cast<std::ptrdiff_t>(p);
    const auto end = static_cast<std::ptrdiff_t>(in) + first;
    const auto ceil_div = [s](std::ptrdiff_t a) { return a <= 0 ? 0 : (a + s - 1) / s; };
    const auto limit = static_cast<std::ptrdiff_t>(out);
    const auto lo = static_cast<std::size_t>(std::min(ceil_div(first), limit));
    const auto hi = static_cast<std::size_t>(std::min(ceil_div(end), limit));
    return {lo, std::max(lo, hi)};
}

/// cols [K, L] from one image x [C, H, W]: row (c, p, q) holds, for every output position
/// (i, j), the pixel x[c, i s + p - pad, j s + q - pad] that kernel tap (p, q) multiplies.
void im2col(const ConvShape& s, const real* x, real* cols) {
    const std::size_t l = s.l();
    for (std::size_t c = 0; c < s.c; ++c) {
        for (std::size_t p = 0; p < s.kh; ++p) {
            const Span rows = inside(p, s.stride, s.pad, s.h, s.oh);
            for (std::size_t q = 0; q < s.kw; ++q) {
                const Span cs = inside(q, s.stride, s.pad, s.w, s.ow);
                real* row = cols + ((c * s.kh + p) * s.kw + q) * l;  // cols[(c, p, q), :]
                // Positions where this tap sees padding are 0: zero the row, then copy the
                // rectangle [rows.lo, rows.hi) x [cs.lo, cs.hi) that sees the image.
                if (rows.lo > 0 || rows.hi < s.oh || cs.lo > 0 || cs.hi < s.ow) {
                    std::fill(row, row + l, real(0));
                }
                const std::size_t len = cs.hi - cs.lo;
                if (len == 0) continue;  // this tap sees only padding
                for (std::size_t i = rows.lo; i < rows.hi; ++i) {
                    // x[c, i s + p - pad, cs.lo s + q - pad]
                    const real* src = x + (c * s.h + i * s.stride + p - s.pad) * s.w +
                                      cs.lo * s.stride + q - s.pad;
                    real* dst = row + i * s.ow + cs.lo;
                    if (s.stride == 1) {  // the common case, kept apart so it vectorises
                        for (std::size_t j = 0; j < len; ++j) {
                            dst[j] = src[j];
                        }
                    } else {
                        for (std::size_t j = 0; j < len; ++j) {
                            dst[j] = src[j * s.stride];
                        }
                    }
                }
            }
        }
    }
}

/// dx [C, H, W] += col2im(dcols [K, L]) for one image: the adjoint of im2col. Each entry of
/// dcols goes back to the pixel im2col copied it from; a pixel seen by several taps sums them.
void col2im(const ConvShape& s, const real* dcols, real* dx) {
    const std::size_t l = s.l();
    for (std::size_t c = 0; c < s.c; ++c) {
        for (std::size_t p = 0; p < s.kh; ++p) {
            const Span rows = inside(p, s.stride, s.pad, s.h, s.oh);
            for (std::size_t q = 0; q < s.kw; ++q) {
                const Span cs = inside(q, s.stride, s.pad, s.w, s.ow);
                const real* row = dcols + ((c * s.kh + p) * s.kw + q) * l;
                const std::size_t len = cs.hi - cs.lo;
                if (len == 0) continue;
                for (std::size_t i = rows.lo; i < rows.hi; ++i) {
                    real* dst = dx + (c * s.h + i * s.stride + p - s.pad) * s.w + cs.lo * s.stride +
                                q - s.pad;
                    const real* src = row + i * s.ow + cs.lo;
                    if (s.stride == 1) {
                        for (std::size_t j = 0; j < len; ++j) {
                            dst[j] += src[j];
                        }
                    } else {
                        for (std::size_t j = 0; j < len; ++j) {
                            dst[j * s.stride] += src[j];
                        }
                    }
                }
            }
        }
    }
}

ConvShape check_and_size(const Tensor& x, const Tensor& weight, const Tensor& bias,
                         std::size_t stride, std::size_t padding) {
    const Shape xs = x.shape(), ws = weight.shape();
    if (xs.size() != 4) {
        throw std::invalid_argument("conv2d: expected a 4-D input [N, C, H, W], got " +
                                    shape_str(xs));
    }
    if (ws.size() != 4) {
        throw std::invalid_argument("conv2d: expected a 4-D weight [O, C, kH, kW], got " +
                                    shape_str(ws));
    }
    if (xs[1] != ws[1]) {
        throw std::invalid_argument("conv2d: input " + shape_str(xs) + " has " +
                                    std::to_string(xs[1]) + " channels, weight expects " +
                                    std::to_string(ws[1]) + " (weight " + shape_str(ws) + ")");
    }
    if (bias.defined() && bias.shape() != Shape{ws[0]}) {
        throw std::invalid_argument("conv2d: bias " + shape_str(bias.shape()) +
                                    " does not match weight " + shape_str(ws) + ": expected [" +
                                    std::to_string(ws[0]) + "]");
    }
    if (stride == 0) throw std::invalid_argument("conv2d: stride must be positive, got 0");
    // H + 2 padding must not wrap around (padding = (size_t)-1 made it H - 2).
    const std::size_t larger = std::max(xs[2], xs[3]);
    if (padding > (std::numeric_limits<std::size_t>::max() - larger) / 2) {
        throw std::invalid_argument("conv2d: padding " + std::to_string(padding) +
                                    " is too large: the padded input (" + std::to_string(larger) +
                                    " + 2 x padding rows) does not fit in a size_t (input " +
                                    shape_str(xs) + ")");
    }
    const std::size_t ph = xs[2] + 2 * padding, pw = xs[3] + 2 * padding;
    if (ws[2] > ph || ws[3] > pw || ws[2] == 0 || ws[3] == 0) {
        throw std::invalid_argument("conv2d: kernel " + std::to_string(ws[2]) + "x" +
                                    std::to_string(ws[3]) + " does not fit the padded input " +
                                    std::to_string(ph) + "x" + std::to_string(pw) + " (input " +
                                    shape_str(xs) + ", padding " + std::to_string(padding) + ")");
    }
    ConvShape s{};
    s.n = xs[0], s.c = xs[1], s.h = xs[2], s.w = xs[3];
    s.o = ws[0], s.kh = ws[2], s.kw = ws[3];
    s.stride = stride, s.pad = padding;
    s.oh = (ph - s.kh) / stride + 1;
    s.ow = (pw - s.kw) / stride + 1;
    return s;
}

/// How many threads share the images (see detail::conv2d_threads): as many as BLAS is set to
/// use (OPENBLAS_NUM_THREADS, the program's one thread setting), but no more than give each
/// thread 2^22 multiply-adds, and no more than there are images.
std::size_t image_threads(const ConvShape& s) {
    if (detail::conv2d_threads > 0) {
        return std::max<std::size_t>(1, std::min(detail::conv2d_threads, s.n));
    }
    const std::size_t worth = s.n * s.o * s.k() * s.l() >> 22;  // multiply-adds / 2^22
    const auto blas = static_cast<std::size_t>(std::max(1, detail::num_threads()));
    return std::max<std::size_t>(1, std::min({blas, s.n, worth}));
}

/// Splits the images [0, N) into up to `threads` contiguous blocks and runs
/// body(first, last, t) for block t on the thread pool (block 0 on the calling thread).
/// Blocks touch disjoint images; t < threads.
template <class Body>
void for_image_blocks(std::size_t n, std::size_t threads, const Body& body) {
    const std::size_t per = (n + threads - 1) / threads;  // images per block
    parallel_for_blocks(threads, [&body, n, per](std::size_t t) {
        const std::size_t first = std::min(n, t * per), last = std::min(n, first + per);
        if (first < last) body(first, last, t);
    });
}

/// Forward for one image: y[n] [O, L] = W [O, K] im2col(x[n]) [K, L] + b.
/// `cols` is scratch space for K L numbers.
void forward_image(const ConvShape& s, const real* xn, const real* w, const real* b, real* cols,
                   real* yn) {
    const std::size_t k = s.k(), l = s.l();
    for (std::size_t o = 0; o < s.o; ++o) {  // y[n] starts as the bias, the GEMM adds to it
        std::fill(yn + o * l, yn + (o + 1) * l, b ? b[o] : real(0));
    }
    if (l == 0 || s.o == 0 || k == 0) return;  // an empty product (BLAS rejects those)
    im2col(s, xn, cols);
    detail::gemm(false, false, s.o, l, k, 1, w, k, cols, l, 1, yn, l);
}

/// What the backward pass of one block of images accumulates into, and its scratch space.
struct BackwardBlock {
    bool used = false;  // the pool may run fewer blocks than asked for
    bool want_w = false, want_b = false;
    Array dw;                 // [O, C, kH, kW] = [O, K]  this block's part of dW
    Array db;                 // [O]     this block's part of db
    std::vector<real> cols;   // [K, L]  im2col of the current image (for dW)
    std::vector<real> dcols;  // [K, L]  dL/dcols of the current image (for dx)
    std::vector<real> ones;   // [L]     all 1: db = G 1
};

/// Backward for one image, from G = dL/dy[n] [O, L]:
///   dW += G cols^T,   db += G 1,   dx[n] = col2im(W^T G).
void backward_image(const ConvShape& s, const real* xn, const real* w, const real* gn,
                    BackwardBlock& blk, real* dxn) {
    const std::size_t k = s.k(), l = s.l();
    if (l == 0 || s.o == 0) return;  // no output, nothing flows back
    if (blk.want_b) {
        // db [O] += G [O, L] 1 [L]   (the sum over the positions)
        detail::gemm(false, false, s.o, 1, l, 1, gn, l, blk.ones.data(), 1, 1, blk.db.data(), 1);
    }
    if (k == 0) return;
    if (blk.want_w) {
        // dW [O, K] += G [O, L] cols^T [L, K], with cols rebuilt from x[n]
        im2col(s, xn, blk.cols.data());
        detail::gemm(false, true, s.o, k, l, 1, gn, l, blk.cols.data(), l, 1, blk.dw.data(), k);
    }
    if (dxn != nullptr) {
        // dcols [K, L] = W^T [K, O] G [O, L];  dx[n] += col2im(dcols)
        detail::gemm(true, false, k, l, s.o, 1, w, k, gn, l, 0, blk.dcols.data(), l);
        col2im(s, blk.dcols.data(), dxn);
    }
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, std::size_t stride,
              std::size_t padding) {
    const ConvShape s = check_and_size(x, weight, bias, stride, padding);
    const std::size_t x_image = s.c * s.h * s.w, y_image = s.o * s.l();  // numbers per image
    // The images are independent: with several threads each takes a block of them.
    const std::size_t threads = image_threads(s);

    Array y = Array::from_shape({s.n, s.o, s.oh, s.ow});
    const real* b = bias.defined() ? bias.value().data() : nullptr;
    for_image_blocks(s.n, threads, [&](std::size_t first, std::size_t last, std::size_t) {
        std::vector<real> cols(s.k() * s.l());  // reused for every image of the block
        for (std::size_t n = first; n < last; ++n) {
            forward_image(s, x.value().data() + n * x_image, weight.value().data(), b, cols.data(),
                          y.data() + n * y_image);
        }
    });

    Tensor out(std::move(y));
    Tape* tape = bias.defined() ? recording_tape(x, weight, bias) : recording_tape(x, weight);
    if (tape == nullptr) return out;

    std::vector<Tensor> inputs{x, weight};
    if (bias.defined()) inputs.push_back(bias);
    auto backward = [x, weight, bias, s, x_image, y_image, threads](const Array& g) {
        const bool want_x = x.requires_grad(), want_w = weight.requires_grad();
        const bool want_b = bias.defined() && bias.requires_grad();
        const std::size_t k = s.k(), l = s.l();

        // dx[n] is written by the thread that owns image n. dW and db sum over all images:
        // each block sums its images into its own partial dW, db; the partials are added last.
        Array dx = want_x ? xt::zeros<real>(x.shape()) : Array();
        std::vector<BackwardBlock> blocks(threads);
        for_image_blocks(s.n, threads, [&](std::size_t first, std::size_t last, std::size_t t) {
            BackwardBlock& blk = blocks[t];
            blk.used = true;
            blk.want_w = want_w;
            blk.want_b = want_b;
            if (want_w) {
                blk.dw = xt::zeros<real>(weight.shape());  // [O, C, kH, kW] = [O, K]
                blk.cols.resize(k * l);
            }
            if (want_b) {
                blk.db = xt::zeros<real>({s.o});
                blk.ones.assign(l, real(1));
            }
            if (want_x) blk.dcols.resize(k * l);
            for (std::size_t n = first; n < last; ++n) {
                backward_image(s, x.value().data() + n * x_image, weight.value().data(),
                               g.data() + n * y_image, blk,
                               want_x ? dx.data() + n * x_image : nullptr);
            }
        });
        if (!blocks[0].used) {  // an empty batch (N = 0) runs no block: dW = 0, db = 0
            if (want_w) blocks[0].dw = xt::zeros<real>(weight.shape());
            if (want_b) blocks[0].db = xt::zeros<real>({s.o});
        }
        for (std::size_t t = 1; t < threads; ++t) {
            if (!blocks[t].used) continue;
            if (want_w) blocks[0].dw += blocks[t].dw;
            if (want_b) blocks[0].db += blocks[t].db;
        }
        if (want_w) weight.accumulate_grad(std::move(blocks[0].dw));
        if (want_b) bias.accumulate_grad(std::move(blocks[0].db));
        if (want_x) x.accumulate_grad(std::move(dx));
    };
    tape->record("conv2d", std::move(inputs), out, std::move(backward));
    return out;
}

}  // namespace tg
