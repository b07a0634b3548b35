// conv2d as im2col + GEMM.
//
// A convolution is a matrix product once the input is unrolled. With K = C kH kW (one
// weight row per output channel) and L = OH OW (the output positions of one image):
//
//   im2col:  cols [K, N L],  cols[(c, p, q), (n, i, j)] = x[n, c, i s + p - pad, j s + q - pad]
//                            (0 where that falls in the padding)
//   GEMM:    Y [O, N L] = W [O, K] cols [K, N L]         (W viewed as a matrix [O, K])
//   layout:  y[n, o, i, j] = Y[o, (n, i, j)] + b[o]
//
// The whole batch goes through one GEMM: with these small layers (K = 9 or 72, O = 8 or 16)
// a per-image product is too small for BLAS to run at speed; N L columns make it large.
//
// Backward, from G = dL/dY [O, N L] (dL/dy laid out like Y):
//   dW [O, K]      = G cols^T             (sums over the batch and the positions)
//   db [O]         = sum over (n, i, j) of G
//   dcols [K, N L] = W^T G,  then col2im: dx[n, c, i s + p - pad, j s + q - pad] += dcols[...]
//                    (im2col's adjoint: every copy becomes an accumulation)
#include "tapegrad/ops/conv.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

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

/// The output indices j in [lo, hi) whose input index j s + q - pad lies in [0, in), for a
/// kernel offset q: outside that range the kernel sees padding.
struct Span {
    std::size_t lo, hi;
};
Span inside(std::size_t q, std::size_t stride, std::size_t pad, std::size_t in, std::size_t out) {
    const auto s = static_cast<std::ptrdiff_t>(stride);
    const auto first =
        static_cast<std::ptrdiff_t>(pad) - static_cast<std::ptrdiff_t>(q);  // j s >= first
    const auto end = static_cast<std::ptrdiff_t>(in) + first;               // j s < end
    const std::ptrdiff_t lo = first <= 0 ? 0 : (first + s - 1) / s;
    const std::ptrdiff_t hi = end <= 0 ? 0 : (end + s - 1) / s;
    const auto clamp = [&](std::ptrdiff_t v) {
        return static_cast<std::size_t>(
            std::clamp<std::ptrdiff_t>(v, 0, static_cast<std::ptrdiff_t>(out)));
    };
    const std::size_t l = clamp(lo), h = clamp(hi);
    return {l, std::max(l, h)};
}

/// cols [K, N L] from x [N, C, H, W] (see the top of the file). Row (c, p, q) holds, for every
/// image and output position, the input pixel that kernel tap (p, q) of channel c multiplies.
void im2col(const ConvShape& s, const real* x, real* cols) {
    const std::size_t nl = s.n * s.l();
    for (std::size_t c = 0; c < s.c; ++c) {
        for (std::size_t p = 0; p < s.kh; ++p) {
            const Span rows = inside(p, s.stride, s.pad, s.h, s.oh);
            for (std::size_t q = 0; q < s.kw; ++q) {
                const Span cols_in = inside(q, s.stride, s.pad, s.w, s.ow);
                real* row = cols + ((c * s.kh + p) * s.kw + q) * nl;  // cols[(c, p, q), :]
                for (std::size_t n = 0; n < s.n; ++n) {
                    const real* plane = x + (n * s.c + c) * s.h * s.w;  // x[n, c]
                    real* dst = row + n * s.l();  // cols[(c, p, q), (n, 0, 0)]
                    for (std::size_t i = 0; i < s.oh; ++i, dst += s.ow) {
                        if (i < rows.lo || i >= rows.hi) {  // the whole output row sees padding
                            std::fill(dst, dst + s.ow, real(0));
                            continue;
                        }
                        // input row i s + p - pad, from column j s + q - pad for j = lo
                        const real* src = plane + (i * s.stride + p - s.pad) * s.w +
                                          (cols_in.lo * s.stride + q - s.pad);
                        std::fill(dst, dst + cols_in.lo, real(0));
                        for (std::size_t j = cols_in.lo; j < cols_in.hi; ++j, src += s.stride) {
                            dst[j] = *src;
                        }
                        std::fill(dst + cols_in.hi, dst + s.ow, real(0));
                    }
                }
            }
        }
    }
}

