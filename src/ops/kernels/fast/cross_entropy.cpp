// log_softmax and cross_entropy, fast: the same equations as kernels/reference/cross_entropy.cpp,
// summed in float (real) instead of double, with the row's max and log-sum computed once
// (max_and_log_sum) and shared by every value of the row.
#include "../cross_entropy.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace tg::kernels::fast {

namespace {

// The two parts of log Σ_j e^(x_j) over n values `stride` apart: m = max_j x_j and
// log s, s = Σ_j e^(x_j − m) (so the sum is m + log s).
struct MaxAndLogSum {
    real m, log_s;
};
MaxAndLogSum max_and_log_sum(const real* x, std::size_t n, std::size_t stride) {
    real m = -std::numeric_limits<real>::infinity();
    for (std::size_t j = 0; j < n; ++j)
        m = std::max(m, x[j * stride]);
    if (std::isinf(m)) return {m, real(0)};  // all −∞ (or empty), or +∞: avoid ∞ − ∞
    real s = 0;
    for (std::size_t j = 0; j < n; ++j)
        s += std::exp(x[j * stride] - m);
    return {m, std::log(s)};
}

}  // namespace

void log_softmax_forward(real* y, const real* x, std::size_t outer, std::size_t n,
                         std::size_t inner) {
    // y_j = (x_j − m) − log s, s = Σ_k e^(x_k − m), as PyTorch computes it. Not x_j − (m + log s):
    // for |m| of 50-100, m + log s rounds to a multiple of ulp(m) (3.8e-6 at 55), which a
    // log-probability near 0 cannot afford.
    for (std::size_t o = 0; o < outer; ++o) {
        for (std::size_t i = 0; i < inner; ++i) {
            const real* xr = x + o * n * inner + i;
            real* yr = y + o * n * inner + i;
            const MaxAndLogSum p = max_and_log_sum(xr, n, inner);
            for (std::size_t j = 0; j < n; ++j)
                yr[j * inner] = (xr[j * inner] - p.m) - p.log_s;
        }
    }
}

void log_softmax_backward(real* dx, const real* dy, const real* y, std::size_t outer, std::size_t n,
                          std::size_t inner) {
    // dx_j = dy_j − p_j Σ_k dy_k, with p = softmax(x) = e^y
    for (std::size_t o = 0; o < outer; ++o) {
        for (std::size_t i = 0; i < inner; ++i) {
            const std::size_t off = o * n * inner + i;
            const real* gr = dy + off;
            const real* yr = y + off;
            real* dr = dx + off;
            real gsum = 0;
            for (std::size_t j = 0; j < n; ++j)
                gsum += gr[j * inner];
            for (std::size_t j = 0; j < n; ++j)
                dr[j * inner] = gr[j * inner] - std::exp(yr[j * inner]) * gsum;
        }
    }
}

void cross_entropy_forward(real* loss, double* lse, const real* x, const std::int64_t* targets,
                           std::size_t N, std::size_t C) {
    // Per row, lse_n = log Σ_c e^(x[n, c]) in float; L = (1/N) Σ_n (lse_n − x[n, t_n]) in double.
    double total = 0;
    for (std::size_t i = 0; i < N; ++i) {
        const real* row = x + i * C;
        const MaxAndLogSum p = max_and_log_sum(row, C, 1);
        const real lse_i = p.m + p.log_s;
        lse[i] = lse_i;  // exact: a float widened to double
        total += static_cast<double>(lse_i - row[targets[i]]);
    }
    loss[0] = static_cast<real>(total / static_cast<double>(N));
}

void cross_entropy_backward(real* dx, real dloss, const real* x, const double* lse,
                            const std::int64_t* targets, std::size_t N, std::size_t C) {
    // dx[n, c] = dL (p[n, c] − [c == t_n]) / N, p[n, c] = e^(x[n, c] − lse_n), all in float.
    const real scale = dloss / static_cast<real>(N);
    for (std::size_t i = 0; i < N; ++i) {
        const real* row = x + i * C;
        real* drow = dx + i * C;
        const real lse_i = static_cast<real>(lse[i]);  // the float the forward computed
        for (std::size_t c = 0; c < C; ++c)
            drow[c] = scale * std::exp(row[c] - lse_i);
        drow[targets[i]] -= scale;
    }
}

}  // namespace tg::kernels::fast
