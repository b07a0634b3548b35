// The exercise grader's common parts (exercises/grader/, run by scripts/exercise.sh).
//
// A check runs the student's kernel (tg::exercises::NAME, compiled from exercises/NAME.cpp)
// and the reference kernel (tg::kernels::reference::NAME, from the prebuilt float64 library)
// on the same cases — PyTorch goldens from tests/reference/, fixed and random shapes — and
// float64 finite differences where the kernel is a gradient. When they differ it runs the
// exercise's known mistakes ("models": the reference with one error made on purpose) on the
// same cases and names the one the student's numbers match, in the chapter's words.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace tg::grader {

/// What a check found.
struct Result {
    std::string status;     // "pass", "fail", "not done"
    std::string diagnosis;  // a mistake's id ("missing_term2"), "" if none or unknown
    std::string message;    // for the student: what differs and, if known, why
};

/// Called once, on the first element that differs from the expected one:
/// `bash scripts/exercise.sh debug NAME` stops here (gdb: break tg::grader::first_mismatch).
void first_mismatch(const char* exercise, const char* case_name, const char* output,
                    std::size_t index, double expected, double actual);

/// |a − b| ≤ atol + rtol·|b| (NaN never matches; equal infinities do).
bool close(double a, double b, double rtol, double atol);

/// The first index where actual differs from expected, or npos.
std::size_t first_difference(const std::vector<double>& expected, const std::vector<double>& actual,
                             double rtol, double atol);

/// Named outputs of one run of a kernel on one case: e.g. {"y": [...], "mean": [...]}.
using Outputs = std::map<std::string, std::vector<double>>;

/// The PyTorch goldens of tests/reference/NAME.txt (f64 lines only): key -> (shape, values).
struct Golden {
    std::vector<std::size_t> shape;
    std::vector<double> values;
};
const std::map<std::string, Golden>& goldens(const std::string& file);

/// A seeded generator, the same numbers at every run.
std::mt19937_64& rng();
std::vector<double> normal(std::size_t n, double mean = 0.0, double sd = 1.0);
std::vector<double> uniform(std::size_t n, double lo, double hi);

/// One exercise: its checks run the student's kernel through `student`-flavoured callbacks.
struct Exercise {
    std::string name;
    std::function<Result()> check;
    std::function<void()> replay;  // reruns the student's kernel on the first failing case
};
std::vector<Exercise>& registry();
struct Register {
    Register(std::string name, std::function<Result()> check, std::function<void()> replay);
};

/// Where a run first differs from what was expected.
struct Mismatch {
    std::size_t case_index;
    std::string output, against;  // "dx", "the reference kernel"
    std::size_t index;
    double expected, actual;
    std::string sizes;  // when the lengths differ: "has 0 values, the reference kernel's 5"
};

/// The first mismatch of `student` against `expected` over all cases (only the keys both have).
std::optional<Mismatch> compare(const std::vector<Outputs>& student,
                                const std::vector<Outputs>& expected, const char* against,
                                double rtol, double atol);

/// True when the two runs agree everywhere (NaN matching NaN: a mistake's model may be NaN).
bool same(const std::vector<Outputs>& a, const std::vector<Outputs>& b);

/// A known mistake: its id, the chapter's words for it, and whether a run shows it.
struct Mistake {
    std::string id, message;
    std::function<bool(const std::vector<Outputs>& student)> shows;
};

/// The verdict on one exercise from its runs over all cases: the student's outputs against
/// PyTorch's (where a case has them), the reference kernel's and `extra` (finite differences);
/// on a mismatch, first_mismatch() and the first of `mistakes` the student's runs show.
Result verdict(const char* exercise, const std::vector<std::string>& case_names,
               const std::vector<Outputs>& student, const std::vector<Outputs>& reference,
               const std::vector<Outputs>& pytorch, const std::vector<Mistake>& mistakes,
               const std::function<std::optional<Mismatch>(const std::vector<Outputs>&)>& extra,
               std::size_t* failing_case);

/// Formats a double with enough digits to see the difference.
std::string num(double v);