/// dx [N, C, H, W] += col2im(dcols [K, N L]): the adjoint of im2col. Each entry of dcols goes
/// back to the input pixel im2col copied it from; pixels seen by several taps sum them.
void col2im(const ConvShape& s, const real* dcols, real* dx) {
    const std::size_t nl = s.n * s.l();
    for (std::size_t c = 0; c < s.c; ++c) {
        for (std::size_t p = 0; p < s.kh; ++p) {
            const Span rows = inside(p, s.stride, s.pad, s.h, s.oh);
            for (std::size_t q = 0; q < s.kw; ++q) {
                const Span cols_in = inside(q, s.stride, s.pad, s.w, s.ow);
                const real* row = dcols + ((c * s.kh + p) * s.kw + q) * nl;
                for (std::size_t n = 0; n < s.n; ++n) {
                    real* plane = dx + (n * s.c + c) * s.h * s.w;
                    const real* src = row + n * s.l();
                    for (std::size_t i = rows.lo; i < rows.hi; ++i) {
                        real* dst = plane + (i * s.stride + p - s.pad) * s.w +
                                    (cols_in.lo * s.stride + q - s.pad);
                        const real* g = src + i * s.ow;
                        for (std::size_t j = cols_in.lo; j < cols_in.hi; ++j, dst += s.stride) {
                            *dst += g[j];
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
    const std::size_t k = s.k(), l = s.l(), nl = s.n * l;

    // cols [K, N L]; kept for the weight gradient.
    Array cols = Array::from_shape({k, nl});
    im2col(s, x.value().data(), cols.data());

    // Y [O, N L] = W [O, K] cols [K, N L]
    Array ymat = Array::from_shape({s.o, nl});
    if (nl > 0 && s.o > 0 && k > 0) {
        detail::gemm(false, false, s.o, nl, k, 1, weight.value().data(), k, cols.data(), nl, 0,
                     ymat.data(), nl);
    }

    // y[n, o, :, :] = Y[o, n L : (n + 1) L] + b[o]
    Array y = Array::from_shape({s.n, s.o, s.oh, s.ow});
    const real* b = bias.defined() ? bias.value().data() : nullptr;
    for (std::size_t n = 0; n < s.n; ++n) {
        for (std::size_t o = 0; o < s.o; ++o) {
            const real* src = ymat.data() + o * nl + n * l;
            real* dst = y.data() + (n * s.o + o) * l;
            const real bo = b ? b[o] : real(0);
            for (std::size_t j = 0; j < l; ++j)
                dst[j] = src[j] + bo;
        }
    }

    Tensor out(std::move(y));
    Tape* tape = bias.defined() ? recording_tape(x, weight, bias) : recording_tape(x, weight);
    if (tape == nullptr) return out;
    // The columns are needed only for dW; the forward's Y buffer is reused for G.
    if (!weight.requires_grad()) cols = Array();

    std::vector<Tensor> inputs{x, weight};
    if (bias.defined()) inputs.push_back(bias);
    tape->record("conv2d", std::move(inputs), out,
                 [x, weight, bias, s, k, l, nl, cols = std::move(cols),
                  gmat = std::move(ymat)](const Array& g) mutable {
                     const bool empty =
                         nl == 0 || s.o == 0 || k == 0;  // BLAS rejects empty matrices

                     // G [O, N L] from g = dL/dy [N, O, OH, OW]: the forward's layout step,
                     // reversed.
                     for (std::size_t n = 0; n < s.n; ++n) {
                         for (std::size_t o = 0; o < s.o; ++o) {
                             std::memcpy(gmat.data() + o * nl + n * l, g.data() + (n * s.o + o) * l,
                                         l * sizeof(real));
                         }
                     }
                     if (bias.defined() && bias.requires_grad()) {
                         // db[o] = sum_{n, i, j} dL/dy[n, o, i, j]
                         Array db = Array::from_shape({s.o});
                         for (std::size_t o = 0; o < s.o; ++o) {
                             const real* row = gmat.data() + o * nl;
                             double total = 0;  // a long sum: accumulate in double
                             for (std::size_t j = 0; j < nl; ++j)
                                 total += row[j];
                             db(o) = static_cast<real>(total);
                         }
                         bias.accumulate_grad(std::move(db));
                     }
                     if (weight.requires_grad()) {
                         // dW [O, K] = G [O, N L] cols^T [N L, K]
                         Array dw = xt::zeros<real>(weight.shape());
                         if (!empty) {
                             detail::gemm(false, true, s.o, k, nl, 1, gmat.data(), nl, cols.data(),
                                          nl, 0, dw.data(), k);
                         }
                         weight.accumulate_grad(std::move(dw));
                     }
                     if (x.requires_grad()) {
                         // dcols [K, N L] = W^T [K, O] G [O, N L];  dx = col2im(dcols)
                         Array dx = xt::zeros<real>(x.shape());
                         if (!empty) {
                             Array dcols = Array::from_shape({k, nl});
                             detail::gemm(true, false, k, nl, s.o, 1, weight.value().data(), k,
                                          gmat.data(), nl, 0, dcols.data(), nl);
                             col2im(s, dcols.data(), dx.data());
                         }
                         x.accumulate_grad(std::move(dx));
                     }
                 });
    return out;
}

}  // namespace tg
