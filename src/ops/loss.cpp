// log_softmax and cross_entropy compute in kernels/{reference,fast}/cross_entropy.cpp; softmax
// and mse_loss here (one implementation each).
#include "tapegrad/ops/loss.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "kernels/kernel_set.hpp"
#include "tapegrad/kernels.hpp"
#include "tapegrad/ops/catalog.hpp"
#include "tapegrad/ops/elementwise.hpp"
#include "tapegrad/ops/reduce.hpp"
#include "tapegrad/tape.hpp"

namespace tg {

namespace {

// x seen as [outer, n, inner] around axis `dim`: the softmax runs over n elements that sit
// `inner` apart in memory, for each of the outer * inner (o, i) pairs.
struct Rows {
    std::size_t outer = 1, n = 1, inner = 1;
    Rows(const char* op, const Shape& shape, int dim) {
        const std::size_t d = detail::normalize_dim(op, dim, shape);
        if (shape.empty()) return;  // a 0-d tensor is one row of one element
        for (std::size_t a = 0; a < d; ++a)
            outer *= shape[a];
        n = shape[d];
        for (std::size_t a = d + 1; a < shape.size(); ++a)
            inner *= shape[a];
    }
    // Offset of element 0 of row (o, i); element j is at offset + j * inner.
    std::size_t offset(std::size_t o, std::size_t i) const { return o * n * inner + i; }
};

/// log_softmax's backward, the closure tg::log_softmax records on the tape: along each row,
/// dx_j = dy_j − softmax(x)_j Σ_k dy_k, with softmax(x) = e^y.
struct LogSoftmaxBackward final : BackwardClosure {
    LogSoftmaxBackward(const Tensor& input, const Tensor& output, const Rows& rows)
        : x(input), y_handle(output), r(rows) {}

    Tensor x;
    Tensor y_handle;  // y = log_softmax(x): dx needs softmax(x) = e^y
    Rows r;

    void operator()(const Array& dy) override {
        Array dx = new_array(dy.shape());
        kernels::in_use->log_softmax_backward(dx.data(), dy.data(), y_handle.value().data(),
                                              r.outer, r.n, r.inner);
        x.accumulate_grad(std::move(dx));
    }
};

}  // namespace

Tensor log_softmax(const Tensor& x, int dim) {
    const Rows r("log_softmax", x.shape(), dim);
    Array y = new_array(x.value().shape());
    kernels::in_use->log_softmax_forward(y.data(), x.value().data(), r.outer, r.n, r.inner);
    Tensor out(std::move(y));

    if (Tape* tape = recording_tape(x)) {
        Tensor y_handle = out;  // dx needs softmax(x) = e^y: keep y, not a copy of x
        tape->record("log_softmax", {x}, out, LogSoftmaxBackward(x, y_handle, r));
    }
    return out;
}

namespace {

/// softmax's backward, the closure tg::softmax records on the tape: along each row,
/// dx_j = y_j (g_j − Σ_k g_k y_k), y = softmax(x).
struct SoftmaxBackward final : BackwardClosure {
    SoftmaxBackward(const Tensor& input, const Tensor& output, const Rows& rows)
        : x(input), y_handle(output), r(rows) {}

    Tensor x;
    Tensor y_handle;  // y = softmax(x)
    Rows r;

    void operator()(const Array& g) override {
        // dx_j = y_j (g_j - sum_k g_k y_k)
        Array dx = new_array(g.shape());
        for (std::size_t o = 0; o < r.outer; ++o) {
            for (std::size_t i = 0; i < r.inner; ++i) {
                const std::size_t off = r.offset(o, i);
                const real* gr = g.data() + off;
                const real* yr = y_handle.value().data() + off;
                real* dr = dx.data() + off;
                real dot = 0;
                for (std::size_t j = 0; j < r.n; ++j)
                    dot += gr[j * r.inner] * yr[j * r.inner];
                for (std::size_t j = 0; j < r.n; ++j) {
                    dr[j * r.inner] = yr[j * r.inner] * (gr[j * r.inner] - dot);
                }
            }
        }
        x.accumulate_grad(std::move(dx));
    }
};

}  // namespace

Tensor softmax(const Tensor& x, int dim) {
    const Rows r("softmax", x.shape(), dim);
    const Array& xv = x.value();
    Array y = new_array(xv.shape());
    // Forward: y_j = e^(x_j - m) / sum_k e^(x_k - m), m = max_k x_k
    for (std::size_t o = 0; o < r.outer; ++o) {
        for (std::size_t i = 0; i < r.inner; ++i) {
            const real* xr = xv.data() + r.offset(o, i);
            real* yr = y.data() + r.offset(o, i);
            real m = -std::numeric_limits<real>::infinity();
            for (std::size_t j = 0; j < r.n; ++j)
                m = std::max(m, xr[j * r.inner]);
            real s = 0;
            for (std::size_t j = 0; j < r.n; ++j) {
                yr[j * r.inner] = std::exp(xr[j * r.inner] - m);
                s += yr[j * r.inner];
            }
            for (std::size_t j = 0; j < r.n; ++j)
                yr[j * r.inner] /= s;
        }
    }
    Tensor out(std::move(y));

    if (Tape* tape = recording_tape(x)) {
        Tensor y_handle = out;
        tape->record("softmax", {x}, out, SoftmaxBackward(x, y_handle, r));
    }
    return out;
}

namespace {

/// cross_entropy's backward, the closure tg::cross_entropy records on the tape:
/// dx[n, c] = dL/N · (p[n, c] − [c = t_n]), p[n, c] = e^(x[n, c] − lse_n) = softmax(x)[n, c].
struct CrossEntropyBackward final : BackwardClosure {
    CrossEntropyBackward(const Tensor& logits_, const Labels& targets_, std::vector<double> lse_,
                         std::size_t N_, std::size_t C_)
        : logits(logits_), targets(targets_), lse(std::move(lse_)), N(N_), C(C_) {}