// ---------------------------------------------------------------------------------------------
// The parts the checks share: running kernels over a check's cases (each Case has `name` and
// `golden`, PyTorch's outputs or none), mistakes given by a model, the one-pass variance,
// finite differences of dx.
// ---------------------------------------------------------------------------------------------

/// run(kernel, c) for every case c.
template <class Case, class Run, class Kernel>
std::vector<Outputs> run_all(const std::vector<Case>& cases, Run run, Kernel kernel) {
    std::vector<Outputs> out;
    for (const Case& c : cases)
        out.push_back(run(kernel, c));
    return out;
}

/// The full check of one exercise: the student's numbers against PyTorch's, the reference
/// kernel's and (extra) finite differences; on a difference, the mistake it matches.
template <class Case, class Run, class Kernel>
Result grade(const char* exercise, const std::vector<Case>& cases, Run run, Kernel student_kernel,
             Kernel reference_kernel, const std::vector<Mistake>& mistakes,
             const std::function<std::optional<Mismatch>(const std::vector<Outputs>&)>& extra,
             std::size_t* failing_case) {
    const std::vector<Outputs> student = run_all(cases, run, student_kernel);
    const std::vector<Outputs> reference = run_all(cases, run, reference_kernel);
    std::vector<Outputs> pytorch;
    std::vector<std::string> names;
    for (const Case& c : cases) {
        pytorch.push_back(c.golden);
        names.push_back(c.name);
    }
    return verdict(exercise, names, student, reference, pytorch, mistakes, extra, failing_case);
}

/// The outputs named `only` (all of them if null): what decides whether a mistake shows.
std::vector<Outputs> only_output(const std::vector<Outputs>& runs, const char* only);

/// A mistake given by its model, the reference with that one error: model(c) is what such a
/// kernel outputs on case c. It shows when the student's runs are the model's, on the output
/// `only` if given (a student may keep the statistics right and still use them wrongly).
template <class Case, class Model>
Mistake model_mistake(std::string id, std::string message, const std::vector<Case>& cases,
                      Model model, const char* only = nullptr) {
    return {std::move(id), std::move(message),
            [&cases, model, only](const std::vector<Outputs>& student) {
                std::vector<Outputs> expected;
                for (const Case& c : cases)
                    expected.push_back(model(c));
                return same(only_output(student, only), only_output(expected, only));
            }};
}

/// The one-pass variance Σx²/B − μ²: right (as `reference`, on the output `only`) on every case
/// but those `large_mean` flags, wrong on at least one of them; a case `excused` flags may be
/// either (e.g. a PyTorch case with a large mean but a tolerance that hides it).
Mistake one_pass_variance(std::string message, const std::vector<Outputs>& reference,
                          const std::vector<bool>& large_mean, const std::vector<bool>& excused,
                          const char* only);

/// float64 central differences of L = Σ y·dy through forward(c) (its output "y"), at every x of
/// the cases `checked` selects: the student's "dx" against them.
template <class Case, class Forward>
std::optional<Mismatch> dx_gradcheck(const std::vector<Case>& cases,
                                     const std::vector<Outputs>& student,
                                     bool (*checked)(const Case&), Forward forward) {
    for (std::size_t k = 0; k < cases.size(); ++k) {
        const Case& c = cases[k];
        if (!checked(c)) continue;
        auto loss = [&](const std::vector<double>& x) {
            Case shifted = c;
            shifted.x = x;
            const Outputs o = forward(shifted);
            double sum = 0;
            for (std::size_t i = 0; i < x.size(); ++i)
                sum += o.at("y")[i] * c.dy[i];
            return sum;
        };
        const double h = 1e-6;
        for (std::size_t i = 0; i < c.x.size(); ++i) {
            std::vector<double> plus = c.x, minus = c.x;
            plus[i] += h;
            minus[i] -= h;
            const double numeric = (loss(plus) - loss(minus)) / (2 * h);
            const double analytic = student[k].at("dx")[i];
            if (!close(analytic, numeric, 1e-5, 1e-6))
                return Mismatch{k, "dx", "float64 finite differences", i, numeric, analytic};
        }
    }
    return std::nullopt;
}

}  // namespace tg::grader
