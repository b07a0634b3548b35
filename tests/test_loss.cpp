// Losses and softmax (src/ops/loss.cpp): log_softmax, softmax, cross_entropy, mse_loss.
// log_softmax and cross_entropy have two kernels (kernels/{reference,fast}/cross_entropy.cpp);
// softmax and mse_loss one each.
//
// Sections (TEST_CASE name prefixes, e.g. ./tests_f32 -sf='*test_loss*' -tc='fast vs*'):
//   vs PyTorch:           tests/reference/gen_ops.py -> ops.txt, with each kernel set
//   gradcheck float64:    central finite differences (float64 binary only)
//   errors:               bad input names the op, the shapes and what was expected
//   fast vs reference:    the fast kernels against the reference kernels
#include <string>
#include <vector>

#include "op_checks.hpp"
#include "tapegrad/ops/activation.hpp"
#include "tapegrad/ops/linalg.hpp"
#include "tapegrad/ops/loss.hpp"

using namespace optest;

// ---------------------------------------------------------------------------------------------
// vs PyTorch
// ---------------------------------------------------------------------------------------------

TEST_CASE("vs PyTorch: log_softmax (each kernel set) and softmax") {
    for (const tg::Kernels k : tgtest::kBothKernels) {
        tgtest::KernelsGuard guard(k);
        CAPTURE(tg::kernels_name(k));
        check_against_pytorch("log_softmax_last", X,
                              [](const In& v) { return tg::log_softmax(v[0]); });
        check_against_pytorch("log_softmax_dim1", X,
                              [](const In& v) { return tg::log_softmax(v[0], 1); });
        check_against_pytorch("log_softmax_large", X,
                              [](const In& v) { return tg::log_softmax(v[0]); });
        check_against_pytorch("log_softmax_magnitude_50_100", X,
                              [](const In& v) { return tg::log_softmax(v[0]); });
    }
    check_against_pytorch("softmax_last", X, [](const In& v) { return tg::softmax(v[0]); });
    check_against_pytorch("softmax_dim0", X, [](const In& v) { return tg::softmax(v[0], 0); });
}

TEST_CASE("vs PyTorch: cross_entropy (each kernel set) and mse_loss") {
    for (const tg::Kernels k : tgtest::kBothKernels) {
        tgtest::KernelsGuard guard(k);
        CAPTURE(tg::kernels_name(k));
        for (const std::string name : {"cross_entropy", "cross_entropy_large"}) {
            const tg::Labels t = labels_of(name);
            check_against_pytorch(name, X,
                                  [&t](const In& v) { return tg::cross_entropy(v[0], t); });
        }
    }
    auto mse = [](const In& v) { return tg::mse_loss(v[0], v[1]); };
    check_against_pytorch("mse_loss", AB, mse);
    auto mse_bcast = [](const In& v) { return tg::mse_loss(v[0], v[1], {.broadcast = true}); };
    check_against_pytorch("mse_loss_bcast", AB, mse_bcast, Grad::scaled);
}

// ---------------------------------------------------------------------------------------------
// gradcheck float64
// ---------------------------------------------------------------------------------------------

TEST_CASE("gradcheck float64: log_softmax (each kernel set) and softmax" *
          doctest::skip(!tg::is_double)) {
    tg::Generator gen(10);
    const In x{leaf({3, 4, 5}, gen)};
    for (int dim : {-1, 0, 1}) {
        for (const tg::Kernels k : tgtest::kBothKernels) {
            tgtest::KernelsGuard guard(k);
            check_gradcheck(
                "log_softmax dim " + std::to_string(dim) + ", " + tg::kernels_name(k),
                [dim](const In& v) { return tg::log_softmax(v[0], dim); }, x);
        }
        check_gradcheck(
            "softmax dim " + std::to_string(dim),
            [dim](const In& v) { return tg::softmax(v[0], dim); }, x);
    }
}

TEST_CASE("gradcheck float64: cross_entropy (each kernel set) and mse_loss" *
          doctest::skip(!tg::is_double)) {
    tg::Generator gen(11);
    const tg::Labels t{2, 0, 3, 3, 1};
    const In logits{leaf({5, 4}, gen)};
    // Logits around 30: e^30 would lose digits without the max subtraction.
    const In large{leaf({5, 4}, gen, 28.0, 32.0)};
    for (const tg::Kernels k : tgtest::kBothKernels) {
        tgtest::KernelsGuard guard(k);
        CAPTURE(tg::kernels_name(k));
        check_gradcheck(
            "cross_entropy", [&t](const In& v) { return tg::cross_entropy(v[0], t); }, logits);
        check_gradcheck(
            "cross_entropy, large logits", [&t](const In& v) { return tg::cross_entropy(v[0], t); },
            large);
    }
    auto mse = [](const In& v) { return tg::mse_loss(v[0], v[1]); };
    check_gradcheck("mse_loss", mse, {leaf({3, 4}, gen), leaf({3, 4}, gen)});
    auto mse_bcast = [](const In& v) { return tg::mse_loss(v[0], v[1], {.broadcast = true}); };
    check_gradcheck("mse_loss broadcast target", mse_bcast,
                    {leaf({2, 3, 4}, gen), leaf({3, 1}, gen)});
}

TEST_CASE("gradcheck float64: a two-layer MLP with cross_entropy" * doctest::skip(!tg::is_double)) {
    tg::Generator gen(12);
    const tg::Labels t{1, 0, 2, 2};
    check_gradcheck("relu(x W1 + b1) W2 + b2",
                    [&t](const In& v) {
                        Tensor h = tg::relu(tg::matmul(v[0], v[1]) + v[2]);
                        return tg::cross_entropy(tg::matmul(h, v[3]) + v[4], t);
                    },
                    {leaf({4, 3}, gen), leaf({3, 5}, gen), leaf_away_from_zero({5}, gen),
                     leaf({5, 3}, gen), leaf({3}, gen)});
}

