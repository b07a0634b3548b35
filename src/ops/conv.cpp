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
// forward pass: that costs one more im2col but no N K L buffer.
#include "tapegrad/ops/conv.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include <xtensor/xbuilder.hpp>

#include "tapegrad/ops/gemm.hpp"
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
                for (std::size_t i = rows.lo; i < rows.hi; ++i) {
                    // x[c, i s + p - pad, cs.lo s + q - pad]
                    const real* src = x + (c * s.h + i * s.stride + p - s.pad) * s.w +
                                      cs.lo * s.stride + q - s.pad;
                    real* dst = row + i * s.ow + cs.lo;
                    if (s.stride == 1) {  // the common case, kept apart so it vectorises
                        for (std::size_t j = 0; j < len; ++j)
                            dst[j] = src[j];
                    } else {
                        for (std::size_t j = 0; j < len; ++j)
                            dst[j] = src[j * s.stride];
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
                for (std::size_t i = rows.lo; i < rows.hi; ++i) {
                    real* dst = dx + (c * s.h + i * s.stride + p - s.pad) * s.w + cs.lo * s.stride +
                                q - s.pad;
                    const real* src = row + i * s.ow + cs.lo;
                    if (s.stride == 1) {
                        for (std::size_t j = 0; j < len; ++j)
                            dst[j] += src[j];
                    } else {
                        for (std::size_t j = 0; j < len; ++j)
                            dst[j * s.stride] += src[j];
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

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, std::size_t stride,
              std::size_t padding) {
    const ConvShape s = check_and_size(x, weight, bias, stride, padding);
    const std::size_t k = s.k(), l = s.l();
    const std::size_t x_image = s.c * s.h * s.w, y_image = s.o * l;  // floats per image
    // BLAS rejects empty matrices; with an empty product y is just the bias.
    const bool empty = l == 0 || s.o == 0 || k == 0;

    Array y = Array::from_shape({s.n, s.o, s.oh, s.ow});
    const real* w = weight.value().data();
    const real* b = bias.defined() ? bias.value().data() : nullptr;
    std::vector<real> cols(k * l);  // one image's columns [K, L], reused for every image
    for (std::size_t n = 0; n < s.n; ++n) {
        real* yn = y.data() + n * y_image;  // y[n] as [O, L]
        for (std::size_t o = 0; o < s.o; ++o) {
            std::fill(yn + o * l, yn + (o + 1) * l, b ? b[o] : real(0));
        }
        if (empty) continue;
        // y[n] [O, L] = W [O, K] cols [K, L] + y[n]   (y[n] holds the bias)
        im2col(s, x.value().data() + n * x_image, cols.data());
        detail::gemm(false, false, s.o, l, k, 1, w, k, cols.data(), l, 1, yn, l);
    }

    Tensor out(std::move(y));
    Tape* tape = bias.defined() ? recording_tape(x, weight, bias) : recording_tape(x, weight);
    if (tape == nullptr) return out;

    std::vector<Tensor> inputs{x, weight};
    if (bias.defined()) inputs.push_back(bias);
    tape->record(
        "conv2d", std::move(inputs), out,
        [x, weight, bias, s, k, l, x_image, y_image, empty,
         cols = std::move(cols)](const Array& g) mutable {
            const bool want_x = x.requires_grad(), want_w = weight.requires_grad();
            const bool want_b = bias.defined() && bias.requires_grad();

            Array dw = want_w ? xt::zeros<real>(weight.shape()) : Array();  // summed over images
            Array dx = want_x ? xt::zeros<real>(x.shape()) : Array();
            std::vector<double> db(s.o, 0.0);  // long sums (N L terms): accumulated in double
            std::vector<real> dcols(want_x ? k * l : 0);  // cols: the forward's buffer, reused
            for (std::size_t n = 0; n < s.n; ++n) {
                const real* gn = g.data() + n * y_image;  // G = dL/dy[n] as [O, L]
                if (want_b) {
                    // db[o] += sum_(i, j) G[o, (i, j)]
                    for (std::size_t o = 0; o < s.o; ++o) {
                        double total = 0;
                        for (std::size_t j = 0; j < l; ++j) {
                            total += gn[o * l + j];
                        }
                        db[o] += total;
                    }
                }
                if (empty) continue;
                if (want_w) {
                    // dW [O, K] += G [O, L] cols^T [L, K], cols rebuilt from x[n]
                    im2col(s, x.value().data() + n * x_image, cols.data());
                    detail::gemm(false, true, s.o, k, l, 1, gn, l, cols.data(), l, 1, dw.data(), k);
                }
                if (want_x) {
                    // dcols [K, L] = W^T [K, O] G [O, L];  dx[n] += col2im(dcols)
                    detail::gemm(true, false, k, l, s.o, 1, weight.value().data(), k, gn, l, 0,
                                 dcols.data(), l);
                    col2im(s, dcols.data(), dx.data() + n * x_image);
                }
            }
            if (want_w) weight.accumulate_grad(std::move(dw));
            if (want_b) {
                Array dbias = Array::from_shape({s.o});
                for (std::size_t o = 0; o < s.o; ++o) {
                    dbias(o) = static_cast<real>(db[o]);
                }
                bias.accumulate_grad(std::move(dbias));
            }
            if (want_x) x.accumulate_grad(std::move(dx));
        });
    return out;
}

}  // namespace tg
