// Every functional op against PyTorch (tests/reference/gen_ops.py -> ops.txt): the forward
// value and the gradient of sum(out * w) for fixed weights w, in both builds (float32 within
// 1e-5 relative, float64 within 1e-10).
#include <functional>
#include <string>
#include <vector>

#include "tapegrad/ops/activation.hpp"
#include "tapegrad/ops/elementwise.hpp"
#include "tapegrad/ops/linalg.hpp"
#include "tapegrad/ops/loss.hpp"
#include "tapegrad/ops/reduce.hpp"
#include "tapegrad/ops/shape.hpp"
#include "tapegrad/tape.hpp"
#include "testing.hpp"

using tg::Array;
using tg::Tape;
using tg::Tensor;

namespace {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

// How gradients are compared: element-wise, or against the tensor's scale for gradients that
// are sums over broadcast axes or matrix products (float32 summation order, ARCHITECTURE.md).
enum class Grad { elementwise, scaled };

// Loads the inputs of `name` (in `inputs` order), runs `f` on a tape, compares the output,
// then walks back with grad_output = w (the gradient of sum(out * w)) and compares each
// input's gradient.
void check_against_pytorch(const std::string& name, const std::vector<std::string>& inputs,
                           const Fn& f, Grad grad_mode = Grad::elementwise) {
    const auto& ref = tgtest::reference("ops");
    CAPTURE(name);
    std::vector<Tensor> xs;
    for (const auto& in : inputs)
        xs.emplace_back(ref.at(name + "/" + in), true, in);
    Tape tape;
    const Tensor out = f(xs);
    CHECK_MATCHES(out.value(), ref.at(name + "/out"));
    tape.backward(out, ref.at(name + "/w"));
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        CAPTURE(inputs[i]);
        REQUIRE(xs[i].has_grad());
        const Array& expected = ref.at(name + "/grad_" + inputs[i]);
        if (grad_mode == Grad::scaled) {
            CHECK_MATCHES_SCALED(xs[i].grad(), expected);
        } else {
            CHECK_MATCHES(xs[i].grad(), expected);
        }
    }
}

tg::Labels labels_of(const std::string& name) {
    tg::Labels out;
    for (auto v : tgtest::reference("ops").at(name + "/targets")) {
        out.push_back(static_cast<std::int64_t>(v));
    }
    return out;
}

const std::vector<std::string> AB{"a", "b"};
const std::vector<std::string> X{"x"};

}  // namespace

TEST_CASE("elementwise tensor-tensor ops with broadcasting match PyTorch") {
    auto add = [](const std::vector<Tensor>& v) { return tg::add(v[0], v[1]); };
    check_against_pytorch("add_same", AB, add);
    check_against_pytorch("add_bcast_col", AB, add, Grad::scaled);
    check_against_pytorch("add_bcast_row", AB, add, Grad::scaled);
    check_against_pytorch("add_bcast_scalar", AB, add, Grad::scaled);
    check_against_pytorch("add_bcast_both", AB, add, Grad::scaled);
    auto sub = [](const std::vector<Tensor>& v) { return v[0] - v[1]; };  // operator-
    check_against_pytorch("sub_bcast_col", AB, sub, Grad::scaled);
    check_against_pytorch("sub_bcast_rev", AB, sub, Grad::scaled);
    auto mul = [](const std::vector<Tensor>& v) { return v[0] * v[1]; };
    check_against_pytorch("mul_bcast_col", AB, mul, Grad::scaled);
    check_against_pytorch("mul_bcast_scalar", AB, mul, Grad::scaled);
    auto div = [](const std::vector<Tensor>& v) { return tg::div(v[0], v[1]); };
    check_against_pytorch("div_bcast_row", AB, div, Grad::scaled);
    check_against_pytorch("div_bcast_rev", AB, div, Grad::scaled);
    check_against_pytorch(
        "pow_tensor", AB, [](const std::vector<Tensor>& v) { return tg::pow(v[0], v[1]); },
        Grad::scaled);
}

TEST_CASE("elementwise ops with a number match PyTorch") {
    check_against_pytorch("add_scalar", X, [](const std::vector<Tensor>& v) { return v[0] + 1.5; });
    check_against_pytorch("sub_scalar", X, [](const std::vector<Tensor>& v) { return v[0] - 1.5; });
    check_against_pytorch("rsub_scalar", X,
                          [](const std::vector<Tensor>& v) { return 1.5 - v[0]; });
    check_against_pytorch("mul_scalar", X,
                          [](const std::vector<Tensor>& v) { return v[0] * -2.5; });
    check_against_pytorch("div_scalar", X, [](const std::vector<Tensor>& v) { return v[0] / 4; });
    check_against_pytorch("rdiv_scalar", X,
                          [](const std::vector<Tensor>& v) { return 2.0 / v[0]; });
}

