// The grader's main: runs the named exercises' checks and prints one line per exercise.
//
//   exercise_grader [--tsv FILE] [--not-compiled NAME]... [NAME...]
//
// Exit status 0 when every exercise run passed, 1 otherwise. With TAPEGRAD_GRADER_REPLAY=1
// (set by `scripts/exercise.sh debug`) it reruns the student's kernel on the first failing case
// after reporting, so gdb can step into it.
#include "grader.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "tapegrad/exercise.hpp"

#ifndef TAPEGRAD_SOURCE_DIR
#error "compile with -DTAPEGRAD_SOURCE_DIR=\"/path/to/tapegrad\""
#endif

namespace tg::grader {

// noinline and an observable side effect: the breakpoint always has a frame to stop in.
__attribute__((noinline)) void first_mismatch(const char* exercise, const char* case_name,
                                              const char* output, std::size_t index,
                                              double expected, double actual) {
    std::fprintf(stderr, "first mismatch: %s, case %s: %s[%zu] = %.17g, expected %.17g\n", exercise,
                 case_name, output, index, actual, expected);
}

bool close(double a, double b, double rtol, double atol) {
    if (std::isnan(a) || std::isnan(b)) return false;
    if (std::isinf(a) || std::isinf(b)) return a == b;
    return std::fabs(a - b) <= atol + rtol * std::fabs(b);
}

std::size_t first_difference(const std::vector<double>& expected, const std::vector<double>& actual,
                             double rtol, double atol) {
    if (expected.size() != actual.size()) return 0;
    for (std::size_t i = 0; i < expected.size(); ++i)
        if (!close(actual[i], expected[i], rtol, atol)) return i;
    return static_cast<std::size_t>(-1);
}

const std::map<std::string, Golden>& goldens(const std::string& file) {
    static std::map<std::string, std::map<std::string, Golden>> cache;
    auto found = cache.find(file);
    if (found != cache.end()) return found->second;
    auto& out = cache[file];
    // TAPEGRAD_GOLDENS_DIR: where `exercise.sh grade` copies them for a check that runs as
    // nobody (who cannot read a checkout under /root); else the checkout's tests/reference/.
    const char* dir = std::getenv("TAPEGRAD_GOLDENS_DIR");
    const std::string path =
        (dir && *dir ? std::string(dir) : std::string(TAPEGRAD_SOURCE_DIR) + "/tests/reference") +
        "/" + file + ".txt";
    std::ifstream in(path);
    if (!in) throw std::runtime_error("grader: cannot read the PyTorch goldens " + path);
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("f64/", 0) != 0) continue;
        std::istringstream fields(line);
        std::string key;
        std::size_t rank = 0;
        fields >> key >> rank;
        Golden g;
        std::size_t n = 1;
        for (std::size_t d = 0; d < rank; ++d) {
            std::size_t extent = 0;
            fields >> extent;
            g.shape.push_back(extent);
            n *= extent;
        }
        g.values.resize(n);
        for (double& v : g.values)
            fields >> v;
        if (!fields) throw std::runtime_error("grader: " + path + ": malformed line " + key);
        out.emplace(key.substr(4), std::move(g));
    }
    return out;
}

std::mt19937_64& rng() {
    static std::mt19937_64 generator(20260523);
    return generator;
}

std::vector<double> normal(std::size_t n, double mean, double sd) {
    std::normal_distribution<double> dist(mean, sd);
    std::vector<double> v(n);
    for (double& e : v)
        e = dist(rng());
    return v;
}

std::vector<double> uniform(std::size_t n, double lo, double hi) {
    std::uniform_real_distribution<double> dist(lo, hi);
    std::vector<double> v(n);
    for (double& e : v)
        e = dist(rng());
    return v;
}

std::vector<Exercise>& registry() {
    static std::vector<Exercise> all;
    return all;
}

Register::Register(std::string name, std::function<Result()> check, std::function<void()> replay) {
    registry().push_back({std::move(name), std::move(check), std::move(replay)});
}

constexpr double rtol = 1e-9, atol = 1e-9;                // student vs reference, both float64
constexpr double golden_rtol = 1e-7, golden_atol = 1e-8;  // vs PyTorch's float64

std::optional<Mismatch> compare(const std::vector<Outputs>& student,
                                const std::vector<Outputs>& expected, const char* against,
                                double rt, double at) {
    for (std::size_t k = 0; k < student.size(); ++k) {
        for (const auto& [key, want] : expected[k]) {
            auto got = student[k].find(key);
            if (got == student[k].end()) continue;
            if (want.size() != got->second.size())
                return Mismatch{k,
                                key,
                                against,
                                0,
                                NAN,
                                NAN,
                                "has " + std::to_string(got->second.size()) + " values, " +
                                    against + "'s " + std::to_string(want.size())};
            const std::size_t i = first_difference(want, got->second, rt, at);
            if (i != static_cast<std::size_t>(-1))
                return Mismatch{k,
                                key,
                                against,
                                i,
                                i < want.size() ? want[i] : NAN,
                                i < got->second.size() ? got->second[i] : NAN};
        }
    }
    return std::nullopt;
}

bool same(const std::vector<Outputs>& a, const std::vector<Outputs>& b) {
    for (std::size_t k = 0; k < a.size(); ++k) {
        for (const auto& [key, va] : a[k]) {
            auto vb = b[k].find(key);
            if (vb == b[k].end() || va.size() != vb->second.size()) return false;
            for (std::size_t i = 0; i < va.size(); ++i) {
                const double x = va[i], y = vb->second[i];
                if (std::isnan(x) && std::isnan(y)) continue;
                if (!close(x, y, 1e-7, 1e-9)) return false;
            }
        }
    }
    return true;
}

