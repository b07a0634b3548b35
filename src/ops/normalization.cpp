#include "tapegrad/ops/normalization.hpp"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "tapegrad/parallel.hpp"
#include "tapegrad/tape.hpp"

namespace tg {

namespace {

// ---------------------------------------------------------------------------------------------
// Shared pieces: argument checks, recording, and the per-set sums every normalisation needs.
// ---------------------------------------------------------------------------------------------

/// The tape to record on (the active tape, if any defined input requires grad) and, in
/// `inputs`, the defined ones among `candidates` (optional weight/bias may be undefined).
Tape* tape_for(std::initializer_list<Tensor> candidates, std::vector<Tensor>& inputs) {
    Tape* tape = Tape::active();
    if (tape == nullptr) return nullptr;
    bool any = false;
    for (const Tensor& t : candidates) {
        if (!t.defined()) continue;
        inputs.push_back(t);
        any = any || t.requires_grad();
    }
    return any ? tape : nullptr;
}

std::string rank_str(std::size_t rank) {
    return std::to_string(rank);
}

/// x must be [N, C, *].
void check_nc(const char* op, const Tensor& x) {
    if (x.dim() < 2) {
        throw std::invalid_argument(std::string(op) + ": input " + shape_str(x.shape()) +
                                    " has rank " + rank_str(x.dim()) +
                                    ", expected rank 2 or more ([N, C, *])");
    }
}

/// An optional per-channel tensor (weight, bias, running statistic) must have shape [C].
void check_per_channel(const char* op, const char* what, const Tensor& t, const Shape& x_shape) {
    const Shape expected{x_shape[1]};
    if (t.defined() && t.shape() != expected) {
        throw std::invalid_argument(std::string(op) + ": " + what + " has shape " +
                                    shape_str(t.shape()) + ", expected " + shape_str(expected) +
                                    " (one per channel of input " + shape_str(x_shape) + ")");
    }
}

void check_running_pair(const char* op, const Tensor& running_mean, const Tensor& running_var) {
    if (running_mean.defined() != running_var.defined()) {
        throw std::invalid_argument(std::string(op) +
                                    ": running_mean and running_var must be both defined or "
                                    "both undefined");
    }
}

/// The checks batch_norm and instance_norm share: x is [N, C, *], and weight, bias and the
/// running statistics are each undefined or [C], the two statistics defined together.
void check_per_channel_args(const char* op, const Tensor& x, const Tensor& weight,
                            const Tensor& bias, const Tensor& running_mean,
                            const Tensor& running_var) {
    check_nc(op, x);
    const Shape shape = x.shape();
    check_per_channel(op, "weight", weight, shape);
    check_per_channel(op, "bias", bias, shape);
    check_per_channel(op, "running_mean", running_mean, shape);
    check_per_channel(op, "running_var", running_var, shape);
    check_running_pair(op, running_mean, running_var);
}

/// Product of shape[from..]: the number of values per [n, c] for [N, C, H, W] (H·W).
std::size_t trailing_size(const Shape& shape, std::size_t from) {
    std::size_t n = 1;
    for (std::size_t i = from; i < shape.size(); ++i)
        n *= shape[i];
    return n;
}

/// The i-th element of an optional tensor, or `fallback` if it is undefined (γ = 1, β = 0).
real value_or(const Tensor& t, std::size_t i, real fallback) {
    return t.defined() ? t.value().data()[i] : fallback;
}

/// μ held as the `real` nearest it plus the rest, μ = hi + lo, so that x − μ computed as
/// (x − hi) − lo keeps full precision in float even when |μ| ≫ σ (x − hi is then exact);
/// a plain float μ would be off by up to 1/2 ulp of μ, magnified by 1/σ.
struct Centre {
    real hi, lo;
};
Centre centre(double mu) {
    const real hi = static_cast<real>(mu);
    return {hi, static_cast<real>(mu - hi)};
}

/// Two sums over i < len: su += Σ u_i, sv += Σ v_i, where {u_i, v_i} = term(i).
/// Speed without losing accuracy: the terms are added in kLanes interleaved partial sums in
/// `real` (which the compiler vectorises; it may not reorder one running sum itself), and
/// every kChunk terms these are moved into partial sums in double.
struct Pair {
    real u, v;
};
constexpr std::size_t kLanes = 8;
constexpr std::size_t kChunk = 64;

template <class Term>
inline void add_sums(std::size_t len, const Term& term, double& su, double& sv) {
    double u[kLanes] = {}, v[kLanes] = {};
    const std::size_t whole = len - len % kLanes;
    std::size_t i = 0;
    while (i < whole) {
        const std::size_t end = std::min(whole, i + kChunk);
        real chunk_u[kLanes] = {}, chunk_v[kLanes] = {};
        for (; i < end; i += kLanes) {
            for (std::size_t k = 0; k < kLanes; ++k) {
                const Pair p = term(i + k);
                chunk_u[k] += p.u;
                chunk_v[k] += p.v;
            }
        }
        for (std::size_t k = 0; k < kLanes; ++k) {
            u[k] += chunk_u[k];
            v[k] += chunk_v[k];
        }
    }
    for (; i < len; ++i) {
        const Pair p = term(i);
        u[0] += p.u;
        v[0] += p.v;
    }
    for (std::size_t k = 0; k < kLanes; ++k) {
        su += u[k];
        sv += v[k];
    }
}

/// Mean μ and biased variance σ² of one set of B = runs·len values: `runs` contiguous runs of
/// `len` values starting `stride` apart (batch_norm's channel c of [N, C, L]: N runs of L,
/// C·L apart; one run for the other normalisations).
///
/// One pass, with the sums of d = x − K shifted by K = the set's first value:
///     μ = K + Σd/B,    σ² = Σd²/B − (Σd/B)²
/// Shifting by a value of the set keeps both terms of the size of σ², so the subtraction loses
/// nothing (the unshifted Σx²/B − μ² cancels badly when |μ| ≫ σ). Sums are in double.
struct Moments {
    double mean, var;
};

Moments moments(const real* p, std::size_t runs, std::size_t len, std::size_t stride) {
    const double B = static_cast<double>(runs * len);
    if (runs * len == 0) {
        const double nan = std::numeric_limits<double>::quiet_NaN();
        return {nan, nan};
    }
    const real K = p[0];
    double sum_d = 0.0, sum_d2 = 0.0;
    for (std::size_t r = 0; r < runs; ++r) {
        const real* q = p + r * stride;
        add_sums(
            len,
            [q, K](std::size_t i) {
                const real d = q[i] - K;
                return Pair{d, d * d};
            },
            sum_d, sum_d2);
    }
    const double mean_d = sum_d / B;  // μ − K
    const double var = sum_d2 / B - mean_d * mean_d;
    return {K + mean_d, var > 0.0 ? var : 0.0};
}

/// running = (1 − momentum) running + momentum batch_stat, in place (no gradient).
void update_running(Tensor running, std::size_t c, double momentum, double batch_stat) {
    real& r = running.value().data()[c];
    r = static_cast<real>((1.0 - momentum) * r + momentum * batch_stat);
}

/// t.grad += sums, where sums (one per element of t, e.g. dγ_c = Σ dy·x̂ over channel c)
/// were accumulated in double.
void accumulate_sums(const Tensor& t, const std::vector<double>& sums) {
    Array g = Array::from_shape(t.shape());
    std::transform(sums.begin(), sums.end(), g.begin(),
                   [](double v) { return static_cast<real>(v); });
    t.accumulate_grad(std::move(g));
}

/// The unbiased variance σ² · B/(B − 1) that running_var tracks.
double unbiased(double var, std::size_t B) {
    return var * static_cast<double>(B) / static_cast<double>(B - 1);
}

// ---------------------------------------------------------------------------------------------
// group_norm and instance_norm: x [N, C, L] seen as [N, G, C/G, L]; each (n, g) is one
// contiguous set of B = C/G · L values with its own μ, 1/σ, and channel c of the group is
// scaled by γ_c and shifted by β_c. Instance norm is the case G = C.
// ---------------------------------------------------------------------------------------------

/// y = γ_c (x − μ_ng) · invstd_ng + β_c over x [N, C, L] (C = G·Cg), and its backward.
/// `mean`/`invstd` hold one value per (n, g); `input_stats` says whether they were computed
/// from x (then the backward goes through them) or are fixed running statistics.
Tensor normalize_groups(const char* op, const Tensor& x, std::size_t G, const Tensor& weight,
                        const Tensor& bias, std::vector<double> mean, std::vector<real> invstd,
                        bool input_stats) {
    const Shape shape = x.shape();
    const std::size_t N = shape[0], C = shape[1], L = trailing_size(shape, 2);
    const std::size_t Cg = G == 0 ? 0 : C / G;

    Array y = Array::from_shape(shape);
    const real* xp = x.value().data();
    real* yp = y.data();
    for (std::size_t n = 0; n < N; ++n) {
        for (std::size_t c = 0; c < C; ++c) {
            const std::size_t ng = n * G + c / Cg;
            const Centre mu = centre(mean[ng]);
            const real is = invstd[ng];
            const real g = value_or(weight, c, 1), b = value_or(bias, c, 0);
            const real* xb = xp + (n * C + c) * L;  // x[n, c, :]
            real* yb = yp + (n * C + c) * L;
            for (std::size_t l = 0; l < L; ++l) {
                const real xhat = ((xb[l] - mu.hi) - mu.lo) * is;  // x̂ = (x − μ) / σ
                yb[l] = g * xhat + b;                              // y = γ x̂ + β
            }
        }
    }

    Tensor out(std::move(y));
    std::vector<Tensor> inputs;
    if (Tape* tape = tape_for({x, weight, bias}, inputs)) {
        auto backward = [x, weight, bias, mean = std::move(mean), invstd = std::move(invstd), N, C,
                         L, G, Cg, input_stats](const Array& dy) {
            const bool need_dx = x.requires_grad();
            const bool need_dgamma = weight.defined() && weight.requires_grad();
            const bool need_dbeta = bias.defined() && bias.requires_grad();
            const real* xd = x.value().data();
            const real* dyp = dy.data();
            std::vector<double> dgamma(C, 0.0), dbeta(C, 0.0);
            Array dx;
            if (need_dx) dx = Array::from_shape(x.shape());
            const double B = static_cast<double>(Cg * L);  // values per set (n, g)

            for (std::size_t n = 0; n < N; ++n) {
                for (std::size_t g = 0; g < G; ++g) {
                    const std::size_t ng = n * G + g;
                    const Centre mu = centre(mean[ng]);
                    const real is = invstd[ng];
                    // Pass 1: per channel Σdy (→ dβ_c) and Σdy·x̂ (→ dγ_c); with dx̂ = dy·γ_c,
                    // over the group Σdx̂ = Σ_c γ_c Σdy and Σ(dx̂·x̂) = Σ_c γ_c Σ(dy·x̂).
                    double sum_dxhat = 0.0, sum_dxhat_xhat = 0.0;
                    for (std::size_t j = 0; j < Cg; ++j) {
                        const std::size_t c = g * Cg + j;
                        const real* xb = xd + (n * C + c) * L;
                        const real* dyb = dyp + (n * C + c) * L;
                        double sdy = 0.0, sdy_xhat = 0.0;
                        add_sums(
                            L,
                            [xb, dyb, mu, is](std::size_t l) {
                                return Pair{dyb[l], dyb[l] * (((xb[l] - mu.hi) - mu.lo) * is)};
                            },
                            sdy, sdy_xhat);
                        dbeta[c] += sdy;
                        dgamma[c] += sdy_xhat;
                        const double gamma = value_or(weight, c, 1);
                        sum_dxhat += gamma * sdy;
                        sum_dxhat_xhat += gamma * sdy_xhat;
                    }
                    if (!need_dx) continue;
                    // Pass 2, batch_norm's formula with B = Cg·L values per set:
                    //   input statistics: dx = 1/B · 1/σ · (B·dx̂ − Σdx̂ − x̂·Σ(dx̂·x̂))
                    //   fixed statistics: dx = dx̂ / σ
                    const real k = static_cast<real>(is / B);
                    const real s1 = static_cast<real>(sum_dxhat);
                    const real s2 = static_cast<real>(sum_dxhat_xhat);
                    const real Bn = static_cast<real>(B);
                    for (std::size_t j = 0; j < Cg; ++j) {
                        const std::size_t c = g * Cg + j;
                        const real gamma = value_or(weight, c, 1);
                        const real* xb = xd + (n * C + c) * L;
                        const real* dyb = dyp + (n * C + c) * L;
                        real* dxb = dx.data() + (n * C + c) * L;
                        if (input_stats) {
                            for (std::size_t l = 0; l < L; ++l) {
                                const real xhat = ((xb[l] - mu.hi) - mu.lo) * is;
                                const real dxhat = dyb[l] * gamma;
                                real d = Bn * dxhat;  // term 1: B·dx̂
                                d -= s1;              // term 2: Σdx̂
                                d -= xhat * s2;       // term 3: x̂·Σ(dx̂·x̂)
                                dxb[l] = k * d;
                            }
                        } else {
                            const real scale = gamma * is;
                            for (std::size_t l = 0; l < L; ++l)
                                dxb[l] = dyb[l] * scale;
                        }
                    }
                }
            }
            if (need_dx) x.accumulate_grad(std::move(dx));
            if (need_dgamma) accumulate_sums(weight, dgamma);
            if (need_dbeta) accumulate_sums(bias, dbeta);
        };
        tape->record(op, std::move(inputs), out, std::move(backward));
    }
    return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// batch_norm
// ---------------------------------------------------------------------------------------------

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum,
                  double eps) {
    const char* op = "batch_norm";
    check_per_channel_args(op, x, weight, bias, running_mean, running_var);
    const Shape shape = x.shape();

    // x [N, C, L] with L = H·W (1 for [N, C]); channel c has B = N·L values.
    const std::size_t N = shape[0], C = shape[1], L = trailing_size(shape, 2);
    const std::size_t B = N * L;
    // Batch statistics when training, and in eval without running statistics.
    const bool batch_stats = training || !running_mean.defined();
    if (batch_stats && B == 1) {
        throw std::invalid_argument(std::string(op) +
                                    ": expected more than 1 value per channel when training, "
                                    "got input size " +
                                    shape_str(shape));
    }

    // Per channel: μ_c and 1/σ_c = 1 / sqrt(σ²_c + ε), from the batch or the running stats.
    const real* xp = x.value().data();
    std::vector<double> mean(C);
    std::vector<real> invstd(C);
    Array y = Array::from_shape(shape);
    real* yp = y.data();
    // Channel by channel (channels are independent, so they are split between threads when
    // each gets enough values): its statistics, then y = γ x̂ + β over its N blocks x[n, c, :]
    // at once, while the channel's values are still in cache.
    const std::size_t channel_grain = grain_for(B);
    parallel_for(C, channel_grain, [&](std::size_t c_begin, std::size_t c_end) {
        for (std::size_t c = c_begin; c < c_end; ++c) {
            if (batch_stats) {
                const Moments m = moments(xp + c * L, N, L, C * L);  // N runs of L, C·L apart
                mean[c] = m.mean;
                invstd[c] = static_cast<real>(1.0 / std::sqrt(m.var + eps));
                if (training && running_mean.defined()) {
                    update_running(running_mean, c, momentum, m.mean);
                    update_running(running_var, c, momentum, unbiased(m.var, B));
                }
            } else {
                mean[c] = running_mean.value().data()[c];
                invstd[c] = static_cast<real>(1.0 / std::sqrt(running_var.value().data()[c] + eps));
            }

            // y = γ x̂ + β with x̂ = (x − μ) / σ
            const Centre mu = centre(mean[c]);
            const real is = invstd[c];
            const real g = value_or(weight, c, 1), b = value_or(bias, c, 0);
            for (std::size_t n = 0; n < N; ++n) {
                const real* xb = xp + (n * C + c) * L;
                real* yb = yp + (n * C + c) * L;
                for (std::size_t l = 0; l < L; ++l) {
                    const real xhat = ((xb[l] - mu.hi) - mu.lo) * is;
                    yb[l] = g * xhat + b;
                }
            }
        }
    });

    Tensor out(std::move(y));
    std::vector<Tensor> inputs;
    if (Tape* tape = tape_for({x, weight, bias}, inputs)) {
        // Saved for backward: μ and 1/σ per channel (x̂ is recomputed from x, which the tape
        // keeps alive anyway) — 2·C numbers instead of a copy of x.
        auto backward = [x, weight, bias, mean = std::move(mean), invstd = std::move(invstd), N, C,
                         L, B, batch_stats](const Array& dy) {
            const bool need_dx = x.requires_grad();
            const bool need_dgamma = weight.defined() && weight.requires_grad();
            const bool need_dbeta = bias.defined() && bias.requires_grad();
            const real* xd = x.value().data();
            const real* dyp = dy.data();
            Array dx, dw, db;
            if (need_dx) dx = Array::from_shape(x.shape());
            if (need_dgamma) dw = Array::from_shape(weight.shape());
            if (need_dbeta) db = Array::from_shape(bias.shape());

            // Channels are independent: split them between threads when each gets enough.
            const std::size_t grain = grain_for(B);
            parallel_for(C, grain, [&](std::size_t c_begin, std::size_t c_end) {
                for (std::size_t c = c_begin; c < c_end; ++c) {
                    const Centre mu = centre(mean[c]);
                    const real is = invstd[c];
                    const real gamma = value_or(weight, c, 1);

                    // Pass 1 over the channel: dβ = Σdy, dγ = Σdy·x̂.
                    double sum_dy = 0.0, sum_dy_xhat = 0.0;
                    for (std::size_t n = 0; n < N; ++n) {
                        const real* xb = xd + (n * C + c) * L;
                        const real* dyb = dyp + (n * C + c) * L;
                        add_sums(
                            L,
                            [xb, dyb, mu, is](std::size_t l) {
                                return Pair{dyb[l], dyb[l] * (((xb[l] - mu.hi) - mu.lo) * is)};
                            },
                            sum_dy, sum_dy_xhat);
                    }
                    if (need_dgamma) dw.data()[c] = static_cast<real>(sum_dy_xhat);
                    if (need_dbeta) db.data()[c] = static_cast<real>(sum_dy);
                    if (!need_dx) continue;

                    if (batch_stats) {
                        // μ and σ depend on every x of the channel. With dx̂ = dy·γ:
                        //   Σdx̂ = γ·Σdy,   Σ(dx̂·x̂) = γ·Σ(dy·x̂)
                        const real sum_dxhat = static_cast<real>(gamma * sum_dy);
                        const real sum_dxhat_xhat = static_cast<real>(gamma * sum_dy_xhat);
                        const real Bn = static_cast<real>(B);  // B as a number
                        const real k = is / Bn;                // 1/B · 1/σ
                        // Pass 2. dx = 1/B · 1/σ · (B·dx̂ − Σdx̂ − x̂·Σ(dx̂·x̂))
                        for (std::size_t n = 0; n < N; ++n) {
                            const real* xb = xd + (n * C + c) * L;
                            const real* dyb = dyp + (n * C + c) * L;
                            real* dxb = dx.data() + (n * C + c) * L;
                            for (std::size_t l = 0; l < L; ++l) {
                                const real xhat = ((xb[l] - mu.hi) - mu.lo) * is;
                                const real dxhat = dyb[l] * gamma;
                                real d = Bn * dxhat;         // term 1: B·dx̂
                                d -= sum_dxhat;              // term 2: Σdx̂
                                d -= xhat * sum_dxhat_xhat;  // term 3: x̂·Σ(dx̂·x̂)
                                dxb[l] = k * d;
                            }
                        }
                    } else {
                        // Eval: μ and σ are fixed running statistics, y = γ (x − μ)/σ + β
                        // is affine in x: dx = dy·γ/σ.
                        const real scale = gamma * is;
                        for (std::size_t n = 0; n < N; ++n) {
                            const real* dyb = dyp + (n * C + c) * L;
                            real* dxb = dx.data() + (n * C + c) * L;
                            for (std::size_t l = 0; l < L; ++l)
                                dxb[l] = dyb[l] * scale;
                        }
                    }
                }
            });
            if (need_dx) x.accumulate_grad(std::move(dx));
            if (need_dgamma) weight.accumulate_grad(std::move(dw));
            if (need_dbeta) bias.accumulate_grad(std::move(db));
        };
        tape->record(op, std::move(inputs), out, std::move(backward));
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// layer_norm
// ---------------------------------------------------------------------------------------------

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps) {
    const char* op = "layer_norm";
    const Shape shape = x.shape();
    if (normalized_shape.empty()) {
        throw std::invalid_argument(std::string(op) +
                                    ": normalized_shape is empty, expected at least one dim");
    }
    const std::size_t nd = normalized_shape.size();
    const bool matches = shape.size() >= nd && std::equal(normalized_shape.begin(),
                                                          normalized_shape.end(), shape.end() - nd);
    if (!matches) {
        throw std::invalid_argument(std::string(op) + ": normalized_shape " +
                                    shape_str(normalized_shape) + " does not match input " +
                                    shape_str(shape) + " (expected input of shape [*, " +
                                    shape_str(normalized_shape).substr(1) + ")");
    }
    const auto check_param = [&](const char* name, const Tensor& t) {
        if (t.defined() && t.shape() != normalized_shape) {
            throw std::invalid_argument(std::string(op) + ": " + name + " has shape " +
                                        shape_str(t.shape()) + ", expected normalized_shape " +
                                        shape_str(normalized_shape));
        }
    };
    check_param("weight", weight);
    check_param("bias", bias);

    // x [R, D]: R rows (the leading dims), each one set of D values (normalized_shape).
    const std::size_t D = trailing_size(shape, shape.size() - nd);
    const std::size_t R = D == 0 ? 0 : x.numel() / D;
    const real* xp = x.value().data();
    const real* wp = weight.defined() ? weight.value().data() : nullptr;
    const real* bp = bias.defined() ? bias.value().data() : nullptr;
    std::vector<double> mean(R);
    std::vector<real> invstd(R);
    Array y = Array::from_shape(shape);
    for (std::size_t r = 0; r < R; ++r) {
        const Moments m = moments(xp + r * D, 1, D, D);
        mean[r] = m.mean;
        const Centre mu = centre(m.mean);
        const real is = invstd[r] = static_cast<real>(1.0 / std::sqrt(m.var + eps));
        const real* xr = xp + r * D;
        real* yr = y.data() + r * D;
        for (std::size_t i = 0; i < D; ++i) {
            const real xhat = ((xr[i] - mu.hi) - mu.lo) * is;             // x̂ = (x − μ) / σ
            yr[i] = (wp ? wp[i] * xhat : xhat) + (bp ? bp[i] : real(0));  // y = γ_i x̂ + β_i
        }
    }

    Tensor out(std::move(y));
    std::vector<Tensor> inputs;
    if (Tape* tape = tape_for({x, weight, bias}, inputs)) {
        auto backward = [x, weight, bias, mean = std::move(mean), invstd = std::move(invstd), R,
                         D](const Array& dy) {
            const bool need_dx = x.requires_grad();
            const bool need_dgamma = weight.defined() && weight.requires_grad();
            const bool need_dbeta = bias.defined() && bias.requires_grad();
            const real* xd = x.value().data();
            const real* wd = weight.defined() ? weight.value().data() : nullptr;
            const real* dyp = dy.data();
            Array dx;
            if (need_dx) dx = Array::from_shape(x.shape());
            std::vector<double> dgamma(need_dgamma ? D : 0, 0.0), dbeta(need_dbeta ? D : 0, 0.0);
            const double Dd = static_cast<double>(D);

            for (std::size_t r = 0; r < R; ++r) {
                const Centre mu = centre(mean[r]);
                const real is = invstd[r];
                const real* xr = xd + r * D;
                const real* dyr = dyp + r * D;
                // dγ_i = Σ_rows dy·x̂, dβ_i = Σ_rows dy.
                if (need_dgamma) {
                    for (std::size_t i = 0; i < D; ++i)
                        dgamma[i] += dyr[i] * (((xr[i] - mu.hi) - mu.lo) * is);
                }
                if (need_dbeta) {
                    for (std::size_t i = 0; i < D; ++i)
                        dbeta[i] += dyr[i];
                }
                if (!need_dx) continue;
                // Pass 1: Σdx̂ and Σ(dx̂·x̂) over the row, dx̂_i = dy_i·γ_i.
                double sum_dxhat = 0.0, sum_dxhat_xhat = 0.0;
                add_sums(
                    D,
                    [xr, dyr, wd, mu, is](std::size_t i) {
                        const real dxhat = wd ? dyr[i] * wd[i] : dyr[i];
                        return Pair{dxhat, dxhat * (((xr[i] - mu.hi) - mu.lo) * is)};
                    },
                    sum_dxhat, sum_dxhat_xhat);
                // Pass 2, batch_norm's formula with B = D: dx = 1/D · 1/σ · (D·dx̂ −
                // Σdx̂ − x̂·Σ(dx̂·x̂))
                const real k = static_cast<real>(is / Dd);
                const real s1 = static_cast<real>(sum_dxhat);
                const real s2 = static_cast<real>(sum_dxhat_xhat);
                const real Dr = static_cast<real>(Dd);
                real* dxr = dx.data() + r * D;
                for (std::size_t i = 0; i < D; ++i) {
                    const real xhat = ((xr[i] - mu.hi) - mu.lo) * is;
                    const real dxhat = wd ? dyr[i] * wd[i] : dyr[i];
                    real d = Dr * dxhat;  // term 1: D·dx̂
                    d -= s1;              // term 2: Σdx̂
                    d -= xhat * s2;       // term 3: x̂·Σ(dx̂·x̂)
                    dxr[i] = k * d;
                }
            }
            if (need_dx) x.accumulate_grad(std::move(dx));
            if (need_dgamma) accumulate_sums(weight, dgamma);
            if (need_dbeta) accumulate_sums(bias, dbeta);
        };
        tape->record(op, std::move(inputs), out, std::move(backward));
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// group_norm and instance_norm
// ---------------------------------------------------------------------------------------------

Tensor group_norm(const Tensor& x, std::size_t num_groups, const Tensor& weight, const Tensor& bias,
                  double eps) {
    const char* op = "group_norm";
    check_nc(op, x);
    const Shape shape = x.shape();
    const std::size_t N = shape[0], C = shape[1], L = trailing_size(shape, 2);
    if (num_groups == 0 || C % num_groups != 0) {
        throw std::invalid_argument(
            std::string(op) + ": input " + shape_str(shape) + " has " + std::to_string(C) +
            " channels, expected a number divisible by num_groups = " + std::to_string(num_groups));
    }
    check_per_channel(op, "weight", weight, shape);
    check_per_channel(op, "bias", bias, shape);

    // Each (n, g) is one contiguous set of Cg·L values.
    const std::size_t G = num_groups, Cg = C / G;
    const real* xp = x.value().data();
    std::vector<double> mean(N * G);
    std::vector<real> invstd(N * G);
    for (std::size_t ng = 0; ng < N * G; ++ng) {
        const Moments m = moments(xp + ng * Cg * L, 1, Cg * L, Cg * L);
        mean[ng] = m.mean;
        invstd[ng] = static_cast<real>(1.0 / std::sqrt(m.var + eps));
    }
    return normalize_groups(op, x, G, weight, bias, std::move(mean), std::move(invstd), true);
}

Tensor instance_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                     const Tensor& weight, const Tensor& bias, bool use_input_stats,
                     double momentum, double eps) {
    const char* op = "instance_norm";
    check_per_channel_args(op, x, weight, bias, running_mean, running_var);
    const Shape shape = x.shape();
    const std::size_t N = shape[0], C = shape[1], L = trailing_size(shape, 2);

    std::vector<double> mean(N * C);
    std::vector<real> invstd(N * C);
    if (use_input_stats) {
        if (L == 1) {
            throw std::invalid_argument(std::string(op) +
                                        ": expected more than 1 spatial element when training, "
                                        "got input size " +
                                        shape_str(shape));
        }
        // μ, σ² per (n, c); the running statistics track their mean over n.
        const real* xp = x.value().data();
        std::vector<double> batch_mean(C, 0.0), batch_var(C, 0.0);
        for (std::size_t n = 0; n < N; ++n) {
            for (std::size_t c = 0; c < C; ++c) {
                const std::size_t nc = n * C + c;
                const Moments m = moments(xp + nc * L, 1, L, L);
                mean[nc] = m.mean;
                invstd[nc] = static_cast<real>(1.0 / std::sqrt(m.var + eps));
                batch_mean[c] += m.mean / static_cast<double>(N);
                batch_var[c] += unbiased(m.var, L) / static_cast<double>(N);
            }
        }
        if (running_mean.defined()) {
            for (std::size_t c = 0; c < C; ++c) {
                update_running(running_mean, c, momentum, batch_mean[c]);
                update_running(running_var, c, momentum, batch_var[c]);
            }
        }
    } else {
        if (!running_mean.defined()) {
            throw std::invalid_argument(std::string(op) +
                                        ": running_mean and running_var must be defined when "
                                        "use_input_stats is false");
        }
        for (std::size_t n = 0; n < N; ++n) {
            for (std::size_t c = 0; c < C; ++c) {
                mean[n * C + c] = running_mean.value().data()[c];
                invstd[n * C + c] =
                    static_cast<real>(1.0 / std::sqrt(running_var.value().data()[c] + eps));
            }
        }
    }
    // Instance norm is group norm with one channel per group (G = C).
    return normalize_groups(op, x, C, weight, bias, std::move(mean), std::move(invstd),
                            use_input_stats);
}

}  // namespace tg
