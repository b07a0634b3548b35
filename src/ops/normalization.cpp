#include "tapegrad/ops/normalization.hpp"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "kernels/fast/batch_norm.hpp"
#include "kernels/fast/sums.hpp"
#include "kernels/reference/batch_norm.hpp"
#include "tapegrad/kernels.hpp"
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

using kernels::fast::add_sums;
using kernels::fast::Centre;
using kernels::fast::centre;
using kernels::fast::Moments;
using kernels::fast::moments;
using kernels::fast::Pair;

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

/// x seen as [N, C, L], and whether the statistics were the batch's own: what BatchNorm's
/// backward kernel needs besides the arrays. (Captured as one struct: gdb then does not stop
/// on the closure's capture list while the kernel's arguments are evaluated.)
struct BatchNormShape {
    std::size_t N, C, L;
    bool batch_stats;
};

/// The gradients a normalisation's backward kernel writes: dx [x's shape], dγ and dβ [C], each
/// allocated only when its tensor requires grad (else null, which the kernels skip);
/// accumulate() adds them into the tensors' grads. One line in the op's backward closure, so
/// that `step` from the tape reaches the kernel in a few steps (docs/debugging.md).
struct InputGrads {
    InputGrads(const Tensor& x, const Tensor& weight, const Tensor& bias)
        : x_(x), weight_(weight), bias_(bias) {
        if (x.requires_grad()) dx = allocate(x, dx_array_);
        if (weight.defined() && weight.requires_grad()) dgamma = allocate(weight, dgamma_array_);
        if (bias.defined() && bias.requires_grad()) dbeta = allocate(bias, dbeta_array_);
    }
    void accumulate() {
        if (dx) x_.accumulate_grad(std::move(dx_array_));
        if (dgamma) weight_.accumulate_grad(std::move(dgamma_array_));
        if (dbeta) bias_.accumulate_grad(std::move(dbeta_array_));
    }
    real* dx = nullptr;
    real* dgamma = nullptr;
    real* dbeta = nullptr;

  private:
    static real* allocate(const Tensor& t, Array& a) {
        a = Array::from_shape(t.shape());
        return a.data();
    }
    const Tensor& x_;
    const Tensor& weight_;
    const Tensor& bias_;
    Array dx_array_, dgamma_array_, dbeta_array_;
};

/// The data of an optional tensor (weight, bias), or null when it is undefined.
const real* data_or_null(const Tensor& t) {
    return t.defined() ? t.value().data() : nullptr;
}

/// What batch_norm works on: its arguments as the kernels take them — x seen as [N, C, L]
/// (L = H·W, 1 for [N, C]), channel c one set of B = N·L values, raw pointers to the data —
/// and the buffers the forward kernel fills.
struct BatchNormWork {
    std::size_t N, C, L, B;
    bool batch_stats;  // normalise with the batch's statistics (training, or no running ones)
    const real* x;
    const real* gamma;       // weight, or null (γ = 1)
    const real* beta;        // bias, or null (β = 0)
    const real* fixed_mean;  // the running statistics to normalise with, or null (batch_stats)
    const real* fixed_var;
    Array y;                                // [N, C, *], the output
    std::vector<double> mean, var, invstd;  // [C] each: μ_B, σ²_B, invstd = 1/sqrt(σ²_B + ε)
};

