// Bad input: every op's error names the op, the shapes and what was expected.
#include <stdexcept>

#include "tapegrad/ops/activation.hpp"
#include "tapegrad/ops/elementwise.hpp"
#include "tapegrad/ops/linalg.hpp"
#include "tapegrad/ops/loss.hpp"
#include "tapegrad/ops/reduce.hpp"
#include "tapegrad/ops/shape.hpp"
#include "tapegrad/tape.hpp"
#include "testing.hpp"

using tg::Tensor;

TEST_CASE("errors: element-wise shapes that cannot broadcast") {
    const Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4});
    const char* msg = ": shapes [2, 3] and [4] cannot be broadcast (axis 1: 3 vs 4)";
    CHECK_THROWS_WITH_AS(tg::add(a, b), (std::string("add") + msg).c_str(), std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::sub(a, b), (std::string("sub") + msg).c_str(), std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::mul(a, b), (std::string("mul") + msg).c_str(), std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::div(a, b), (std::string("div") + msg).c_str(), std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::pow(a, b), (std::string("pow") + msg).c_str(), std::invalid_argument);
    CHECK_THROWS_WITH_AS(a * b, (std::string("mul") + msg).c_str(), std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::mse_loss(a, b), (std::string("mse_loss") + msg).c_str(),
                         std::invalid_argument);
}

TEST_CASE("errors: matmul") {
    CHECK_THROWS_WITH_AS(tg::matmul(Tensor::zeros({2, 3}), Tensor::zeros({4, 5})),
                         "matmul: [2, 3] x [4, 5]: inner dimensions 3 and 4 differ",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::matmul(Tensor::zeros({2, 3, 4}), Tensor::zeros({4, 5})),
                         "matmul: expected 2-D tensors [m, k] x [k, n], got [2, 3, 4] x [4, 5]",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::matmul(Tensor::zeros({3}), Tensor::zeros({3})),
                         "matmul: expected 2-D tensors [m, k] x [k, n], got [3] x [3]",
                         std::invalid_argument);
}

TEST_CASE("errors: sum and mean dims") {
    const Tensor x = Tensor::zeros({2, 3});
    CHECK_THROWS_WITH_AS(tg::sum(x, {2}),
                         "sum: dim 2 out of range for shape [2, 3] (expected in [-2, 1])",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::mean(x, {-3}),
                         "mean: dim -3 out of range for shape [2, 3] (expected in [-2, 1])",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::sum(x, {1, -1}),
                         "sum: dim 1 appears more than once in the dims of shape [2, 3]",
                         std::invalid_argument);
}

TEST_CASE("errors: reshape, flatten, transpose, permute") {
    const Tensor x = Tensor::zeros({2, 3, 4});
    CHECK_THROWS_WITH_AS(
        tg::reshape(x, {5, 5}),
        "reshape: cannot reshape [2, 3, 4] (24 elements) into [5, 5] (25 elements)",
        std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::flatten(x, 2, 1),
                         "flatten: start_dim 2 comes after end_dim 1 for shape [2, 3, 4]",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::flatten(x, 3),
                         "flatten: dim 3 out of range for shape [2, 3, 4] (expected in [-3, 2])",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::transpose(x, 0, -4),
                         "transpose: dim -4 out of range for shape [2, 3, 4] (expected in [-3, 2])",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::permute(x, {0, 0, 1}),
                         "permute: dims [0, 0, 1] are not a permutation of the 3 axes of shape "
                         "[2, 3, 4]",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::permute(x, {1, 0}),
                         "permute: dims [1, 0] are not a permutation of the 3 axes of shape "
                         "[2, 3, 4]",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::permute(x, {0, 1, 3}),
                         "permute: dims [0, 1, 3] are not a permutation of the 3 axes of shape "
                         "[2, 3, 4]",
                         std::invalid_argument);
}

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

TEST_CASE("ops record nothing without a tape, and only ops whose inputs require grad") {
    const Tensor x(tg::Array{{1, -2}, {3, 4}}, true);
    CHECK_FALSE(tg::relu(tg::matmul(x, x)).requires_grad());
    tg::Tape tape;
    const Tensor c = Tensor::ones({2, 2});
    CHECK_FALSE(tg::exp(c).requires_grad());
    CHECK(tape.size() == 0);
    const Tensor y = tg::sum(tg::relu(x) * 2.0);
    CHECK(y.requires_grad());
    CHECK(tape.size() == 3);  // relu, mul_scalar, sum
    tape.backward(y);
    CHECK(x.grad() == tg::Array{{2, 0}, {2, 2}});
}
