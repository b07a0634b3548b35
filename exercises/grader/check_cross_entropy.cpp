// Checks and diagnoses of cross_entropy_backward (src/ops/kernels/reference/cross_entropy.cpp).
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "exercises.hpp"
#include "grader.hpp"

namespace tg::grader {
namespace {

struct CeCase {
    std::string name;
    std::size_t N, C;
    std::vector<double> x;
    std::vector<std::int64_t> targets;
    double dloss;
    std::vector<double> lse;  // from the reference forward
};

CeCase ce_case(std::size_t N, std::size_t C, double offset, double dloss) {
    CeCase c{"[N, C] = [" + std::to_string(N) + ", " + std::to_string(C) + "], logits " +
                 (offset != 0 ? "around " + num(offset) : "N(0, 2)") + ", dloss " + num(dloss),
             N,
             C,
             normal(N * C, offset, 2.0),
             {},
             dloss,
             std::vector<double>(N)};
    for (std::size_t n = 0; n < N; ++n)
        c.targets.push_back(static_cast<std::int64_t>(uniform(1, 0, static_cast<double>(C))[0]) %
                            static_cast<std::int64_t>(C));
    real loss = 0;
    kernels::reference::cross_entropy_forward(&loss, c.lse.data(), c.x.data(), c.targets.data(), N,
                                              C);
    return c;
}

const std::vector<CeCase>& ce_cases() {
    static const std::vector<CeCase> all{ce_case(4, 3, 0, 1.0), ce_case(1, 5, 0, 0.7),
                                         ce_case(6, 10, 0, 2.5),
                                         ce_case(3, 4, 800, 1.0)};  // e^800 overflows double
    return all;
}

Outputs run_ce(decltype(&kernels::reference::cross_entropy_backward) f, const CeCase& c) {
    Outputs o{{"dx", std::vector<double>(c.x.size(), 12345.0)}};
    f(o["dx"].data(), c.dloss, c.x.data(), c.lse.data(), c.targets.data(), c.N, c.C);
    return o;
}

enum class CeMistake { no_mean, no_dloss, target_plus, logits_not_p, log_p, no_onehot };

Mistake ce_model(std::string id, std::string message, CeMistake kind) {
    return {std::move(id), std::move(message), [kind](const std::vector<Outputs>& student) {
                std::vector<Outputs> expected;
                for (const CeCase& c : ce_cases()) {
                    std::vector<double> dx(c.x.size());
                    double scale = kind == CeMistake::no_dloss ? 1.0 : c.dloss;
                    if (kind != CeMistake::no_mean) scale /= static_cast<double>(c.N);
                    for (std::size_t n = 0; n < c.N; ++n)
                        for (std::size_t k = 0; k < c.C; ++k) {
                            const double x = c.x[n * c.C + k];
                            double p = std::exp(x - c.lse[n]);
                            if (kind == CeMistake::logits_not_p) p = x;
                            if (kind == CeMistake::log_p) p = x - c.lse[n];
                            double onehot = k == static_cast<std::size_t>(c.targets[n]) ? 1.0 : 0.0;
                            if (kind == CeMistake::no_onehot) onehot = 0;
                            if (kind == CeMistake::target_plus) onehot = -onehot;
                            dx[n * c.C + k] = scale * (p - onehot);
                        }
                    expected.push_back({{"dx", dx}});
                }
                return same(student, expected);
            }};
}

/// float64 central differences of dloss·loss(x) through the reference forward.
std::optional<Mismatch> ce_gradcheck(const std::vector<Outputs>& student) {
    for (std::size_t k = 0; k < ce_cases().size(); ++k) {
        const CeCase& c = ce_cases()[k];
        auto loss = [&](const std::vector<double>& x) {
            std::vector<double> lse(c.N);
            real value = 0;
            kernels::reference::cross_entropy_forward(&value, lse.data(), x.data(),
                                                      c.targets.data(), c.N, c.C);
            return c.dloss * value;
        };
        for (std::size_t i = 0; i < c.x.size(); ++i) {
            std::vector<double> plus = c.x, minus = c.x;
            plus[i] += 1e-6;
            minus[i] -= 1e-6;
            const double numeric = (loss(plus) - loss(minus)) / 2e-6;
            if (!close(student[k].at("dx")[i], numeric, 1e-5, 1e-6))
                return Mismatch{k, "dx",    "float64 finite differences",
                                i, numeric, student[k].at("dx")[i]};
        }
    }
    return std::nullopt;
}

std::size_t ce_failing = 0;

Result check_ce() {
    std::vector<Outputs> student, reference, pytorch(ce_cases().size());
    std::vector<std::string> names;
    for (const CeCase& c : ce_cases()) {
        student.push_back(run_ce(&exercises::cross_entropy_backward, c));
        reference.push_back(run_ce(&kernels::reference::cross_entropy_backward, c));
        names.push_back(c.name);
    }
    const std::vector<Mistake> mistakes{
        ce_model("no_mean",
                 "dx is N times too large: the loss is the mean over the N rows, so dx carries "
                 "dloss/N",
                 CeMistake::no_mean),
        ce_model("no_dloss",
                 "dloss, the gradient arriving at the loss, is left out: dx = dloss/N·(p − "
                 "onehot) (it is 1 only when the loss is the last op)",
                 CeMistake::no_dloss),
        ce_model("target_sign",
                 "the target term has the wrong sign: dx = dloss/N·(p − [c = t_n]), the "
                 "probability minus the one-hot label",
                 CeMistake::target_plus),
        ce_model("logits_not_probabilities",
                 "dx uses the logits x where it needs the probabilities p = softmax(x) = "
                 "e^(x − lse)",
                 CeMistake::logits_not_p),
        ce_model("log_probabilities",
                 "dx uses the log-probabilities x − lse where it needs p = e^(x − lse)",
                 CeMistake::log_p),
        ce_model("missing_onehot",
                 "the −[c = t_n] term is missing: the target class's logit appears in the loss "
                 "directly (−x[n, t_n]), not only through lse",
                 CeMistake::no_onehot),
        {"overflow",
         "dx is not finite for large logits: compute p = e^(x − lse) with the given lse, not "
         "e^x / Σe^x (e^800 overflows)",
         [](const std::vector<Outputs>& student) {
             for (std::size_t k = 0; k < student.size(); ++k)
                 for (double v : student[k].at("dx"))
                     if (!std::isfinite(v)) return true;
             return false;
         }},
    };
    return verdict("cross_entropy_backward", names, student, reference, pytorch, mistakes,
                   ce_gradcheck, &ce_failing);
}

const Register ce_exercise("cross_entropy_backward", check_ce, [] {
    run_ce(&exercises::cross_entropy_backward, ce_cases()[ce_failing]);
});

}  // namespace
}  // namespace tg::grader
