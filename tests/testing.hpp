// tests/testing.hpp — what every test file shares: PyTorch reference data and comparisons.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "tapegrad/config.hpp"
#include "tapegrad/gradcheck.hpp"
#include "tapegrad/kernels.hpp"
#include "tapegrad/random.hpp"
#include "tapegrad/tape.hpp"

namespace tgtest {

using tg::Array;
using tg::real;

/// A fresh empty directory under the system temp dir, unique to this process and object,
/// removed (with its contents) when the test ends.
class TempDir {
  public:
    explicit TempDir(const std::string& tag = "tmp") {
        static int counter = 0;
        path = std::filesystem::temp_directory_path() /
               ("tapegrad_test_" + tag + "_" + std::to_string(::getpid()) + "_" +
                std::to_string(counter++));
        std::filesystem::remove_all(path);
        std::filesystem::create_directories(path);
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    /// The path of `name` inside the directory.
    std::string file(const std::string& name) const { return (path / name).string(); }
    /// The names of the directory's entries, sorted.
    std::vector<std::string> files() const {
        std::vector<std::string> out;
        for (const auto& e : std::filesystem::directory_iterator(path))
            out.push_back(e.path().filename().string());
        std::sort(out.begin(), out.end());
        return out;
    }

    std::filesystem::path path;
};

/// The whole content of a file, as bytes in a string.
inline std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

/// True when `part` occurs in `s`.
inline bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

/// The PyTorch reference tensors of one group (tests/reference/<group>.txt, written by a
/// gen_*.py script with refio.py), for this build's dtype: f32 lines in the float build,
/// f64 lines in the float64 build.
class Reference {
  public:
    explicit Reference(const std::string& group) : group_(group) {
        const std::string path = std::string(TAPEGRAD_REFERENCE_DIR) + "/" + group + ".txt";
        std::ifstream in(path);
        if (!in) throw std::runtime_error("reference: cannot open " + path);
        const std::string prefix = tg::is_double ? "f64/" : "f32/";
        std::string line;
        while (std::getline(in, line)) {
            if (line.compare(0, prefix.size(), prefix) != 0) continue;
            std::istringstream s(line);
            std::string key;
            std::size_t ndim = 0;
            s >> key >> ndim;
            tg::Shape shape(ndim);
            for (auto& d : shape)
                s >> d;
            Array a = Array::from_shape(shape);
            for (auto& v : a) {
                double x = 0;
                s >> x;
                v = static_cast<real>(x);
            }
            if (!s)
                throw std::runtime_error("reference: malformed line for " + key + " in " + path);
            tensors_[key.substr(prefix.size())] = std::move(a);
        }
    }

    /// The tensor stored under "<case>/<tensor>".
    const Array& at(const std::string& key) const {
        auto it = tensors_.find(key);
        if (it == tensors_.end()) {
            throw std::runtime_error("reference: no tensor '" + key + "' in group " + group_);
        }
        return it->second;
    }
    bool has(const std::string& key) const { return tensors_.count(key) != 0; }

  private:
    std::string group_;
    std::map<std::string, Array> tensors_;
};

/// Loads a group once per test binary.
inline const Reference& reference(const std::string& group) {
    static std::map<std::string, Reference> cache;
    auto it = cache.find(group);
    if (it == cache.end()) it = cache.emplace(group, Reference(group)).first;
    return it->second;
}

/// Element-wise relative tolerance against PyTorch: 1e-5 in float32, 1e-10 in float64.
inline constexpr double kRtol = tg::is_double ? 1e-10 : 1e-5;

/// Empty when `actual` matches `expected` element-wise: |a - e| <= atol + rtol * |e|.
/// Otherwise a message naming the first mismatch.
inline std::string mismatch(const Array& actual, const Array& expected, double rtol, double atol) {
    if (actual.shape() != expected.shape()) {
        return "shape " + tg::shape_str(actual.shape()) + " != expected " +
               tg::shape_str(expected.shape());
    }
    for (std::size_t i = 0; i < actual.size(); ++i) {
        const double a = actual.flat(i), e = expected.flat(i);
        if (!(std::abs(a - e) <= atol + rtol * std::abs(e))) {
            std::ostringstream m;
            m.precision(17);
            m << "element " << i << ": " << a << " vs expected " << e << " (|diff| "
              << std::abs(a - e) << ", rtol " << rtol << ", atol " << atol << ")";
            return m.str();
        }
    }
    return {};
}

/// Against the tensor's scale: |a - e| <= atol + rtol * max|e|. For gradients summed over a
/// batch (weight, gamma/beta grads), whose float32 summation-order error in PyTorch itself
/// is of order 1e-5 of the largest entry (see ARCHITECTURE.md, "Numbers").
inline std::string mismatch_scaled(const Array& actual, const Array& expected, double rtol,
                                   double atol = 0.0) {
    double scale = 0.0;
    for (auto e : expected)
        scale = std::max(scale, std::abs(static_cast<double>(e)));
    return mismatch(actual, expected, 0.0, atol + rtol * scale);
}

/// Selects the kernels (reference or fast) for one scope and restores the previous choice.
class KernelsGuard {
  public:
    explicit KernelsGuard(tg::Kernels k) : saved_(tg::kernels_in_use()) { tg::set_kernels(k); }
    ~KernelsGuard() { tg::set_kernels(saved_); }
    KernelsGuard(const KernelsGuard&) = delete;
    KernelsGuard& operator=(const KernelsGuard&) = delete;

