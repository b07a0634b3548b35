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

}  // namespace tg::grader
