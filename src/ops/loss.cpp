#include "tapegrad/ops/loss.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

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

// The two parts of log sum_j e^(x_j) over n elements `stride` apart: m = max_j x_j and
// log s, s = sum_j e^(x_j - m) (so the sum is m + log s).
struct MaxAndLogSum {
    real m, log_s;
};
MaxAndLogSum max_and_log_sum(const real* x, std::size_t n, std::size_t stride) {
    real m = -std::numeric_limits<real>::infinity();
    for (std::size_t j = 0; j < n; ++j)
        m = std::max(m, x[j * stride]);
    if (std::isinf(m)) return {m, real(0)};  // all -inf (or empty), or +inf: avoid inf - inf
    real s = 0;
    for (std::size_t j = 0; j < n; ++j)
        s += std::exp(x[j * stride] - m);
    return {m, std::log(s)};
}

// log sum_j e^(x_j) over n elements `stride` apart, as m + log sum_j e^(x_j - m).
real log_sum_exp(const real* x, std::size_t n, std::size_t stride) {
    const MaxAndLogSum p = max_and_log_sum(x, n, stride);
    return p.m + p.log_s;
}

}  // namespace

Tensor log_softmax(const Tensor& x, int dim) {
    const Rows r("log_softmax", x.shape(), dim);
    const Array& xv = x.value();
    Array y = Array::from_shape(xv.shape());
    // Forward: y_j = (x_j - m) - log s, s = sum_k e^(x_k - m), as PyTorch computes it. Not
    // x_j - (m + log s): for |m| of 50-100, m + log s rounds to a multiple of ulp(m) (3.8e-6
    // at 55), which a log-probability near 0 cannot afford.
    for (std::size_t o = 0; o < r.outer; ++o) {
        for (std::size_t i = 0; i < r.inner; ++i) {
            const real* xr = xv.data() + r.offset(o, i);
            real* yr = y.data() + r.offset(o, i);
            const MaxAndLogSum p = max_and_log_sum(xr, r.n, r.inner);
            for (std::size_t j = 0; j < r.n; ++j)
                yr[j * r.inner] = (xr[j * r.inner] - p.m) - p.log_s;
        }
    }
    Tensor out(std::move(y));

    if (Tape* tape = recording_tape(x)) {
        Tensor y_handle = out;
        tape->record("log_softmax", {x}, out, [x, y_handle, r](const Array& g) {
            // dx_j = g_j - p_j sum_k g_k, with p = softmax(x) = e^y
            Array dx = Array::from_shape(g.shape());
            for (std::size_t o = 0; o < r.outer; ++o) {
                for (std::size_t i = 0; i < r.inner; ++i) {
                    const std::size_t off = r.offset(o, i);
                    const real* gr = g.data() + off;
                    const real* yr = y_handle.value().data() + off;
                    real* dr = dx.data() + off;
                    real gsum = 0;
                    for (std::size_t j = 0; j < r.n; ++j)
                        gsum += gr[j * r.inner];
                    for (std::size_t j = 0; j < r.n; ++j) {
                        dr[j * r.inner] = gr[j * r.inner] - std::exp(yr[j * r.inner]) * gsum;
                    }
                }
            }
            x.accumulate_grad(std::move(dx));
        });
    }
    return out;
}

Tensor softmax(const Tensor& x, int dim) {
    const Rows r("softmax", x.shape(), dim);
    const Array& xv = x.value();
    Array y = Array::from_shape(xv.shape());
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
        tape->record("softmax", {x}, out, [x, y_handle, r](const Array& g) {
            // dx_j = y_j (g_j - sum_k g_k y_k)
            Array dx = Array::from_shape(g.shape());
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
        });
    }
    return out;
}

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

    // Forward: per row, lse_n = log sum_c e^(x[n, c]); L = (1/N) sum_n (lse_n - x[n, t_n])
    const real* x = logits.value().data();
    std::vector<real> lse(N);
    double total = 0;
    for (std::size_t i = 0; i < N; ++i) {
        const real* row = x + i * C;
        lse[i] = log_sum_exp(row, C, 1);
        total += static_cast<double>(lse[i] - row[targets[i]]);
    }
    Tensor out = Tensor::scalar(static_cast<real>(total / static_cast<double>(N)));

    if (Tape* tape = recording_tape(logits)) {
        tape->record("cross_entropy", {logits}, out,
                     [logits, targets, lse = std::move(lse), N, C](const Array& g) {
                         // dx[n, c] = g (p[n, c] - [c == t_n]) / N, p[n, c] = e^(x[n, c] - lse_n)
                         const real scale = g.flat(0) / static_cast<real>(N);
                         Array dx = Array::from_shape({N, C});
                         const real* xp = logits.value().data();
                         real* dp = dx.data();
                         for (std::size_t i = 0; i < N; ++i) {
                             const real* row = xp + i * C;
                             real* drow = dp + i * C;
                             for (std::size_t c = 0; c < C; ++c) {
                                 drow[c] = scale * std::exp(row[c] - lse[i]);
                             }
                             drow[targets[i]] -= scale;
                         }
                         logits.accumulate_grad(std::move(dx));
                     });
    }
    return out;
}

Tensor mse_loss(const Tensor& input, const Tensor& target) {
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
        tape->record(
            "mse_loss", {input, target}, out,
            [input, target, diff = std::move(diff), n](const Array& g) {
                // dL/dx = 2 d g / n, dL/dy = -2 d g / n
                const real scale = real(2) * g.flat(0) / static_cast<real>(n);
                if (input.requires_grad()) {
                    input.accumulate_grad(unbroadcast(Array(diff * scale), input.shape()));
                }
                if (target.requires_grad()) {
                    target.accumulate_grad(unbroadcast(Array(diff * (-scale)), target.shape()));
                }
            });
    }
    return out;
}

}  // namespace tg
