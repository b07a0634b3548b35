// Checks and diagnoses of relu_backward and max_pool2d_backward
// (src/ops/kernels/reference/relu.cpp, pool.cpp).
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "exercises.hpp"
#include "grader.hpp"

namespace tg::grader {
namespace {

/// What the student's dx holds before the kernel runs: a kernel must overwrite all of it.
constexpr double junk = 12345.0;

// ---------------------------------------------------------------------------------------------
// relu_backward: dx = dy where y > 0, else 0 (relu'(0) = 0; a NaN y passes dy on, as PyTorch)
// ---------------------------------------------------------------------------------------------

struct ReluCase {
    std::string name;
    std::vector<double> y, dy;
};

const std::vector<ReluCase>& relu_cases() {
    static const std::vector<ReluCase> all = [] {
        std::vector<ReluCase> v;
        for (std::size_t n : {1u, 7u, 64u}) {
            std::vector<double> x = normal(n);
            for (double& e : x)
                e = e > 0 ? e : 0.0;  // y = relu(x): many exact zeros
            v.push_back({"random n = " + std::to_string(n), x, normal(n)});
        }
        v.push_back({"y with a NaN",
                     {1.0, std::numeric_limits<double>::quiet_NaN(), 0.0, 2.0},
                     {0.5, -1.5, 2.0, 3.0}});
        return v;
    }();
    return all;
}

Outputs run_relu(decltype(&kernels::reference::relu_backward) f, const ReluCase& c) {
    Outputs o{{"dx", std::vector<double>(c.y.size(), junk)}};
    f(o["dx"].data(), c.dy.data(), c.y.data(), c.y.size());
    return o;
}

Mistake relu_model(std::string id, std::string message, double (*model)(double y, double dy)) {
    return {std::move(id), std::move(message), [model](const std::vector<Outputs>& student) {
                std::vector<Outputs> expected;
                for (const ReluCase& c : relu_cases()) {
                    Outputs o{{"dx", std::vector<double>(c.y.size())}};
                    for (std::size_t i = 0; i < c.y.size(); ++i)
                        o["dx"][i] = model(c.y[i], c.dy[i]);
                    expected.push_back(o);
                }
                return same(student, expected);
            }};
}

std::size_t relu_failing = 0;

Result check_relu() {
    std::vector<Outputs> student, reference, pytorch(relu_cases().size());
    std::vector<std::string> names;
    for (const ReluCase& c : relu_cases()) {
        student.push_back(run_relu(&exercises::relu_backward, c));
        reference.push_back(run_relu(&kernels::reference::relu_backward, c));
        names.push_back(c.name);
    }
    const std::vector<Mistake> mistakes{
        relu_model("gradient_at_zero",
                   "dx = dy also where y = 0: relu'(0) = 0 (PyTorch), so dx is 0 wherever y ≤ 0",
                   [](double y, double dy) { return std::isnan(y) || y >= 0 ? dy : 0.0; }),
        relu_model("derivative_without_dy",
                   "dx is the derivative relu'(x) alone: the chain rule multiplies it by dy, "
                   "dx = dy·[y > 0]",
                   [](double y, double) { return std::isnan(y) ? NAN
                                                 : y > 0       ? 1.0
                                                               : 0.0; }),
        relu_model("times_y", "dx = dy·y: the derivative of relu is the step [y > 0], not y",
                   [](double y, double dy) { return y > 0           ? dy * y
                                                    : std::isnan(y) ? NAN
                                                                    : 0.0; }),
        relu_model("nan_blocked",
                   "a NaN input stops its gradient: PyTorch's threshold_backward zeroes dx only "
                   "where y ≤ 0, so write dx = (y <= 0 ? 0 : dy) and a NaN passes dy on",
                   [](double y, double dy) { return y > 0 ? dy : 0.0; }),
        relu_model("accumulates",
                   "dx was added to (dx += ...) instead of written: the kernel owns dx and must "
                   "set every element (its caller accumulates into the gradient)",
                   [](double y, double dy) { return junk + (y <= 0 ? 0.0 : dy); }),
    };
    return verdict("relu_backward", names, student, reference, pytorch, mistakes, nullptr,
                   &relu_failing);
}

const Register relu_exercise("relu_backward", check_relu, [] {
    run_relu(&exercises::relu_backward, relu_cases()[relu_failing]);
});

// ---------------------------------------------------------------------------------------------
// max_pool2d_backward: dx = 0, then dx[argmax[t]] += dy[t]
// ---------------------------------------------------------------------------------------------

struct PoolCase {
    std::string name;
    kernels::Pool2dShape s;
    std::vector<double> x, dy;
    std::vector<std::size_t> argmax;  // from the reference forward
};

PoolCase pool_case(std::size_t planes, std::size_t h, std::size_t w, std::size_t k,
                   std::size_t stride, std::size_t pad) {
    PoolCase c;
    c.s = {planes, h,      w,  (h + 2 * pad - k) / stride + 1, (w + 2 * pad - k) / stride + 1,
           k,      stride, pad};
    c.name = "planes " + std::to_string(planes) + " [" + std::to_string(h) + ", " +
             std::to_string(w) + "], k " + std::to_string(k) + " stride " + std::to_string(stride) +
             " pad " + std::to_string(pad);
    c.x = normal(planes * h * w);
    c.dy = normal(planes * c.s.oh * c.s.ow);
    std::vector<double> y(c.dy.size());
    c.argmax.assign(c.dy.size(), 0);
    kernels::reference::max_pool2d_forward(y.data(), c.argmax.data(), c.x.data(), c.s);
    return c;
}

const std::vector<PoolCase>& pool_cases() {
    static const std::vector<PoolCase> all{
        pool_case(3, 4, 4, 2, 2, 0),  // the chapter's 2x2 pooling
        pool_case(2, 5, 5, 3, 1, 1),  // overlapping windows: one x can win several
        pool_case(1, 6, 7, 3, 2, 1),
    };
    return all;
}

Outputs run_pool(decltype(&kernels::reference::max_pool2d_backward) f, const PoolCase& c) {
    Outputs o{{"dx", std::vector<double>(c.x.size(), junk)}};
    f(o["dx"].data(), c.dy.data(), c.argmax.data(), c.s);
    return o;
}

enum class PoolMistake { no_zero, assign, scaled, average, first_plane };

Mistake pool_model(std::string id, std::string message, PoolMistake kind) {
    return {std::move(id), std::move(message), [kind](const std::vector<Outputs>& student) {
                std::vector<Outputs> expected;
                for (const PoolCase& c : pool_cases()) {
                    const kernels::Pool2dShape& s = c.s;
                    std::vector<double> dx(c.x.size(), kind == PoolMistake::no_zero ? junk : 0.0);
                    const std::size_t outputs =
                        kind == PoolMistake::first_plane ? s.oh * s.ow : s.planes * s.oh * s.ow;
                    for (std::size_t t = 0; t < outputs; ++t) {
                        if (kind == PoolMistake::assign) {
                            dx[c.argmax[t]] = c.dy[t];
                        } else if (kind == PoolMistake::scaled) {
                            dx[c.argmax[t]] += c.dy[t] / static_cast<double>(s.k * s.k);
                        } else if (kind == PoolMistake::average) {
                            const std::size_t plane = t / (s.oh * s.ow), i = t / s.ow % s.oh,
                                              j = t % s.ow;
                            const kernels::Window rows = kernels::pool_window(i, s, s.h),
                                                  cols = kernels::pool_window(j, s, s.w);
                            for (std::size_t r = rows.begin; r < rows.end; ++r)
                                for (std::size_t q = cols.begin; q < cols.end; ++q)
                                    dx[(plane * s.h + r) * s.w + q] +=
                                        c.dy[t] / static_cast<double>(s.k * s.k);
                        } else {
                            dx[c.argmax[t]] += c.dy[t];
                        }
                    }
                    expected.push_back({{"dx", dx}});
                }
                return same(student, expected);
            }};
}

std::size_t pool_failing = 0;

Result check_pool() {
    std::vector<Outputs> student, reference, pytorch(pool_cases().size());
    std::vector<std::string> names;
    for (const PoolCase& c : pool_cases()) {
        student.push_back(run_pool(&exercises::max_pool2d_backward, c));
        reference.push_back(run_pool(&kernels::reference::max_pool2d_backward, c));
        names.push_back(c.name);
    }
    const std::vector<Mistake> mistakes{
        pool_model("no_zero",
                   "dx was not set to 0 first: only the windows' maxima receive a gradient, "
                   "every other element of dx must be 0",
                   PoolMistake::no_zero),
        pool_model("assign_not_accumulate",
                   "dx[argmax[t]] = dy[t] overwrites: where windows overlap one x can be the "
                   "maximum of several, and its gradient is the sum, dx[argmax[t]] += dy[t]",
                   PoolMistake::assign),
        pool_model("divided_by_window",
                   "the maximum's gradient was divided by k²: the window's maximum passes dy on "
                   "whole (y = x_max, ∂y/∂x_max = 1); 1/k² belongs to average pooling",
                   PoolMistake::scaled),
        pool_model("averaged",
                   "dy was spread over the whole window (dy/k² each): that is average pooling's "
                   "backward; max pooling sends all of dy to the maximum",
                   PoolMistake::average),
        pool_model("first_plane_only",
                   "only the first plane got its gradient: there are planes·OH·OW outputs "
                   "(N·C planes of [OH, OW])",
                   PoolMistake::first_plane),
    };
    return verdict("max_pool2d_backward", names, student, reference, pytorch, mistakes, nullptr,
                   &pool_failing);
}

const Register pool_exercise("max_pool2d_backward", check_pool, [] {
    run_pool(&exercises::max_pool2d_backward, pool_cases()[pool_failing]);
});

}  // namespace
}  // namespace tg::grader