// ---------------------------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------------------------

TEST_CASE("errors: softmax dims") {
    const Tensor x = Tensor::zeros({2, 3});
    CHECK_THROWS_WITH_AS(tg::log_softmax(x, 2),
                         "log_softmax: dim 2 out of range for shape [2, 3] (expected in [-2, 1])",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::softmax(x, -3),
                         "softmax: dim -3 out of range for shape [2, 3] (expected in [-2, 1])",
                         std::invalid_argument);
}

TEST_CASE("errors: cross_entropy") {
    const Tensor logits = Tensor::zeros({4, 3});
    CHECK_THROWS_WITH_AS(tg::cross_entropy(logits, {0, 1, 2, 3}),
                         "cross_entropy: target 3 at index 3 is out of range [0, 3) for logits "
                         "[4, 3]",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::cross_entropy(logits, {0, -1, 2, 0}),
                         "cross_entropy: target -1 at index 1 is out of range [0, 3) for logits "
                         "[4, 3]",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::cross_entropy(logits, {0, 1, 2}),
                         "cross_entropy: logits [4, 3] have 4 rows but there are 3 targets",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::cross_entropy(Tensor::zeros({2, 3, 4}), {0, 1}),
                         "cross_entropy: expected logits [N, C], got [2, 3, 4]",
                         std::invalid_argument);
}

TEST_CASE("errors: mse_loss shapes that cannot broadcast") {
    CHECK_THROWS_WITH_AS(tg::mse_loss(Tensor::zeros({2, 3}), Tensor::zeros({4})),
                         "mse_loss: shapes [2, 3] and [4] cannot be broadcast (axis 1: 3 vs 4)",
                         std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------
// fast vs reference (softmax and mse_loss have one implementation each: nothing to compare)
// ---------------------------------------------------------------------------------------------

namespace {

tgtest::OpFn log_softmax_op(int dim) {
    return [dim](const In& in) { return tg::log_softmax(in[0], dim); };
}

tgtest::OpFn cross_entropy_op(const tg::Labels& targets) {
    return [targets](const In& in) { return tg::cross_entropy(in[0], targets); };
}

/// A size in [lo, hi].
std::size_t pick(tg::Generator& gen, std::size_t lo, std::size_t hi) {
    return lo + static_cast<std::size_t>(tg::uniform({1}, 0.0, double(hi - lo + 1), gen)(0));
}

/// Values of a random spread and offset; one trial in four of magnitude 50-100, where
/// summing in float and in double differ most.
Array random_logits(const Shape& shape, tg::Generator& gen, int trial) {
    const double spread = trial % 4 == 0 ? 50.0 : 0.5 + 3.0 * tg::uniform({1}, 0, 1, gen)(0);
    const double offset = trial % 4 == 0 ? 0.0 : 10.0 * tg::normal({1}, 0.0, 1.0, gen)(0);
    return tg::normal(shape, 0.0, 1.0, gen) * spread + offset;
}

}  // namespace

TEST_CASE("fast vs reference: log_softmax and cross_entropy on the PyTorch cases") {
    const auto& ref = tgtest::reference("ops");
    CHECK_FAST_MATCHES_REFERENCE(std::vector<Array>{ref.at("log_softmax_last/x")},
                                 log_softmax_op(-1));
    CHECK_FAST_MATCHES_REFERENCE(std::vector<Array>{ref.at("log_softmax_dim1/x")},
                                 log_softmax_op(1));
    CHECK_FAST_MATCHES_REFERENCE(std::vector<Array>{ref.at("log_softmax_large/x")},
                                 log_softmax_op(-1));
    CHECK_FAST_MATCHES_REFERENCE(std::vector<Array>{ref.at("log_softmax_magnitude_50_100/x")},
                                 log_softmax_op(-1));
    for (const std::string name : {"cross_entropy", "cross_entropy_large"}) {
        CAPTURE(name);
        CHECK_FAST_MATCHES_REFERENCE(std::vector<Array>{ref.at(name + "/x")},
                                     cross_entropy_op(labels_of(name)));
    }
}

TEST_CASE("fast vs reference: log_softmax on 1000 random shapes and dims") {
    tg::Generator gen(31);
    for (int trial = 0; trial < 1000; ++trial) {
        Shape shape;
        for (std::size_t d = 0, rank = pick(gen, 1, 4); d < rank; ++d)
            shape.push_back(pick(gen, 1, 7));
        const int rank = static_cast<int>(shape.size());
        const int dim = static_cast<int>(pick(gen, 0, 2 * shape.size() - 1)) - rank;  // [-r, r)
        CAPTURE(tg::shape_str(shape));
        CAPTURE(dim);
        CHECK_FAST_MATCHES_REFERENCE(std::vector<Array>{random_logits(shape, gen, trial)},
                                     log_softmax_op(dim));
    }
}

TEST_CASE("fast vs reference: cross_entropy on 1000 random shapes and targets") {
    tg::Generator gen(32);
    for (int trial = 0; trial < 1000; ++trial) {
        const std::size_t N = pick(gen, 1, 9), C = pick(gen, 1, 12);
        tg::Labels targets(N);
        for (auto& t : targets)
            t = static_cast<std::int64_t>(pick(gen, 0, C - 1));
        CAPTURE(N);
        CAPTURE(C);
        CHECK_FAST_MATCHES_REFERENCE(std::vector<Array>{random_logits({N, C}, gen, trial)},
                                     cross_entropy_op(targets));
    }
}