TEST_CASE("unary ops match PyTorch") {
    check_against_pytorch("neg", X, [](const std::vector<Tensor>& v) { return -v[0]; });
    check_against_pytorch("exp", X, [](const std::vector<Tensor>& v) { return tg::exp(v[0]); });
    check_against_pytorch("log", X, [](const std::vector<Tensor>& v) { return tg::log(v[0]); });
    check_against_pytorch("sqrt", X, [](const std::vector<Tensor>& v) { return tg::sqrt(v[0]); });
    check_against_pytorch("pow_2_5", X,
                          [](const std::vector<Tensor>& v) { return tg::pow(v[0], 2.5); });
    check_against_pytorch("pow_3", X,
                          [](const std::vector<Tensor>& v) { return tg::pow(v[0], 3); });
    check_against_pytorch("pow_neg_1_5", X,
                          [](const std::vector<Tensor>& v) { return tg::pow(v[0], -1.5); });
    check_against_pytorch("relu", X, [](const std::vector<Tensor>& v) { return tg::relu(v[0]); });
}

TEST_CASE("derivatives at the edges follow PyTorch: relu'(0), x^0, 0^b") {
    check_against_pytorch("relu_at_zero", X,
                          [](const std::vector<Tensor>& v) { return tg::relu(v[0]); });
    check_against_pytorch("pow_0", X,
                          [](const std::vector<Tensor>& v) { return tg::pow(v[0], 0); });
    check_against_pytorch("pow_tensor_zero_base", AB,
                          [](const std::vector<Tensor>& v) { return tg::pow(v[0], v[1]); });
}

TEST_CASE("sum and mean match PyTorch") {
    check_against_pytorch("sum_all", X, [](const std::vector<Tensor>& v) { return tg::sum(v[0]); });
    check_against_pytorch("sum_dims", X, [](const std::vector<Tensor>& v) {
        return tg::sum(v[0], {0, 2});
    });
    check_against_pytorch("sum_keepdim", X,
                          [](const std::vector<Tensor>& v) { return tg::sum(v[0], {-1}, true); });
    check_against_pytorch("mean_all", X,
                          [](const std::vector<Tensor>& v) { return tg::mean(v[0]); });
    check_against_pytorch("mean_dims", X,
                          [](const std::vector<Tensor>& v) { return tg::mean(v[0], {1}); });
    check_against_pytorch("mean_keepdim", X, [](const std::vector<Tensor>& v) {
        return tg::mean(v[0], {0, -1}, true);
    });
}

TEST_CASE("shape ops match PyTorch") {
    check_against_pytorch("reshape", X, [](const std::vector<Tensor>& v) {
        return tg::reshape(v[0], {4, 6});
    });
    check_against_pytorch("flatten", X,
                          [](const std::vector<Tensor>& v) { return tg::flatten(v[0]); });
    check_against_pytorch("flatten_mid", X,
                          [](const std::vector<Tensor>& v) { return tg::flatten(v[0], 1, 2); });
    check_against_pytorch("transpose", X,
                          [](const std::vector<Tensor>& v) { return tg::transpose(v[0], 0, 2); });
    check_against_pytorch("transpose_neg", X,
                          [](const std::vector<Tensor>& v) { return tg::transpose(v[0], -1, -2); });
    check_against_pytorch("permute", X, [](const std::vector<Tensor>& v) {
        return tg::permute(v[0], {2, 0, 1});
    });
}

TEST_CASE("matmul matches PyTorch") {
    check_against_pytorch(
        "matmul", AB, [](const std::vector<Tensor>& v) { return tg::matmul(v[0], v[1]); },
        Grad::scaled);
}

TEST_CASE("log_softmax and softmax match PyTorch") {
    check_against_pytorch("log_softmax_last", X,
                          [](const std::vector<Tensor>& v) { return tg::log_softmax(v[0]); });
    check_against_pytorch("log_softmax_dim1", X,
                          [](const std::vector<Tensor>& v) { return tg::log_softmax(v[0], 1); });
    check_against_pytorch("log_softmax_large", X,
                          [](const std::vector<Tensor>& v) { return tg::log_softmax(v[0]); });
    check_against_pytorch("softmax_last", X,
                          [](const std::vector<Tensor>& v) { return tg::softmax(v[0]); });
    check_against_pytorch("softmax_dim0", X,
                          [](const std::vector<Tensor>& v) { return tg::softmax(v[0], 0); });
}

TEST_CASE("cross_entropy and mse_loss match PyTorch") {
    for (const std::string name : {"cross_entropy", "cross_entropy_large"}) {
        const tg::Labels t = labels_of(name);
        check_against_pytorch(
            name, X, [&t](const std::vector<Tensor>& v) { return tg::cross_entropy(v[0], t); });
    }
    auto mse = [](const std::vector<Tensor>& v) { return tg::mse_loss(v[0], v[1]); };
    check_against_pytorch("mse_loss", AB, mse);
    check_against_pytorch("mse_loss_bcast", AB, mse, Grad::scaled);
}
