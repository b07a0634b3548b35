// Checks and diagnoses of the three BatchNorm exercises: batch_norm_forward,
// batch_norm_update_running, batch_norm_backward (the chapter's equations:
// src/ops/kernels/reference/batch_norm.cpp).
#include <cmath>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "exercises.hpp"
#include "grader.hpp"

namespace tg::grader {
namespace {

static_assert(std::is_same_v<real, double>, "the grader is compiled with -DTAPEGRAD_DOUBLE");

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

struct BnCase {
    std::string name;
    std::size_t N = 0, C = 0, L = 0;
    std::vector<double> x, gamma, beta, dy;     // gamma/beta empty: null (γ = 1, β = 0)
    std::vector<double> fixed_mean, fixed_var;  // empty: training (batch statistics)
    double eps = 1e-5;
    double momentum = 0.1;
    std::vector<double> running_mean, running_var;  // before the update (update_running)
    Outputs golden;  // PyTorch's numbers for this case, if any (y, dx, dgamma, dbeta, ...)
    std::size_t B() const { return N * L; }
};

const real* ptr(const std::vector<double>& v) {
    return v.empty() ? nullptr : v.data();
}

/// The PyTorch goldens of tests/reference/norm.txt: every batch_norm case that has running
/// statistics, three training steps and one eval step each.
void add_golden_cases(std::vector<BnCase>& cases) {
    struct Spec {
        const char* name;
        double eps;
        double momenta[3];
    };
    const Spec specs[] = {{"bn4d", 1e-5, {0.1, 0.1, 0.1}},
                          {"bn3d_cumulative", 1e-5, {1.0, 1.0 / 2, 1.0 / 3}},
                          {"bn2d", 1e-5, {0.1, 0.1, 0.1}},
                          {"bn2d_batch2", 0.5, {0.1, 0.1, 0.1}},
                          {"bn4d_noaffine", 1e-5, {0.1, 0.1, 0.1}},
                          {"bn3d_large_mean", 1e-5, {0.1, 0.1, 0.1}},
                          {"bn4d_eps", 1e-1, {1.0, 1.0 / 2, 1.0 / 3}}};
    const auto& g = goldens("norm");
    for (const Spec& spec : specs) {
        const std::string base = spec.name;
        std::vector<double> rm = g.at(base + "/rm_init").values,
                            rv = g.at(base + "/rv_init").values;
        for (int k = 0; k < 4; ++k) {
            const std::string step = k < 3 ? "step" + std::to_string(k) : "eval";
            const std::string key = base + "/" + step + "/";
            BnCase c;
            c.name = "PyTorch " + base + "/" + step;
            const Golden& x = g.at(key + "x");
            c.N = x.shape[0];
            c.C = x.shape[1];
            c.L = 1;
            for (std::size_t d = 2; d < x.shape.size(); ++d)
                c.L *= x.shape[d];
            c.x = x.values;
            c.dy = g.at(key + "dy").values;
            if (g.count(key + "weight")) {
                c.gamma = g.at(key + "weight").values;
                c.beta = g.at(key + "bias").values;
                c.golden["dgamma"] = g.at(key + "dweight").values;
                c.golden["dbeta"] = g.at(key + "dbias").values;
            }
            c.golden["y"] = g.at(key + "out").values;
            c.golden["dx"] = g.at(key + "dx").values;
            c.eps = spec.eps;
            if (k < 3) {
                c.momentum = spec.momenta[k];
                c.running_mean = rm;
                c.running_var = rv;
                rm = g.at(key + "running_mean").values;
                rv = g.at(key + "running_var").values;
                c.golden["running_mean"] = rm;
                c.golden["running_var"] = rv;
            } else {
                c.fixed_mean = rm;
                c.fixed_var = rv;
            }
            cases.push_back(std::move(c));
        }
    }
}

/// A random case [N, C, L]; x per channel = shift + scale·N(0, 1).
BnCase random_case(const std::string& name, std::size_t N, std::size_t C, std::size_t L,
                   double shift, double scale, bool affine, bool eval, double eps = 1e-5) {
    BnCase c;
    c.name = name + " [N, C, L] = [" + std::to_string(N) + ", " + std::to_string(C) + ", " +
             std::to_string(L) + "]";
    c.N = N;
    c.C = C;
    c.L = L;
    c.eps = eps;
    c.x = normal(N * C * L, 0.0, scale);
    const std::vector<double> shifts = normal(C, shift, std::fabs(shift) * 0.01 + 0.5);
    for (std::size_t i = 0; i < c.x.size(); ++i)
        c.x[i] += shifts[(i / L) % C];
    c.dy = normal(N * C * L);
    if (affine) {
        c.gamma = uniform(C, 0.5, 1.5);
        c.beta = normal(C, 0.0, 0.5);
    }
    c.running_mean = normal(C);
    c.running_var = uniform(C, 0.5, 1.5);
    c.momentum = 0.1;
    if (eval) {
        c.fixed_mean = normal(C, shift, 0.5);
        c.fixed_var = uniform(C, 0.5, 2.0);
    }
    return c;
}

const std::vector<BnCase>& cases() {
    static const std::vector<BnCase> all = [] {
        std::vector<BnCase> v;
        add_golden_cases(v);
        v.push_back(random_case("random", 4, 3, 5, 1.0, 2.0, true, false));
        v.push_back(random_case("random", 7, 2, 1, -3.0, 0.5, true, false));
        v.push_back(random_case("random, no γ/β", 3, 4, 6, 0.5, 1.5, false, false));
        v.push_back(random_case("random eval", 5, 3, 4, 2.0, 1.0, true, true));
        v.push_back(random_case("B = 1 per channel", 1, 3, 1, 1.0, 1.0, true, false));
        v.push_back(random_case("B = 1 per channel, eval", 1, 3, 1, 1.0, 1.0, true, true));
        // σ²_B about ε: where 1/sqrt(σ²_B + ε) and 1/(sqrt(σ²_B) + ε) part ways.
        v.push_back(random_case("ε-sized variance", 6, 2, 5, 0.3, 3e-3, true, false));
        // |μ_B| ≫ σ_B: a one-pass Σx²/B − μ_B² variance cancels catastrophically.
        v.push_back(random_case("large mean (1e6)", 8, 2, 8, 1e6, 1.0, true, false));
        return v;
    }();
    return all;
}

bool large_mean(const BnCase& c) {
    return c.name.rfind("large mean", 0) == 0;
}

// ---------------------------------------------------------------------------------------------
// Running a kernel on a case
// ---------------------------------------------------------------------------------------------

using Forward = decltype(&kernels::reference::batch_norm_forward);
using Update = decltype(&kernels::reference::batch_norm_update_running);
using Backward = decltype(&kernels::reference::batch_norm_backward);

Outputs run_forward(Forward f, const BnCase& c) {
    Outputs o;
    o["y"].assign(c.x.size(), 0.0);
    o["mean"].assign(c.C, 0.0);
    o["var"].assign(c.C, 0.0);
    o["invstd"].assign(c.C, 0.0);
    f(o["y"].data(), o["mean"].data(), o["var"].data(), o["invstd"].data(), c.x.data(),
      ptr(c.gamma), ptr(c.beta), ptr(c.fixed_mean), ptr(c.fixed_var), c.N, c.C, c.L, c.eps);
    return o;
}

/// The statistics the backward reads: the reference forward's (so a backward is graded alone).
Outputs reference_forward(const BnCase& c) {
    return run_forward(kernels::reference::batch_norm_forward, c);
}

Outputs run_update(Update f, const BnCase& c) {
    // The update needs B ≥ 2 (B/(B − 1)) and a training step (running statistics to update).
    if (c.B() < 2 || c.running_mean.empty()) return {};
    const Outputs fwd = reference_forward(c);
    Outputs o{{"running_mean", c.running_mean}, {"running_var", c.running_var}};
    f(o["running_mean"].data(), o["running_var"].data(), fwd.at("mean").data(),
      fwd.at("var").data(), c.C, c.B(), c.momentum);
    return o;
}

Outputs run_backward(Backward f, const BnCase& c) {
    const Outputs fwd = reference_forward(c);
    const bool batch_stats = c.fixed_mean.empty();
    Outputs o;
    o["dx"].assign(c.x.size(), 0.0);
    o["dgamma"].assign(c.C, 0.0);
    o["dbeta"].assign(c.C, 0.0);
    f(o["dx"].data(), c.gamma.empty() ? nullptr : o["dgamma"].data(),
      c.gamma.empty() ? nullptr : o["dbeta"].data(), c.dy.data(), c.x.data(), fwd.at("mean").data(),
      fwd.at("invstd").data(), ptr(c.gamma), c.N, c.C, c.L, batch_stats);
    if (c.gamma.empty()) {  // not wanted: nothing to compare
        o.erase("dgamma");
        o.erase("dbeta");
    }
    return o;
}

// ---------------------------------------------------------------------------------------------
// batch_norm_forward
// ---------------------------------------------------------------------------------------------

/// The forward with one mistake made on purpose (the models the diagnoses compare against).
struct ForwardModel {
    bool unbiased = false, eps_outside = false, no_eps = false, eval_batch_stats = false,
         swap_gamma_beta = false;
    Outputs operator()(const BnCase& c) const {
        Outputs o{{"y", std::vector<double>(c.x.size())},
                  {"mean", std::vector<double>(c.C)},
                  {"var", std::vector<double>(c.C)},
                  {"invstd", std::vector<double>(c.C)}};
        const double B = static_cast<double>(c.B());
        for (std::size_t ch = 0; ch < c.C; ++ch) {
            double sum = 0, sq = 0;
            for (std::size_t n = 0; n < c.N; ++n)
                for (std::size_t l = 0; l < c.L; ++l)
                    sum += c.x[(n * c.C + ch) * c.L + l];
            double mean = sum / B;
            for (std::size_t n = 0; n < c.N; ++n)
                for (std::size_t l = 0; l < c.L; ++l) {
                    const double d = c.x[(n * c.C + ch) * c.L + l] - mean;
                    sq += d * d;
                }
            double var = unbiased ? sq / (B - 1) : sq / B;
            if (!c.fixed_mean.empty() && !eval_batch_stats) {
                mean = c.fixed_mean[ch];
                var = c.fixed_var[ch];
            }
            const double invstd = no_eps        ? 1 / std::sqrt(var)
                                  : eps_outside ? 1 / (std::sqrt(var) + c.eps)
                                                : 1 / std::sqrt(var + c.eps);
            double g = c.gamma.empty() ? 1.0 : c.gamma[ch], b = c.beta.empty() ? 0.0 : c.beta[ch];
            if (swap_gamma_beta) std::swap(g, b);
            o["mean"][ch] = mean;
            o["var"][ch] = var;
            o["invstd"][ch] = invstd;
            for (std::size_t n = 0; n < c.N; ++n)
                for (std::size_t l = 0; l < c.L; ++l) {
                    const std::size_t i = (n * c.C + ch) * c.L + l;
                    o["y"][i] = g * (c.x[i] - mean) * invstd + b;
                }
        }
        return o;
    }
};

Mistake forward_model(std::string id, std::string message, ForwardModel model) {
    return model_mistake(std::move(id), std::move(message), cases(), model, "y");  // only y decides
}

std::vector<Mistake> forward_mistakes() {
    ForwardModel unbiased, eps_outside, no_eps, eval_batch, swapped;
    unbiased.unbiased = true;
    eps_outside.eps_outside = true;
    no_eps.no_eps = true;
    eval_batch.eval_batch_stats = true;
    swapped.swap_gamma_beta = true;
    std::vector<Mistake> m{
        forward_model("unbiased_variance",
                      "you used the unbiased variance (B−1) in the normalisation: x̂ is normalised "
                      "with the biased σ²_B = 1/B Σ(x − μ_B)² (the unbiased one is only for the "
                      "running variance)",
                      unbiased),
        forward_model("eps_outside_sqrt",
                      "ε is outside the square root: invstd = 1/sqrt(σ²_B + ε), not "
                      "1/(sqrt(σ²_B) + ε) (they part ways when σ²_B is about ε)",
                      eps_outside),
        forward_model("missing_eps",
                      "ε is missing: invstd = 1/sqrt(σ²_B + ε); without ε a channel whose "
                      "variance is 0 (B = 1) divides by zero",
                      no_eps),
        forward_model("eval_uses_batch_stats",
                      "in eval mode (fixed_mean/fixed_var given) you normalised with the batch's "
                      "μ_B and σ²_B: eval normalises with the running statistics",
                      eval_batch),
        forward_model("gamma_beta_swapped", "γ and β are swapped: y = γ x̂ + β", swapped),
    };
    // One pass (σ² = Σx²/B − μ²): right everywhere except where |μ_B| ≫ σ_B.
    std::vector<bool> large, excused;  // the large-mean cases; PyTorch's large-mean case
    for (const BnCase& c : cases()) {
        large.push_back(large_mean(c));
        excused.push_back(c.name.find("large_mean") != std::string::npos);
    }
    m.push_back(one_pass_variance(
        "your variance is computed in one pass, Σx²/B − μ_B², which cancels "
        "catastrophically when |μ_B| ≫ σ_B (the large-mean case): compute μ_B first, "
        "then σ²_B = 1/B Σ(x − μ_B)²",
        run_all(cases(), run_forward, &kernels::reference::batch_norm_forward), large, excused,
        nullptr));
    return m;
}

std::size_t forward_failing = 0;

Result check_forward() {
    return grade("batch_norm_forward", cases(), run_forward, &exercises::batch_norm_forward,
                 &kernels::reference::batch_norm_forward, forward_mistakes(), nullptr,
                 &forward_failing);
}

// ---------------------------------------------------------------------------------------------
// batch_norm_update_running
// ---------------------------------------------------------------------------------------------

struct UpdateModel {
    bool biased = false, keras = false, bessel_on_mean = false, bessel_inverted = false,
         std_not_var = false;
    Outputs operator()(const BnCase& c) const {
        if (c.B() < 2 || c.running_mean.empty()) return {};
        const Outputs fwd = reference_forward(c);
        const double B = static_cast<double>(c.B());
        const double bessel = bessel_inverted ? (B - 1) / B : B / (B - 1);
        const double keep = keras ? c.momentum : 1 - c.momentum, take = 1 - keep;
        Outputs o{{"running_mean", c.running_mean}, {"running_var", c.running_var}};
        for (std::size_t ch = 0; ch < c.C; ++ch) {
            const double mean = fwd.at("mean")[ch] * (bessel_on_mean ? bessel : 1.0);
            double var = fwd.at("var")[ch] * (biased ? 1.0 : bessel);
            if (std_not_var) var = std::sqrt(var);
            o["running_mean"][ch] = keep * o["running_mean"][ch] + take * mean;
            o["running_var"][ch] = keep * o["running_var"][ch] + take * var;
        }
        return o;
    }
};

Mistake update_model(std::string id, std::string message, UpdateModel model) {
    return model_mistake(std::move(id), std::move(message), cases(), model);
}

std::vector<Mistake> update_mistakes() {
    UpdateModel biased, keras, on_mean, inverted, std_dev;
    biased.biased = true;
    keras.keras = true;
    on_mean.bessel_on_mean = true;
    inverted.bessel_inverted = true;
    std_dev.std_not_var = true;
    return {
        update_model("biased_running_var",
                     "the running variance is updated with the biased σ²_B: it estimates the "
                     "population's variance, so it takes the unbiased σ²_B·B/(B − 1)",
                     biased),
        update_model("keras_momentum",
                     "momentum is applied the Keras way round (running = momentum·running + "
                     "(1 − momentum)·new): in PyTorch momentum is the weight of the new batch, "
                     "running = (1 − momentum)·running + momentum·new",
                     keras),
        update_model("bessel_on_mean",
                     "the running mean got the B/(B − 1) correction too: only the variance is "
                     "made unbiased; μ_B already is",
                     on_mean),
        update_model("bessel_inverted",
                     "the Bessel correction is upside down: unbiased is σ²_B·B/(B − 1), not "
                     "σ²_B·(B − 1)/B",
                     inverted),
        update_model("std_not_var",
                     "the running variance was updated with a standard deviation "
                     "sqrt(σ²_B·B/(B − 1)): it tracks the variance itself",
                     std_dev),
    };
}

std::size_t update_failing = 0;

Result check_update() {
    return grade("batch_norm_update_running", cases(), run_update,
                 &exercises::batch_norm_update_running,
                 &kernels::reference::batch_norm_update_running, update_mistakes(), nullptr,
                 &update_failing);
}

// ---------------------------------------------------------------------------------------------
// batch_norm_backward
// ---------------------------------------------------------------------------------------------

struct BackwardModel {
    bool no_term2 = false, no_term3 = false, no_gamma = false, swap_dgamma_dbeta = false,
         dgamma_with_x = false, eval_through_stats = false, b_minus_1 = false;
    Outputs operator()(const BnCase& c) const {
        const Outputs fwd = reference_forward(c);
        const bool batch_stats = c.fixed_mean.empty() || eval_through_stats;
        const double B = static_cast<double>(c.B());
        Outputs o{{"dx", std::vector<double>(c.x.size())}};
        if (!c.gamma.empty()) {
            o["dgamma"].assign(c.C, 0.0);
            o["dbeta"].assign(c.C, 0.0);
        }
        for (std::size_t ch = 0; ch < c.C; ++ch) {
            const double mean = fwd.at("mean")[ch], invstd = fwd.at("invstd")[ch];
            const double g = c.gamma.empty() ? 1.0 : c.gamma[ch];
            double sdy = 0, sdyxh = 0, sdyx = 0;
            for (std::size_t n = 0; n < c.N; ++n)
                for (std::size_t l = 0; l < c.L; ++l) {
                    const std::size_t i = (n * c.C + ch) * c.L + l;
                    sdy += c.dy[i];
                    sdyxh += c.dy[i] * (c.x[i] - mean) * invstd;
                    sdyx += c.dy[i] * c.x[i];
                }
            if (!c.gamma.empty()) {
                const double dgamma = dgamma_with_x ? sdyx : sdyxh;
                o["dgamma"][ch] = swap_dgamma_dbeta ? sdy : dgamma;
                o["dbeta"][ch] = swap_dgamma_dbeta ? dgamma : sdy;
            }
            const double gd = no_gamma ? 1.0 : g;
            for (std::size_t n = 0; n < c.N; ++n)
                for (std::size_t l = 0; l < c.L; ++l) {
                    const std::size_t i = (n * c.C + ch) * c.L + l;
                    const double dxhat = c.dy[i] * gd, xhat = (c.x[i] - mean) * invstd;
                    if (!batch_stats) {
                        o["dx"][i] = dxhat * invstd;
                        continue;
                    }
                    const double t1 = B * dxhat, t2 = no_term2 ? 0 : gd * sdy,
                                 t3 = no_term3 ? 0 : xhat * gd * sdyxh;
                    o["dx"][i] = invstd / (b_minus_1 ? B - 1 : B) * (t1 - t2 - t3);
                }
        }
        return o;
    }
};

Mistake backward_model(std::string id, std::string message, BackwardModel model) {
    return model_mistake(std::move(id), std::move(message), cases(), model);
}

/// The per-channel offset dx − dx_reference of the first training case, to say "exactly".
std::string term2_offset() {
    const BnCase& c = cases().front();
    const Outputs fwd = reference_forward(c);
    double sdy = 0;
    for (std::size_t n = 0; n < c.N; ++n)
        for (std::size_t l = 0; l < c.L; ++l)
            sdy += c.dy[(n * c.C) * c.L + l];
    const double g = c.gamma.empty() ? 1.0 : c.gamma[0];
    return num(g * sdy / static_cast<double>(c.B()) * fwd.at("invstd")[0]);
}

std::vector<Mistake> backward_mistakes() {
    BackwardModel t2, t3, both, gamma, swapped, with_x, eval, bm1;
    t2.no_term2 = true;
    t3.no_term3 = true;
    both.no_term2 = both.no_term3 = true;
    gamma.no_gamma = true;
    swapped.swap_dgamma_dbeta = true;
    with_x.dgamma_with_x = true;
    eval.eval_through_stats = true;
    bm1.b_minus_1 = true;
    return {
        backward_model("missing_term2_and_term3",
                       "your dx treats μ_B and σ²_B as constants (it has only term 1, "
                       "dy·γ·invstd): in training both depend on every x of the channel, so dx "
                       "also needs the path through μ_B (term 2, −Σdx̂) and through σ²_B "
                       "(term 3, −x̂·Σ(dx̂·x̂))",
                       both),
        backward_model("missing_term2",
                       "your dx is missing the path through μ_B (term 2): it differs from the "
                       "reference by exactly +Σdx̂/B·invstd on every element of a channel (" +
                           term2_offset() + " on channel 0 of the first case)",
                       t2),
        backward_model("missing_term3",
                       "your dx is missing the path through σ²_B (term 3): it differs from the "
                       "reference by exactly +x̂·Σ(dx̂·x̂)/B·invstd",
                       t3),
        backward_model("missing_gamma",
                       "your dx leaves out γ: the gradient reaching x̂ is dx̂ = dy·γ "
                       "(y = γ x̂ + β), and every term of dx is built from dx̂",
                       gamma),
        backward_model("dgamma_dbeta_swapped", "dγ and dβ are swapped: dβ = Σ dy and dγ = Σ dy·x̂",
                       swapped),
        backward_model("dgamma_uses_x",
                       "dγ = Σ dy·x̂ with the normalised x̂ = (x − μ_B)·invstd, not Σ dy·x", with_x),
        backward_model("eval_through_stats",
                       "in eval mode (batch_stats false) the running statistics are constants: "
                       "dx = dy·γ·invstd, without terms 2 and 3",
                       eval),
        backward_model("b_minus_1",
                       "the factor in front is 1/(B − 1): it is 1/B (σ²_B is the biased "
                       "variance, 1/B Σ(x − μ_B)², and so is its derivative)",
                       bm1),
    };
}

/// float64 finite differences of L = Σ y·dy through the reference forward, at every x of the
/// random cases: the student's dx against them.
std::optional<Mismatch> backward_gradcheck(const std::vector<Outputs>& student) {
    return dx_gradcheck(
        cases(), student,
        +[](const BnCase& c) {
            return c.name.rfind("random [", 0) == 0 || c.name.rfind("random eval", 0) == 0;
        },
        reference_forward);
}

std::size_t backward_failing = 0;

Result check_backward() {
    return grade("batch_norm_backward", cases(), run_backward, &exercises::batch_norm_backward,
                 &kernels::reference::batch_norm_backward, backward_mistakes(), backward_gradcheck,
                 &backward_failing);
}

const Register forward_exercise("batch_norm_forward", check_forward, [] {
    run_forward(&exercises::batch_norm_forward, cases()[forward_failing]);
});
const Register update_exercise("batch_norm_update_running", check_update, [] {
    run_update(&exercises::batch_norm_update_running, cases()[update_failing]);
});
const Register backward_exercise("batch_norm_backward", check_backward, [] {
    run_backward(&exercises::batch_norm_backward, cases()[backward_failing]);
});

}  // namespace
}  // namespace tg::grader