/// Checks batch_norm's arguments (see check_per_channel_args; a channel must have more than
/// one value when batch statistics are needed, as in PyTorch), returns them as the kernels take
/// them, with the output and statistics allocated.
BatchNormWork prepare_batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                 const Tensor& running_mean, const Tensor& running_var,
                                 bool training) {
    const char* op = "batch_norm";
    check_per_channel_args(op, x, weight, bias, running_mean, running_var);
    const Shape shape = x.shape();
    BatchNormWork bn{};
    bn.N = shape[0], bn.C = shape[1], bn.L = trailing_size(shape, 2);
    bn.B = bn.N * bn.L;
    bn.batch_stats = training || !running_mean.defined();
    if (bn.batch_stats && bn.B == 1) {
        throw std::invalid_argument(std::string(op) +
                                    ": expected more than 1 value per channel when training, "
                                    "got input size " +
                                    shape_str(shape));
    }
    bn.x = x.value().data();
    bn.gamma = data_or_null(weight);
    bn.beta = data_or_null(bias);
    bn.fixed_mean = bn.batch_stats ? nullptr : running_mean.value().data();
    bn.fixed_var = bn.batch_stats ? nullptr : running_var.value().data();
    bn.y = Array::from_shape(shape);
    bn.mean.resize(bn.C);
    bn.var.resize(bn.C);
    bn.invstd.resize(bn.C);
    return bn;
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
    BatchNormWork bn = prepare_batch_norm(x, weight, bias, running_mean, running_var, training);
    if (kernels_in_use() == Kernels::reference)
        kernels::reference::batch_norm_forward(bn.y.data(), bn.mean.data(), bn.var.data(),
                                               bn.invstd.data(), bn.x, bn.gamma, bn.beta,
                                               bn.fixed_mean, bn.fixed_var, bn.N, bn.C, bn.L, eps);
    else
        kernels::fast::batch_norm_forward(bn.y.data(), bn.mean.data(), bn.var.data(),
                                          bn.invstd.data(), bn.x, bn.gamma, bn.beta, bn.fixed_mean,
                                          bn.fixed_var, bn.N, bn.C, bn.L, eps);

    // An empty batch (B = 0) has no statistics (0/0): like PyTorch, the running estimates
    // stay as they are instead of becoming NaN for good.
    if (training && running_mean.defined() && bn.B > 0) {
        // running_mean = (1 − momentum)·running_mean + momentum·μ_B
        // running_var  = (1 − momentum)·running_var  + momentum·σ²_B·B/(B − 1)   (unbiased)
        real* run_mean = Tensor(running_mean).value().data();
        real* run_var = Tensor(running_var).value().data();
        const double B = static_cast<double>(bn.B);
        for (std::size_t c = 0; c < bn.C; ++c) {
            run_mean[c] = static_cast<real>((1.0 - momentum) * run_mean[c] + momentum * bn.mean[c]);
            run_var[c] = static_cast<real>((1.0 - momentum) * run_var[c] +
                                           momentum * bn.var[c] * B / (B - 1.0));
        }
    }

    Tensor out(std::move(bn.y));
    std::vector<Tensor> inputs;
    if (Tape* tape = tape_for({x, weight, bias}, inputs)) {
        // Saved for backward: μ and invstd per channel (x̂ is recomputed from x, which the tape
        // keeps alive anyway): 2·C numbers instead of a copy of x. The data pointers are taken
        // afresh: a tensor's value may have been replaced since the forward pass.
        const BatchNormShape s{bn.N, bn.C, bn.L, bn.batch_stats};
        auto backward = [x, weight, bias, s, mean = std::move(bn.mean),
                         invstd = std::move(bn.invstd)](const Array& dy) {
            InputGrads grads(x, weight, bias);  // dx, dγ, dβ: null where not wanted
            if (kernels_in_use() == Kernels::reference)
                kernels::reference::batch_norm_backward(
                    grads.dx, grads.dgamma, grads.dbeta, dy.data(), x.value().data(), mean.data(),
                    invstd.data(), data_or_null(weight), s.N, s.C, s.L, s.batch_stats);
            else
                kernels::fast::batch_norm_backward(
                    grads.dx, grads.dgamma, grads.dbeta, dy.data(), x.value().data(), mean.data(),
                    invstd.data(), data_or_null(weight), s.N, s.C, s.L, s.batch_stats);
            grads.accumulate();  // x.grad += dx, γ.grad += dγ, β.grad += dβ
        };
        tape->record("batch_norm", std::move(inputs), out, std::move(backward));
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