Result verdict(const char* exercise, const std::vector<std::string>& case_names,
               const std::vector<Outputs>& student, const std::vector<Outputs>& reference,
               const std::vector<Outputs>& pytorch, const std::vector<Mistake>& mistakes,
               const std::function<std::optional<Mismatch>(const std::vector<Outputs>&)>& extra,
               std::size_t* failing_case) {
    std::optional<Mismatch> m = compare(student, pytorch, "PyTorch", golden_rtol, golden_atol);
    if (!m) m = compare(student, reference, "the reference kernel", rtol, atol);
    if (!m && extra) m = extra(student);
    bool any_golden = false;
    for (const Outputs& o : pytorch)
        any_golden = any_golden || !o.empty();
    if (!m)
        return {"pass", "",
                std::string("matches ") + (any_golden ? "PyTorch's goldens and " : "") +
                    "the reference kernel" + (extra ? " and float64 finite differences" : "") +
                    " on " + std::to_string(student.size()) + " cases"};
    *failing_case = m->case_index;
    const std::string& case_name = case_names[m->case_index];
    first_mismatch(exercise, case_name.c_str(), m->output.c_str(), m->index, m->expected,
                   m->actual);
    const std::string where =
        (m->sizes.empty() ? m->output + "[" + std::to_string(m->index) + "] is " + num(m->actual) +
                                ", " + m->against + " says " + num(m->expected)
                          : m->output + " " + m->sizes) +
        " (case " + case_name + ")";
    for (const Mistake& mistake : mistakes) {
        if (mistake.shows(student))
            return {"fail", mistake.id, mistake.message + ". First difference: " + where};
    }
    return {"fail", "unknown",
            "no known mistake matches; first difference: " + where +
                ". Step through it: bash scripts/exercise.sh debug " + exercise};
}

std::vector<Outputs> only_output(const std::vector<Outputs>& runs, const char* only) {
    if (only == nullptr) return runs;
    std::vector<Outputs> out;
    for (const Outputs& o : runs)
        out.push_back({{only, o.at(only)}});
    return out;
}

Mistake one_pass_variance(std::string message, const std::vector<Outputs>& reference,
                          const std::vector<bool>& large_mean, const std::vector<bool>& excused,
                          const char* only) {
    return {"one_pass_variance", std::move(message),
            [reference, large_mean, excused, only](const std::vector<Outputs>& student) {
                const std::vector<Outputs> s = only_output(student, only);
                const std::vector<Outputs> r = only_output(reference, only);
                bool wrong_at_large_mean = false;
                for (std::size_t k = 0; k < s.size(); ++k) {
                    const bool right = same({s[k]}, {r[k]});
                    if (large_mean[k])
                        wrong_at_large_mean = wrong_at_large_mean || !right;
                    else if (!right && !excused[k])
                        return false;
                }
                return wrong_at_large_mean;
            }};
}

std::string num(double v) {
    char buffer[40];
    std::snprintf(buffer, sizeof buffer, "%.10g", v);
    return buffer;
}

}  // namespace tg::grader

int main(int argc, char** argv) {
    using namespace tg::grader;
    std::string tsv;
    std::vector<std::string> names, not_compiled;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--tsv" && i + 1 < argc) {
            tsv = argv[++i];
        } else if (arg == "--not-compiled" && i + 1 < argc) {
            not_compiled.push_back(argv[++i]);
        } else {
            names.push_back(arg);
        }
    }
    std::ofstream table;
    if (!tsv.empty()) table.open(tsv, std::ios::app);
    bool all_passed = true;
    for (const std::string& name : names) {
        bool known = false;
        for (const Exercise& exercise : registry())
            known = known || exercise.name == name;
        if (!known) {
            std::cerr << "grader: no exercise named " << name << " (exercises/exercises.txt)\n";
            return 2;
        }
    }
    const bool replay = std::getenv("TAPEGRAD_GRADER_REPLAY") != nullptr;
    for (const Exercise& exercise : registry()) {
        if (!names.empty() && std::find(names.begin(), names.end(), exercise.name) == names.end())
            continue;
        Result r;
        if (std::find(not_compiled.begin(), not_compiled.end(), exercise.name) !=
            not_compiled.end()) {
            r = {"fail", "does_not_compile",
                 "exercises/" + exercise.name +
                     ".cpp does not compile (the compiler's messages are above)"};
        } else {
            try {
                r = exercise.check();
            } catch (const tg::exercise_not_done& e) {
                r = {"not done", "", std::string(e.what())};
            } catch (const std::exception& e) {
                r = {"fail", "threw", std::string("the kernel threw: ") + e.what()};
            }
        }
        all_passed = all_passed && r.status == "pass";
        std::cout << exercise.name << ": "
                  << (r.status == "pass"   ? "PASS"
                      : r.status == "fail" ? "FAIL"
                                           : "NOT DONE");
        if (!r.message.empty()) std::cout << "\n    " << r.message;
        std::cout << "\n";
        if (table)
            table << exercise.name << '\t' << r.status << '\t' << r.diagnosis << '\t' << r.message
                  << '\n';
        if (replay && r.status == "fail" && exercise.replay) exercise.replay();
    }
    return all_passed ? 0 : 1;
}