  private:
    tg::Kernels saved_;
};

/// Both kernel sets, for tests that run every check on each.
inline constexpr tg::Kernels kBothKernels[] = {tg::Kernels::reference, tg::Kernels::fast};

/// An op under test: builds its output from leaves (which require grad).
using OpFn = std::function<tg::Tensor(const std::vector<tg::Tensor>&)>;

/// Runs `op` on leaves holding `values` with kernels `k`, then backward from a random
/// upstream gradient (fixed by `seed`). Returns the output, then each leaf's gradient (an
/// empty array for a leaf the output does not depend on).
inline std::vector<Array> run_with_kernels(tg::Kernels k, const std::vector<Array>& values,
                                           const OpFn& op, std::uint64_t seed = 7) {
    KernelsGuard guard(k);
    std::vector<tg::Tensor> leaves;
    for (const Array& v : values)
        leaves.emplace_back(v, true);
    tg::Tape tape;
    const tg::Tensor y = op(leaves);
    tg::Generator gen(seed);
    tape.backward(y, tg::normal(y.shape(), 0.0, 1.0, gen));
    std::vector<Array> out{y.value()};
    for (const tg::Tensor& leaf : leaves)
        out.push_back(leaf.has_grad() ? leaf.grad() : Array());
    return out;
}

/// Tolerance of fast against reference kernels, relative to each tensor's largest entry: the
/// reference kernels sum in double, the fast ones partly in float.
inline constexpr double kKernelsRtol = tg::is_double ? 1e-11 : 2e-5;

/// Empty when the fast kernels give the reference kernels' output and gradients for `op` on
/// `values`, within kKernelsRtol of each tensor's scale; else which tensor differs and how.
inline std::string fast_vs_reference(const std::vector<Array>& values, const OpFn& op) {
    const auto ref = run_with_kernels(tg::Kernels::reference, values, op);
    const auto fast = run_with_kernels(tg::Kernels::fast, values, op);
    for (std::size_t i = 0; i < ref.size(); ++i) {
        const std::string why = mismatch_scaled(fast[i], ref[i], kKernelsRtol, kKernelsRtol);
        if (!why.empty())
            return (i == 0 ? "output: " : "grad of input " + std::to_string(i - 1) + ": ") + why;
    }
    return {};
}
/// The message of the exception `f` throws, or "(no exception)" if it returns: lets a test
/// check what an error says in one CHECK.
inline std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "(no exception)";
}

}  // namespace tgtest

/// CHECK that `actual` matches the PyTorch reference `expected` element-wise (kRtol, with a
/// tiny atol for values that are exactly zero in one and 1e-12 in the other).
#define CHECK_MATCHES(actual, expected)                                                          \
    do {                                                                                         \
        const std::string why_ =                                                                 \
            tgtest::mismatch((actual), (expected), tgtest::kRtol, tg::is_double ? 1e-12 : 1e-6); \
        CHECK_MESSAGE(why_.empty(), #actual " vs " #expected ": " << why_);                      \
    } while (0)

/// CHECK against the reference's scale (for batch-summed gradients).
#define CHECK_MATCHES_SCALED(actual, expected)                                                 \
    do {                                                                                       \
        const std::string why_ = tgtest::mismatch_scaled((actual), (expected), tgtest::kRtol); \
        CHECK_MESSAGE(why_.empty(), #actual " vs " #expected ": " << why_);                    \
    } while (0)

/// CHECK that tg::gradcheck passes. Finite differences need float64: use it in test cases
/// marked `* doctest::skip(!tg::is_double)`, which run in the float64 test binary only.
#define CHECK_GRADCHECK(...)                         \
    do {                                             \
        const auto gc_ = tg::gradcheck(__VA_ARGS__); \
        CHECK_MESSAGE(gc_.ok, gc_.message);          \
    } while (0)

/// CHECK that the fast kernels agree with the reference kernels on `op` (fast_vs_reference).
#define CHECK_FAST_MATCHES_REFERENCE(values, op)                            \
    do {                                                                    \
        const std::string why_ = tgtest::fast_vs_reference((values), (op)); \
        CHECK_MESSAGE(why_.empty(), "fast vs reference kernels: " << why_); \
    } while (0)
