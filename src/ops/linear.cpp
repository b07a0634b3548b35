#include "tapegrad/ops/linear.hpp"

#include <stdexcept>
#include <string>

#include <xtensor/xbuilder.hpp>

#include "tapegrad/ops/gemm.hpp"
#include "tapegrad/tape.hpp"

namespace tg {

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
    const Shape xs = x.shape(), ws = weight.shape();
    if (ws.size() != 2) {
        throw std::invalid_argument("linear: expected a 2-D weight [out, in], got " +
                                    shape_str(ws));
    }
    if (xs.empty()) {
        throw std::invalid_argument("linear: expected an input [N, in] (at least 1-D), got " +
                                    shape_str(xs));
    }
    const std::size_t out_f = ws[0], in_f = ws[1];
    if (xs.back() != in_f) {
        throw std::invalid_argument("linear: input " + shape_str(xs) + " has " +
                                    std::to_string(xs.back()) + " features, weight " +
                                    shape_str(ws) + " expects " + std::to_string(in_f));
    }
    if (bias.defined() && bias.shape() != Shape{out_f}) {
        throw std::invalid_argument("linear: bias " + shape_str(bias.shape()) +
                                    " does not match weight " + shape_str(ws) + ": expected [" +
                                    std::to_string(out_f) + "]");
    }

    // Every leading axis of x is batch: view x as a matrix X [M, in], M = numel / in.
    const std::size_t m = in_f == 0 ? 0 : x.numel() / in_f;
    Shape ys = xs;
    ys.back() = out_f;
    Array y = Array::from_shape(ys);  // Y [M, out]
    real* yp = y.data();

    // Y starts as the bias in every row (or zeros), then Y += X W^T in one GEMM.
    const real* bp = bias.defined() ? bias.value().data() : nullptr;
    for (std::size_t i = 0; i < m; ++i) {
        for (std::size_t j = 0; j < out_f; ++j)
            yp[i * out_f + j] = bp ? bp[j] : real(0);
    }
    const bool empty = m == 0 || out_f == 0 || in_f == 0;  // BLAS rejects zero-sized matrices
    if (!empty) {
        detail::gemm(false, true, m, out_f, in_f, 1, x.value().data(), in_f, weight.value().data(),
                     in_f, 1, yp, out_f);
    }

    Tensor out(std::move(y));
    Tape* tape = bias.defined() ? recording_tape(x, weight, bias) : recording_tape(x, weight);
    if (tape == nullptr) return out;

    std::vector<Tensor> inputs{x, weight};
    if (bias.defined()) inputs.push_back(bias);
    tape->record("linear", std::move(inputs), out,
                 [x, weight, bias, m, in_f, out_f, empty](const Array& g) {
                     // g = dL/dY [M, out].
                     const real* gp = g.data();
                     if (x.requires_grad()) {
                         // dX [M, in] = dY [M, out] W [out, in]
                         Array dx = xt::zeros<real>(x.shape());
                         if (!empty) {
                             detail::gemm(false, false, m, in_f, out_f, 1, gp, out_f,
                                          weight.value().data(), in_f, 0, dx.data(), in_f);
                         }
                         x.accumulate_grad(std::move(dx));
                     }
                     if (weight.requires_grad()) {
                         // dW [out, in] = dY^T [out, M] X [M, in]   (a sum over the batch)
                         Array dw = xt::zeros<real>(weight.shape());
                         if (!empty) {
                             detail::gemm(true, false, out_f, in_f, m, 1, gp, out_f,
                                          x.value().data(), in_f, 0, dw.data(), in_f);
                         }
                         weight.accumulate_grad(std::move(dw));
                     }
                     if (bias.defined() && bias.requires_grad()) {
                         // db [out] = sum_i dY[i, :]
                         Array db = xt::zeros<real>({out_f});
                         real* dbp = db.data();
                         for (std::size_t i = 0; i < m; ++i) {
                             for (std::size_t j = 0; j < out_f; ++j)
                                 dbp[j] += gp[i * out_f + j];
                         }
                         bias.accumulate_grad(std::move(db));
                     }
                 });
    return out;
}

}  // namespace tg
