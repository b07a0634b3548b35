// Checks and diagnoses of LayerNorm's (and group norm's) exercises: normalize_sets_forward,
// normalize_sets_backward (src/ops/kernels/reference/normalize_sets.cpp).
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "exercises.hpp"
#include "grader.hpp"

namespace tg::grader {
namespace {

/// What the student's outputs hold before the kernel runs: a kernel must overwrite all of it.
constexpr double junk = 12345.0;

// ---------------------------------------------------------------------------------------------
// Cases: x [R, K, L], R sets of B = K·L values; γ, β [G·K]
// ---------------------------------------------------------------------------------------------

struct NsCase {
    std::string name;
    std::size_t R = 0, G = 1, K = 0, L = 1;
    std::vector<double> x, gamma, beta, dy;     // gamma/beta empty: null (γ = 1, β = 0)
    std::vector<double> fixed_mean, fixed_var;  // [G]; empty: each set's own statistics
    double eps = 1e-5;
    Outputs golden;  // PyTorch's numbers (y, dx, dgamma, dbeta), if any
    std::size_t B() const { return K * L; }
    std::size_t param(std::size_t r, std::size_t k) const { return (r % G) * K + k; }
};

const real* ptr(const std::vector<double>& v) {
    return v.empty() ? nullptr : v.data();
}

/// A case from tests/reference/norm.txt: layer norm over the last `normalized_dims` dims, or
/// group norm with `groups` groups (normalized_dims = 0).
NsCase golden_case(const std::string& key, std::size_t normalized_dims, std::size_t groups,
                   double eps) {
    const auto& g = goldens("norm");
    NsCase c;
    c.name = "PyTorch " + key;
    c.eps = eps;
    const Golden& x = g.at(key + "/x");
    std::size_t numel = x.values.size();
    if (normalized_dims > 0) {  // layer_norm: R rows of D
        std::size_t D = 1;
        for (std::size_t d = x.shape.size() - normalized_dims; d < x.shape.size(); ++d)
            D *= x.shape[d];
        c.R = numel / D;
        c.G = 1;
        c.K = D;
        c.L = 1;
    } else {  // group_norm: x [N, C, *]
        const std::size_t N = x.shape[0], C = x.shape[1];
        c.G = groups;
        c.R = N * groups;
        c.K = C / groups;
        c.L = numel / (N * C);
    }
    c.x = x.values;
    c.dy = g.at(key + "/dy").values;
    c.golden["y"] = g.at(key + "/out").values;
    c.golden["dx"] = g.at(key + "/dx").values;
    if (g.count(key + "/weight")) {
        c.gamma = g.at(key + "/weight").values;
        c.golden["dgamma"] = g.at(key + "/dweight").values;
    }
    if (g.count(key + "/bias")) {
        c.beta = g.at(key + "/bias").values;
        c.golden["dbeta"] = g.at(key + "/dbias").values;
    }
    return c;
}

/// A random case; x of set r = shift + scale·N(0, 1) (a shift per set).
NsCase random_case(const std::string& name, std::size_t R, std::size_t G, std::size_t K,
                   std::size_t L, double shift, double scale, bool affine, bool fixed,
                   double eps = 1e-5) {
    NsCase c;
    c.name = name + " [R, G, K, L] = [" + std::to_string(R) + ", " + std::to_string(G) + ", " +
             std::to_string(K) + ", " + std::to_string(L) + "]";
    c.R = R;
    c.G = G;
    c.K = K;
    c.L = L;
    c.eps = eps;
    c.x = normal(R * K * L, 0.0, scale);
    const std::vector<double> shifts = normal(R, shift, std::fabs(shift) * 0.01 + 0.5);
    for (std::size_t i = 0; i < c.x.size(); ++i)
        c.x[i] += shifts[i / (K * L)];
    c.dy = normal(R * K * L);
    if (affine) {
        c.gamma = uniform(G * K, 0.5, 1.5);
        c.beta = normal(G * K, 0.0, 0.5);
    }
    if (fixed) {
        c.fixed_mean = normal(G, shift, 0.5);
        c.fixed_var = uniform(G, 0.5, 2.0);
    }
    return c;
}

const std::vector<NsCase>& cases() {
    static const std::vector<NsCase> all = [] {
        std::vector<NsCase> v;
        v.push_back(golden_case("ln2d", 1, 1, 1e-5));
        v.push_back(golden_case("ln4d", 2, 1, 1e-5));
        v.push_back(golden_case("ln3d_noaffine", 1, 1, 1e-5));
        v.push_back(golden_case("ln_whole", 3, 1, 1e-5));
        v.push_back(golden_case("ln_weight_only_eps", 1, 1, 1e-2));
        v.push_back(golden_case("ln1d", 1, 1, 1e-5));
        v.push_back(golden_case("ln_large_mean", 1, 1, 1e-5));
        v.push_back(golden_case("gn4d", 0, 3, 1e-5));
        v.push_back(golden_case("gn3d_noaffine", 0, 2, 1e-5));
        v.push_back(golden_case("gn_group_per_channel_eps", 0, 4, 1e-1));
        v.push_back(random_case("random layer norm", 5, 1, 6, 1, 1.0, 2.0, true, false));
        v.push_back(random_case("random group norm", 6, 2, 3, 4, -2.0, 0.5, true, false));
        v.push_back(random_case("random, no γ/β", 4, 1, 7, 1, 0.5, 1.5, false, false));
        v.push_back(
            random_case("instance norm, running statistics", 6, 3, 1, 5, 1.0, 1.0, true, true));
        v.push_back(random_case("one row (R = 1)", 1, 1, 8, 1, 1.0, 1.0, true, false));
        // σ² about ε: where 1/sqrt(σ² + ε) and 1/(sqrt(σ²) + ε) part ways.
        v.push_back(random_case("ε-sized variance", 3, 1, 6, 1, 0.3, 3e-3, true, false));
        // |μ| ≫ σ: a one-pass Σx²/B − μ² variance cancels catastrophically.
        v.push_back(random_case("large mean (1e6)", 3, 1, 16, 1, 1e6, 1.0, true, false));
        return v;
    }();
    return all;
}

bool large_mean(const NsCase& c) {
    return c.name.rfind("large mean", 0) == 0;
}

// ---------------------------------------------------------------------------------------------
// Running a kernel on a case
// ---------------------------------------------------------------------------------------------

using Forward = decltype(&kernels::reference::normalize_sets_forward);
using Backward = decltype(&kernels::reference::normalize_sets_backward);

Outputs run_forward(Forward f, const NsCase& c) {
    Outputs o{{"y", std::vector<double>(c.x.size(), junk)},
              {"mean", std::vector<double>(c.R, junk)},
              {"var", std::vector<double>(c.R, junk)},
              {"invstd", std::vector<double>(c.R, junk)}};
    f(o["y"].data(), o["mean"].data(), o["var"].data(), o["invstd"].data(), c.x.data(),
      ptr(c.gamma), ptr(c.beta), ptr(c.fixed_mean), ptr(c.fixed_var), c.R, c.G, c.K, c.L, c.eps);
    return o;
}

/// The statistics the backward reads: the reference forward's (so a backward is graded alone).
Outputs reference_forward(const NsCase& c) {
    return run_forward(kernels::reference::normalize_sets_forward, c);
}

Outputs run_backward(Backward f, const NsCase& c) {
    const Outputs fwd = reference_forward(c);
    Outputs o{{"dx", std::vector<double>(c.x.size(), junk)}};
    if (!c.gamma.empty()) {
        o["dgamma"].assign(c.gamma.size(), junk);
        o["dbeta"].assign(c.gamma.size(), junk);
    }
    f(o["dx"].data(), c.gamma.empty() ? nullptr : o["dgamma"].data(),
      c.gamma.empty() ? nullptr : o["dbeta"].data(), c.dy.data(), c.x.data(), fwd.at("mean").data(),
      fwd.at("invstd").data(), ptr(c.gamma), c.R, c.G, c.K, c.L, c.fixed_mean.empty());
    return o;
}

// ---------------------------------------------------------------------------------------------
// normalize_sets_forward
// ---------------------------------------------------------------------------------------------

/// The forward with one mistake made on purpose.
struct ForwardModel {
    bool unbiased = false, eps_outside = false, gamma_per_set = false, across_sets = false,
         ignores_fixed = false;
    Outputs operator()(const NsCase& c) const {
        const std::size_t B = c.B();
        std::vector<double> mean(c.R), var(c.R);
        for (std::size_t r = 0; r < c.R; ++r) {
            double sum = 0, sq = 0;
            for (std::size_t i = 0; i < B; ++i)
                sum += c.x[r * B + i];
            mean[r] = sum / static_cast<double>(B);
            for (std::size_t i = 0; i < B; ++i)
                sq += (c.x[r * B + i] - mean[r]) * (c.x[r * B + i] - mean[r]);
            var[r] = sq / static_cast<double>(unbiased ? B - 1 : B);
            if (!c.fixed_mean.empty() && !ignores_fixed) {
                mean[r] = c.fixed_mean[r % c.G];
                var[r] = c.fixed_var[r % c.G];
            }
        }
        Outputs o{{"y", std::vector<double>(c.x.size())}};
        for (std::size_t r = 0; r < c.R; ++r)
            for (std::size_t k = 0; k < c.K; ++k)
                for (std::size_t l = 0; l < c.L; ++l) {
                    const std::size_t i = r * B + k * c.L + l;
                    double mu = mean[r], v = var[r];
                    if (across_sets) {  // BatchNorm's sets: each position across the sets
                        double s = 0, q = 0;
                        for (std::size_t t = 0; t < c.R; ++t)
                            s += c.x[t * B + k * c.L + l];
                        mu = s / static_cast<double>(c.R);
                        for (std::size_t t = 0; t < c.R; ++t)
                            q += (c.x[t * B + k * c.L + l] - mu) * (c.x[t * B + k * c.L + l] - mu);
                        v = q / static_cast<double>(c.R);
                    }
                    const double invstd =
                        eps_outside ? 1 / (std::sqrt(v) + c.eps) : 1 / std::sqrt(v + c.eps);
                    const std::size_t p = gamma_per_set ? (r % c.G) : c.param(r, k);
                    const double g = c.gamma.empty() ? 1.0 : c.gamma[p];
                    const double b = c.beta.empty() ? 0.0 : c.beta[p];
                    o["y"][i] = g * (c.x[i] - mu) * invstd + b;
                }
        return o;
    }
};

Mistake forward_model(std::string id, std::string message, ForwardModel model) {
    return model_mistake(std::move(id), std::move(message), cases(), model, "y");  // only y decides
}

std::vector<Mistake> forward_mistakes() {
    ForwardModel unbiased, eps_outside, gamma_per_set, across, ignores_fixed;
    unbiased.unbiased = true;
    eps_outside.eps_outside = true;
    gamma_per_set.gamma_per_set = true;
    across.across_sets = true;
    ignores_fixed.ignores_fixed = true;
    std::vector<Mistake> m{
        forward_model("across_sets",
                      "you normalised each position across the rows (BatchNorm's sets: one μ, σ² "
                      "per feature over the batch): LayerNorm normalises each row over its own "
                      "features, one μ, σ² per set r of B = K·L values",
                      across),
        forward_model("unbiased_variance",
                      "you used the unbiased variance (B−1): LayerNorm normalises with the biased "
                      "σ² = 1/B Σ(x − μ)², as PyTorch does",
                      unbiased),
        forward_model("eps_outside_sqrt",
                      "ε is outside the square root: invstd = 1/sqrt(σ² + ε), not "
                      "1/(sqrt(σ²) + ε) (they part ways when σ² is about ε)",
                      eps_outside),
        forward_model("gamma_per_set",
                      "γ and β are indexed by the set (its group r mod G): they are per position, "
                      "p = (r mod G)·K + k (LayerNorm: one γ per feature of the row, the same "
                      "for every row)",
                      gamma_per_set),
        forward_model("ignores_fixed_stats",
                      "fixed_mean/fixed_var were given (running statistics) and you normalised "
                      "with the set's own μ, σ²: with fixed statistics set r uses "
                      "fixed_mean[r mod G], fixed_var[r mod G]",
                      ignores_fixed),
    };
    std::vector<bool> large, excused;  // the large-mean cases; PyTorch's large-mean case
    for (const NsCase& c : cases()) {
        large.push_back(large_mean(c));
        excused.push_back(c.name.find("large_mean") != std::string::npos);
    }
    m.push_back(one_pass_variance(
        "your variance is computed in one pass, Σx²/B − μ², which cancels "
        "catastrophically when |μ| ≫ σ (the large-mean case): compute μ first, then "
        "σ² = 1/B Σ(x − μ)²",
        run_all(cases(), run_forward, &kernels::reference::normalize_sets_forward), large, excused,
        "y"));
    return m;
}

std::size_t forward_failing = 0;

Result check_forward() {
    return grade("normalize_sets_forward", cases(), run_forward, &exercises::normalize_sets_forward,
                 &kernels::reference::normalize_sets_forward, forward_mistakes(), nullptr,
                 &forward_failing);
}

// ---------------------------------------------------------------------------------------------
// normalize_sets_backward
// ---------------------------------------------------------------------------------------------

struct BackwardModel {
    bool no_term2 = false, no_term3 = false, no_gamma = false, swap_dgamma_dbeta = false,
         dgamma_last_set = false, fixed_through_stats = false;
    Outputs operator()(const NsCase& c) const {
        const Outputs fwd = reference_forward(c);
        const std::size_t B = c.B();
        const double Bd = static_cast<double>(B);
        const bool set_stats = c.fixed_mean.empty() || fixed_through_stats;
        Outputs o{{"dx", std::vector<double>(c.x.size())}};
        std::vector<double> dgamma(c.gamma.size(), 0.0), dbeta(c.gamma.size(), 0.0);
        for (std::size_t r = 0; r < c.R; ++r) {
            const double mean = fwd.at("mean")[r], invstd = fwd.at("invstd")[r];
            double sdxh = 0, sdxh_xh = 0;
            for (std::size_t k = 0; k < c.K; ++k)
                for (std::size_t l = 0; l < c.L; ++l) {
                    const std::size_t i = r * B + k * c.L + l, p = c.param(r, k);
                    const double g = c.gamma.empty() || no_gamma ? 1.0 : c.gamma[p];
                    const double xhat = (c.x[i] - mean) * invstd;
                    sdxh += c.dy[i] * g;
                    sdxh_xh += c.dy[i] * g * xhat;
                    if (!c.gamma.empty()) {
                        if (dgamma_last_set && r + c.G < c.R) continue;  // only the last sets
                        dgamma[p] += c.dy[i] * xhat;
                        dbeta[p] += c.dy[i];
                    }
                }
            for (std::size_t k = 0; k < c.K; ++k)
                for (std::size_t l = 0; l < c.L; ++l) {
                    const std::size_t i = r * B + k * c.L + l, p = c.param(r, k);
                    const double g = c.gamma.empty() || no_gamma ? 1.0 : c.gamma[p];
                    const double dxhat = c.dy[i] * g, xhat = (c.x[i] - mean) * invstd;
                    if (!set_stats) {
                        o["dx"][i] = dxhat * invstd;
                        continue;
                    }
                    const double t2 = no_term2 ? 0 : sdxh, t3 = no_term3 ? 0 : xhat * sdxh_xh;
                    o["dx"][i] = invstd / Bd * (Bd * dxhat - t2 - t3);
                }
        }
        if (!c.gamma.empty()) {
            o["dgamma"] = swap_dgamma_dbeta ? dbeta : dgamma;
            o["dbeta"] = swap_dgamma_dbeta ? dgamma : dbeta;
        }
        return o;
    }
};

Mistake backward_model(std::string id, std::string message, BackwardModel model) {
    return model_mistake(std::move(id), std::move(message), cases(), model);
}

std::vector<Mistake> backward_mistakes() {
    BackwardModel t2, t3, both, gamma, swapped, last, fixed;
    t2.no_term2 = true;
    t3.no_term3 = true;
    both.no_term2 = both.no_term3 = true;
    gamma.no_gamma = true;
    swapped.swap_dgamma_dbeta = true;
    last.dgamma_last_set = true;
    fixed.fixed_through_stats = true;
    return {
        backward_model("missing_term2_and_term3",
                       "your dx treats μ and σ² as constants (it has only term 1, dy·γ·invstd): "
                       "they are the row's own statistics, so dx also needs the path through μ "
                       "(term 2, −Σdx̂) and through σ² (term 3, −x̂·Σ(dx̂·x̂)), summed over the set",
                       both),
        backward_model("missing_term2",
                       "your dx is missing the path through μ (term 2): it differs from the "
                       "reference by exactly +Σdx̂/B·invstd on every element of a set",
                       t2),
        backward_model("missing_term3",
                       "your dx is missing the path through σ² (term 3): it differs from the "
                       "reference by exactly +x̂·Σ(dx̂·x̂)/B·invstd",
                       t3),
        backward_model("missing_gamma",
                       "your dx leaves out γ: the gradient reaching x̂ is dx̂ = dy·γ_p "
                       "(y = γ x̂ + β), and every term of dx, and its sums, are built from dx̂",
                       gamma),
        backward_model("dgamma_dbeta_swapped",
                       "dγ and dβ are swapped: dβ_p = Σ dy and dγ_p = Σ dy·x̂", swapped),
        backward_model("dgamma_one_row",
                       "dγ and dβ hold only the last row's (set's) contribution: γ_p is used by "
                       "every row, so dγ_p = Σ dy·x̂ and dβ_p = Σ dy sum over all of them (set "
                       "them to 0 once, before the loop over r, and add)",
                       last),
        backward_model("fixed_through_stats",
                       "with fixed statistics (set_stats false) μ and σ² are constants: "
                       "dx = dy·γ·invstd, without terms 2 and 3",
                       fixed),
    };
}

/// float64 finite differences of L = Σ y·dy through the reference forward, at every x of the
/// random cases: the student's dx against them.
std::optional<Mismatch> backward_gradcheck(const std::vector<Outputs>& student) {
    return dx_gradcheck(
        cases(), student,
        +[](const NsCase& c) {
            return c.name.rfind("random", 0) == 0 || c.name.rfind("instance", 0) == 0;
        },
        reference_forward);
}

std::size_t backward_failing = 0;

Result check_backward() {
    return grade("normalize_sets_backward", cases(), run_backward,
                 &exercises::normalize_sets_backward, &kernels::reference::normalize_sets_backward,
                 backward_mistakes(), backward_gradcheck, &backward_failing);
}

const Register forward_exercise("normalize_sets_forward", check_forward, [] {
    run_forward(&exercises::normalize_sets_forward, cases()[forward_failing]);
});
const Register backward_exercise("normalize_sets_backward", check_backward, [] {
    run_backward(&exercises::normalize_sets_backward, cases()[backward_failing]);
});

}  // namespace
}  // namespace tg::grader
