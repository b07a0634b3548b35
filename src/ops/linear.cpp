// linear: Y = X Wᵀ + b; the GEMMs are in kernels/linear.cpp (one kernel: BLAS is both the
// readable and the fast version).
#include "tapegrad/ops/linear.hpp"

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "kernels/linear.hpp"
#include "tapegrad/ops/catalog.hpp"
#include "tapegrad/tape.hpp"

namespace tg {

namespace {

/// The data of an optional tensor (bias), or null when it is undefined.
const real* data_or_null(const Tensor& t) {
    return t.defined() ? t.value().data() : nullptr;
}

/// linear's backward, the closure tg::linear records on the tape: from dY [M, out] the GEMMs
/// give dX = dY W, dW = dYᵀ X and db = Σ_m dY[m, :], each only if wanted.
struct LinearBackward final : BackwardClosure {
    LinearBackward(const Tensor& input, const Tensor& weight_, const Tensor& bias_, std::size_t M_,
                   std::size_t in_f_, std::size_t out_f_)
        : x(input), weight(weight_), bias(bias_), M(M_), in_f(in_f_), out_f(out_f_) {}

    Tensor x, weight, bias;      // bias may be undefined
    std::size_t M, in_f, out_f;  // x seen as X [M, in], weight W [out, in]

    void operator()(const Array& dy) override {
        const bool want_db = bias.defined() && bias.requires_grad();
        Array dx = x.requires_grad() ? new_array(x.shape()) : Array();
        Array dw = weight.requires_grad() ? new_array(weight.shape()) : Array();
        Array db = want_db ? new_array(bias.shape()) : Array();
        if (M == 0 || out_f == 0) {
            // dY has no elements (an empty batch, or no outputs): every gradient is 0, without
            // a pass over the batch's rows (up to max_numel of them when in = out = 0).
            for (Array* g : {&dx, &dw, &db})
                g->fill(real(0));
        } else {
            // dX = dY W, dW = dYᵀ X, db = Σ_m dY[m, :]; a null pointer: not wanted
            kernels::linear_backward(x.requires_grad() ? dx.data() : nullptr,
                                     weight.requires_grad() ? dw.data() : nullptr,
                                     want_db ? db.data() : nullptr, dy.data(), x.value().data(),
                                     weight.value().data(), M, in_f, out_f);
        }
        if (x.requires_grad()) x.accumulate_grad(std::move(dx));
        if (weight.requires_grad()) weight.accumulate_grad(std::move(dw));
        if (want_db) bias.accumulate_grad(std::move(db));
    }
};

}  // namespace

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

    // Every leading axis of x is batch: x is seen as a matrix X [M, in], M = the product of
    // the leading sizes (not numel / in, which is 0/0 for in = 0: then Y is b in every row).
    std::size_t M = 1;
    for (std::size_t a = 0; a + 1 < xs.size(); ++a)
        M *= xs[a];
    Shape ys = xs;
    ys.back() = out_f;
    Array y = new_array(ys);  // Y [M, out] = X Wᵀ + b
    kernels::linear_forward(y.data(), x.value().data(), weight.value().data(), data_or_null(bias),
                            M, in_f, out_f);
    Tensor out(std::move(y));

    Tape* tape = bias.defined() ? recording_tape(x, weight, bias) : recording_tape(x, weight);
    if (tape == nullptr) return out;
    std::vector<Tensor> inputs{x, weight};
    if (bias.defined()) inputs.push_back(bias);
    tape->record("linear", std::move(inputs), out, LinearBackward(x, weight, bias, M, in_f, out_f));
    return out;
}

// ---- catalog -------------------------------------------------------------------------------

// This file's ops in tg::op_catalog() (tapegrad/ops/catalog.hpp): an example puts its op in every
// test that walks the catalog.
std::vector<OpExample> catalog::linear_examples() {
    return {
        op("linear", "LinearBackward", false, {rows, {4, 3}, {4}}, {rows0, {4, 3}, {4}}, {0, 4},
           [](const In& v) { return linear(v[0], v[1], v[2]); }),
    };
}

}  // namespace tg
