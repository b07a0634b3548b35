// log_softmax and cross_entropy as the equations read, one row at a time, one thread.
//
// A row is n values x_1 … x_n (the classes of one sample, for cross_entropy the C logits of
// row n of x [N, C]). Its log-softmax is
//
//     log p_j = x_j − log Σ_k e^(x_k)
//
// computed as (x_j − m) − log Σ_k e^(x_k − m) with m = max_k x_k: every e^(x_k − m) is at most
// 1, so nothing overflows however large the logits are. Sums are accumulated in double; the
// fast kernels (kernels/fast/cross_entropy.cpp) are tested against these.
#include "../cross_entropy.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace tg::kernels::reference {

// log_softmax, x seen as [outer, n, inner]: row (o, i) is x[o, 0, i], x[o, 1, i], … (inner apart).
//
//     y_j = (x_j − m) − log s,   m = max_k x_k,   s = Σ_k e^(x_k − m)
void log_softmax_forward(real* y, const real* x, std::size_t outer, std::size_t n,
                         std::size_t inner) {
    for (std::size_t o = 0; o < outer; ++o) {
        for (std::size_t i = 0; i < inner; ++i) {
            const std::size_t row = o * n * inner + i;  // x[o, 0, i]; x[o, j, i] is row + j·inner
            // m = max_k x_k
            double m = -std::numeric_limits<double>::infinity();
            for (std::size_t k = 0; k < n; ++k)
                m = std::max(m, static_cast<double>(x[row + k * inner]));
            // s = Σ_k e^(x_k − m)
            double s = 0.0;
            for (std::size_t k = 0; k < n; ++k)
                s += std::exp(x[row + k * inner] - m);
            // (m = ±∞, a row of −∞ or one with +∞: log s = 0 rather than log NaN, as the fast
            // kernel)
            const double log_s = std::isinf(m) ? 0.0 : std::log(s);
            // y_j = (x_j − m) − log s
            for (std::size_t j = 0; j < n; ++j)
                y[row + j * inner] = static_cast<real>((x[row + j * inner] - m) - log_s);
        }
    }
}

// Backward. With p_j = e^(y_j) (the softmax), ∂y_j/∂x_k = [j = k] − p_k, so
//
//     dx_k = Σ_j dy_j ([j = k] − p_k) = dy_k − p_k Σ_j dy_j
void log_softmax_backward(real* dx, const real* dy, const real* y, std::size_t outer, std::size_t n,
                          std::size_t inner) {
    for (std::size_t o = 0; o < outer; ++o) {
        for (std::size_t i = 0; i < inner; ++i) {
            const std::size_t row = o * n * inner + i;
            // Σ_j dy_j
            double sum_dy = 0.0;
            for (std::size_t j = 0; j < n; ++j)
                sum_dy += dy[row + j * inner];
            // dx_k = dy_k − p_k Σ_j dy_j,  p_k = e^(y_k)
            for (std::size_t k = 0; k < n; ++k) {
                const double p = std::exp(static_cast<double>(y[row + k * inner]));
                dx[row + k * inner] = static_cast<real>(dy[row + k * inner] - p * sum_dy);
            }
        }
    }
}

// Cross-entropy over logits x [N, C] with targets t_n: the mean negative log-probability of
// each row's target class,
//
//     L = 1/N Σ_n (lse_n − x[n, t_n]),   lse_n = log Σ_c e^(x[n, c]) = m_n + log Σ_c e^(x[n, c] −
//     m_n)
//
// (−log p[n, t_n] = lse_n − x[n, t_n]; m_n = max_c x[n, c]).
void cross_entropy_forward(real* loss, double* lse, const real* x, const std::int64_t* targets,
                           std::size_t N, std::size_t C) {
    double total = 0.0;  // Σ_n (lse_n − x[n, t_n])
    for (std::size_t n = 0; n < N; ++n) {
        const real* row = x + n * C;  // x[n, :]
        // m_n = max_c x[n, c]
        double m = -std::numeric_limits<double>::infinity();
        for (std::size_t c = 0; c < C; ++c)
            m = std::max(m, static_cast<double>(row[c]));
        // s_n = Σ_c e^(x[n, c] − m_n)
        double s = 0.0;
        for (std::size_t c = 0; c < C; ++c)
            s += std::exp(row[c] - m);
        // lse_n = m_n + log s_n   (m_n itself when it is ±∞: no ∞ − ∞)
        lse[n] = std::isinf(m) ? m : m + std::log(s);
        total += lse[n] - row[targets[n]];
    }
    loss[0] = static_cast<real>(total / static_cast<double>(N));  // L = 1/N Σ_n (…)
}

// Backward. With p[n, c] = e^(x[n, c] − lse_n) (the softmax of row n),
//
//     dx[n, c] = dL/N · (p[n, c] − [c = t_n])
void cross_entropy_backward(real* dx, real dloss, const real* x, const double* lse,
                            const std::int64_t* targets, std::size_t N, std::size_t C) {
    const double scale = static_cast<double>(dloss) / static_cast<double>(N);  // dL/N
    for (std::size_t n = 0; n < N; ++n) {
        for (std::size_t c = 0; c < C; ++c) {
            const double p = std::exp(x[n * C + c] - lse[n]);  // p[n, c]
            const double is_target = c == static_cast<std::size_t>(targets[n]) ? 1.0 : 0.0;
            dx[n * C + c] = static_cast<real>(scale * (p - is_target));
        }
    }
}

}  // namespace tg::kernels::reference
