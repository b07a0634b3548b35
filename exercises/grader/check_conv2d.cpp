// Checks and diagnoses of conv2d_backward (src/ops/kernels/reference/conv2d.cpp).
#include <algorithm>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "exercises.hpp"
#include "grader.hpp"

namespace tg::grader {
namespace {

/// What the student's gradients hold before the kernel runs: a kernel must overwrite all of it.
constexpr double junk = 12345.0;

struct ConvCase {
    std::string name;
    kernels::Conv2dShape s;
    std::vector<double> x, weight, dy;
    bool bias = true;     // dbias wanted
    bool want_dx = true;  // dx wanted (false: x is the network's input)
    Outputs golden;       // PyTorch's dx, dweight, dbias
};

kernels::Conv2dShape shape(std::size_t n, std::size_t c, std::size_t h, std::size_t w,
                           std::size_t o, std::size_t kh, std::size_t kw, std::size_t stride,
                           std::size_t pad) {
    return {n,
            c,
            h,
            w,
            o,
            kh,
            kw,
            (h + 2 * pad - kh) / stride + 1,
            (w + 2 * pad - kw) / stride + 1,
            stride,
            pad};
}

std::string describe(const kernels::Conv2dShape& s) {
    return "x [" + std::to_string(s.n) + ", " + std::to_string(s.c) + ", " + std::to_string(s.h) +
           ", " + std::to_string(s.w) + "], weight [" + std::to_string(s.o) + ", " +
           std::to_string(s.c) + ", " + std::to_string(s.kh) + ", " + std::to_string(s.kw) +
           "], stride " + std::to_string(s.stride) + ", pad " + std::to_string(s.pad);
}

/// The PyTorch goldens of tests/reference/conv.txt (tests/reference/gen_conv.py).
ConvCase golden_case(const std::string& key, std::size_t stride, std::size_t pad) {
    const auto& g = goldens("conv");
    const Golden& x = g.at(key + "/x");
    const Golden& w = g.at(key + "/w");
    ConvCase c;
    c.s = shape(x.shape[0], x.shape[1], x.shape[2], x.shape[3], w.shape[0], w.shape[2], w.shape[3],
                stride, pad);
    c.name = "PyTorch " + key;
    c.x = x.values;
    c.weight = w.values;
    c.dy = g.at(key + "/gy").values;
    c.golden["dx"] = g.at(key + "/dx").values;
    c.golden["dweight"] = g.at(key + "/dw").values;
    c.bias = g.count(key + "/db") > 0;
    if (c.bias) c.golden["dbias"] = g.at(key + "/db").values;
    return c;
}

ConvCase random_case(const std::string& name, const kernels::Conv2dShape& s, bool bias = true,
                     bool want_dx = true) {
    ConvCase c;
    c.s = s;
    c.name = name + ": " + describe(s);
    c.x = normal(s.n * s.c * s.h * s.w);
    c.weight = normal(s.o * s.c * s.kh * s.kw, 0.0, 0.5);
    c.dy = normal(s.n * s.o * s.oh * s.ow);
    c.bias = bias;
    c.want_dx = want_dx;
    return c;
}

const std::vector<ConvCase>& cases() {
    static const std::vector<ConvCase> all = [] {
        std::vector<ConvCase> v{
            golden_case("conv_s1_p0", 1, 0),
            golden_case("conv_s2_p1_nonsquare", 2, 1),
            golden_case("conv_s1_p1_nobias_rect_kernel", 1, 1),
            golden_case("conv_s2_p0", 2, 0),
            golden_case("conv_s3_p2_k5", 3, 2),
            golden_case("conv_8to16", 1, 0),
            golden_case("conv_pad_exceeds_input", 1, 2),
            random_case("random", shape(2, 3, 5, 6, 4, 3, 3, 1, 1)),
            random_case("random, stride 2", shape(2, 2, 7, 7, 3, 3, 2, 2, 1)),
            random_case("1x1 kernel", shape(3, 4, 3, 3, 2, 1, 1, 1, 0)),
            random_case("no dx wanted (the network's input)", shape(2, 1, 6, 6, 3, 3, 3, 1, 0),
                        true, false),
        };
        return v;
    }();
    return all;
}

using Backward = decltype(&kernels::reference::conv2d_backward);

Outputs run_backward(Backward f, const ConvCase& c) {
    Outputs o{{"dweight", std::vector<double>(c.weight.size(), junk)}};
    if (c.want_dx) o["dx"].assign(c.x.size(), junk);
    if (c.bias) o["dbias"].assign(c.s.o, junk);
    f(c.want_dx ? o["dx"].data() : nullptr, o["dweight"].data(),
      c.bias ? o["dbias"].data() : nullptr, c.dy.data(), c.x.data(), c.weight.data(), c.s);
    return o;
}

/// conv2d_backward as loops, with one mistake made on purpose.
struct Model {
    bool not_zeroed = false, flipped = false, stride_ignored = false, pad_ignored = false,
         last_image = false, dbias_mean = false;
    Outputs operator()(const ConvCase& c) const {
        const kernels::Conv2dShape& s = c.s;
        const double start = not_zeroed ? junk : 0.0;
        std::vector<double> dx(c.x.size(), start), dw(c.weight.size(), start), db(s.o, start);
        for (std::size_t n = 0; n < s.n; ++n) {
            if (last_image) {
                std::fill(dw.begin(), dw.end(), 0.0);
                std::fill(db.begin(), db.end(), 0.0);
            }
            for (std::size_t o = 0; o < s.o; ++o)
                for (std::size_t i = 0; i < s.oh; ++i)
                    for (std::size_t j = 0; j < s.ow; ++j) {
                        const double g = c.dy[((n * s.o + o) * s.oh + i) * s.ow + j];
                        db[o] += dbias_mean ? g / static_cast<double>(s.n * s.oh * s.ow) : g;
                        for (std::size_t ch = 0; ch < s.c; ++ch)
                            for (std::size_t p = 0; p < s.kh; ++p)
                                for (std::size_t q = 0; q < s.kw; ++q) {
                                    const long stride = stride_ignored ? 1 : long(s.stride);
                                    const long pad = pad_ignored ? 0 : long(s.pad);
                                    const long h = long(i) * stride + long(p) - pad;
                                    const long w = long(j) * stride + long(q) - pad;
                                    if (h < 0 || w < 0 || h >= long(s.h) || w >= long(s.w))
                                        continue;
                                    const std::size_t xi = ((n * s.c + ch) * s.h + h) * s.w + w;
                                    const std::size_t pw = flipped ? s.kh - 1 - p : p,
                                                      qw = flipped ? s.kw - 1 - q : q;
                                    dw[((o * s.c + ch) * s.kh + p) * s.kw + q] += g * c.x[xi];
                                    dx[xi] +=
                                        g * c.weight[((o * s.c + ch) * s.kh + pw) * s.kw + qw];
                                }
                    }
        }
        Outputs out{{"dweight", dw}};
        if (c.want_dx) out["dx"] = dx;
        if (c.bias) out["dbias"] = db;
        return out;
    }
};

Mistake model(std::string id, std::string message, Model m) {
    return {std::move(id), std::move(message), [m](const std::vector<Outputs>& student) {
                std::vector<Outputs> expected;
                for (const ConvCase& c : cases())
                    expected.push_back(m(c));
                return same(student, expected);
            }};
}

std::vector<Mistake> mistakes() {
    Model not_zeroed, flipped, stride, pad, last, mean;
    not_zeroed.not_zeroed = true;
    flipped.flipped = true;
    stride.stride_ignored = true;
    pad.pad_ignored = true;
    last.last_image = true;
    mean.dbias_mean = true;
    return {
        model("not_zeroed",
              "dx, dweight, dbias were added to without being set to 0 first: the kernel "
              "writes them (they arrive holding anything), and every one is a sum of "
              "contributions, so start each at 0",
              not_zeroed),
        model("flipped_kernel",
              "dx used the flipped kernel W[o, c, kH−1−p, kW−1−q]: PyTorch's conv2d is a "
              "cross-correlation, so x[n, c, i·stride + p − pad, …] met W[o, c, p, q] in the "
              "forward and dx[n, c, h, w] += dy[n, o, i, j]·W[o, c, p, q] with the same p, q "
              "(the flip only appears when you write dx itself as a convolution of dy)",
              flipped),
        model("stride_ignored",
              "the stride is missing from the index: output (i, j) reads x at "
              "(i·stride + p − pad, j·stride + q − pad), not (i + p − pad, …)",
              stride),
        model("pad_ignored",
              "the padding is missing from the index: output (i, j) reads x at "
              "(i·stride + p − pad, j·stride + q − pad); the padded zeros get no gradient, so "
              "skip the (p, q) whose h or w falls outside [0, H) × [0, W)",
              pad),
        model("dweight_last_image",
              "dweight and dbias hold only the last image's contribution: the same W and b are "
              "used for every image of the batch, so their gradients sum over n too (set them "
              "to 0 once, before the loop over images)",
              last),
        model("dbias_mean",
              "dbias is a mean over the batch and positions: b[o] is added to every output "
              "y[n, o, i, j], so db[o] = Σ_{n,i,j} dy[n, o, i, j], a sum",
              mean),
    };
}

/// float64 finite differences of L = Σ y·dy through the reference forward, at every x and
/// weight of the random cases.
std::optional<Mismatch> gradcheck(const std::vector<Outputs>& student) {
    for (std::size_t k = 0; k < cases().size(); ++k) {
        const ConvCase& c = cases()[k];
        if (c.name.rfind("PyTorch", 0) == 0) continue;
        auto loss = [&](const std::vector<double>& x, const std::vector<double>& w) {
            std::vector<double> y(c.dy.size());
            kernels::reference::conv2d_forward(y.data(), x.data(), w.data(), nullptr, c.s);
            double sum = 0;
            for (std::size_t i = 0; i < y.size(); ++i)
                sum += y[i] * c.dy[i];
            return sum;
        };
        const double h = 1e-6;
        for (const char* output : {"dx", "dweight"}) {
            const bool is_x = output[1] == 'x';
            if (is_x && !c.want_dx) continue;
            const std::vector<double>& at = is_x ? c.x : c.weight;
            for (std::size_t i = 0; i < at.size(); ++i) {
                std::vector<double> plus = at, minus = at;
                plus[i] += h;
                minus[i] -= h;
                const double numeric =
                    is_x ? (loss(plus, c.weight) - loss(minus, c.weight)) / (2 * h)
                         : (loss(c.x, plus) - loss(c.x, minus)) / (2 * h);
                const double analytic = student[k].at(output)[i];
                if (!close(analytic, numeric, 1e-5, 1e-6))
                    return Mismatch{k, output, "float64 finite differences", i, numeric, analytic};
            }
        }
    }
    return std::nullopt;
}

std::size_t failing = 0;

Result check() {
    std::vector<Outputs> student, reference, pytorch;
    std::vector<std::string> names;
    for (const ConvCase& c : cases()) {
        student.push_back(run_backward(&exercises::conv2d_backward, c));
        reference.push_back(run_backward(&kernels::reference::conv2d_backward, c));
        pytorch.push_back(c.golden);
        names.push_back(c.name);
    }
    return verdict("conv2d_backward", names, student, reference, pytorch, mistakes(), gradcheck,
                   &failing);
}

const Register exercise("conv2d_backward", check,
                        [] { run_backward(&exercises::conv2d_backward, cases()[failing]); });

}  // namespace
}  // namespace tg::grader