    Tensor logits;            // x [N, C]
    Labels targets;           // t [N]
    std::vector<double> lse;  // lse_n = log Σ_c e^(x[n, c]), from the forward pass
    std::size_t N, C;

    void operator()(const Array& dloss) override {
        Array dx = new_array({N, C});  // dx[n, c] = dL/N · (p[n, c] − [c = t_n])
        kernels::in_use->cross_entropy_backward(dx.data(), dloss.flat(0), logits.value().data(),
                                                lse.data(), targets.data(), N, C);
        logits.accumulate_grad(std::move(dx));
    }
};

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Labels& targets) {
    const Shape shape = logits.shape();
    if (shape.size() != 2) {
        throw std::invalid_argument("cross_entropy: expected logits [N, C], got " +
                                    shape_str(shape));
    }
    const std::size_t N = shape[0], C = shape[1];
    if (targets.size() != N) {
        throw std::invalid_argument("cross_entropy: logits " + shape_str(shape) + " have " +
                                    std::to_string(N) + " rows but there are " +
                                    std::to_string(targets.size()) + " targets");
    }
    for (std::size_t i = 0; i < N; ++i) {
        if (targets[i] < 0 || static_cast<std::size_t>(targets[i]) >= C) {
            throw std::invalid_argument("cross_entropy: target " + std::to_string(targets[i]) +
                                        " at index " + std::to_string(i) + " is out of range [0, " +
                                        std::to_string(C) + ") for logits " + shape_str(shape));
        }
    }

    // L = 1/N Σ_n (lse_n − x[n, t_n]), lse_n = log Σ_c e^(x[n, c]); lse [N] kept for backward.
    Array loss(real(0));  // 0-d
    std::vector<double> lse(N);
    kernels::in_use->cross_entropy_forward(loss.data(), lse.data(), logits.value().data(),
                                           targets.data(), N, C);
    Tensor out(std::move(loss));

    if (Tape* tape = recording_tape(logits)) {
        tape->record("cross_entropy", {logits}, out,
                     CrossEntropyBackward(logits, targets, std::move(lse), N, C));
    }
    return out;
}

namespace {

/// mse_loss's backward, the closure tg::mse_loss records on the tape: with d = x − y,
/// dL/dx = 2 d g / n and dL/dy = −2 d g / n, each summed back to its input's shape.
struct MseLossBackward final : BackwardClosure {
    MseLossBackward(const Tensor& input_, const Tensor& target_, Array diff_, std::size_t n_)
        : input(input_), target(target_), diff(std::move(diff_)), n(n_) {}

    Tensor input, target;
    Array diff;     // d = x − y (broadcast), from the forward pass
    std::size_t n;  // the number of elements of d

    void operator()(const Array& g) override {
        // dL/dx = 2 d g / n, dL/dy = -2 d g / n
        const real scale = real(2) * g.flat(0) / static_cast<real>(n);
        if (input.requires_grad()) {
            input.accumulate_grad(unbroadcast(Array(diff * scale), input.shape()));
        }
        if (target.requires_grad()) {
            target.accumulate_grad(unbroadcast(Array(diff * (-scale)), target.shape()));
        }
    }
};

}  // namespace

Tensor mse_loss(const Tensor& input, const Tensor& target, MseLossOptions options) {
    if (!options.broadcast && input.shape() != target.shape()) {
        throw std::invalid_argument(
            "mse_loss: input " + shape_str(input.shape()) + " and target " +
            shape_str(target.shape()) +
            " have different shapes; expected the same (they would broadcast to " +
            shape_str(broadcast_shape("mse_loss", input.shape(), target.shape())) +
            "; pass {.broadcast = true} to mean that)");
    }
    broadcast_shape("mse_loss", input.shape(), target.shape());
    // Forward: d = x - y (broadcast), L = (1/n) sum_i d_i^2
    Array diff = input.value() - target.value();
    const std::size_t n = diff.size();
    double total = 0;
    const real* dp = diff.data();
    for (std::size_t i = 0; i < n; ++i)
        total += static_cast<double>(dp[i]) * dp[i];
    Tensor out = Tensor::scalar(static_cast<real>(total / static_cast<double>(n)));

    if (Tape* tape = recording_tape(input, target)) {
        tape->record("mse_loss", {input, target}, out,
                     MseLossBackward(input, target, std::move(diff), n));
    }
    return out;
}

// ---- catalog -------------------------------------------------------------------------------

// This file's ops in tg::op_catalog() (tapegrad/ops/catalog.hpp): an example puts its op in every
// test that walks the catalog.
std::vector<OpExample> catalog::loss_examples() {
    return {
        op("log_softmax", "LogSoftmaxBackward", true, {rows}, {rows0}, rows0,
           [](const In& v) { return log_softmax(v[0]); }),
        op("softmax", "SoftmaxBackward", false, {rows}, {rows0}, rows0,
           [](const In& v) { return softmax(v[0]); }),
        op("cross_entropy", "CrossEntropyBackward", true, {rows}, {}, {},
           [](const In& v) {
               return cross_entropy(v[0], Labels{0, 2});
           }),
        op("mse_loss", "MseLossBackward", false, {rows, rows}, {}, {},
           [](const In& v) { return mse_loss(v[0], v[1]); }),
    };
}

}  // namespace tg
