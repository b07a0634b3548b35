// The op catalog (tapegrad/ops/catalog.hpp): one entry per op variant.
#include "tapegrad/ops/catalog.hpp"

#include <utility>

#include "tapegrad/checkpoint.hpp"
#include "tapegrad/ops/activation.hpp"
#include "tapegrad/ops/conv.hpp"
#include "tapegrad/ops/dropout.hpp"
#include "tapegrad/ops/elementwise.hpp"
#include "tapegrad/ops/fused.hpp"
#include "tapegrad/ops/linalg.hpp"
#include "tapegrad/ops/linear.hpp"
#include "tapegrad/ops/loss.hpp"
#include "tapegrad/ops/normalization.hpp"
#include "tapegrad/ops/pool.hpp"
#include "tapegrad/ops/reduce.hpp"
#include "tapegrad/ops/shape.hpp"
#include "tapegrad/random.hpp"

namespace tg {

namespace {

using In = std::vector<Tensor>;

/// One catalog entry (a function, not a braced list, so that each entry stays a few lines).
OpExample op(const char* name, const char* backward, bool two_kernels, std::vector<Shape> inputs,
             std::vector<Shape> empty_inputs, Shape empty_output,
             std::function<Tensor(const In&)> call) {
    return {name,
            backward,
            two_kernels,
            std::move(inputs),
            std::move(empty_inputs),
            std::move(empty_output),
            std::move(call),
            {},
            nullptr,
            nullptr};
}

/// The example `e`, also called on inputs of the shapes `bad` and expected to throw
/// std::invalid_argument with a message that starts with `message`.
OpExample bad_call(std::vector<Shape> bad, const char* message, OpExample e) {
    e.bad_inputs = std::move(bad);
    e.bad_message = message;
    return e;
}

/// The example `e`, checked against PyTorch's numbers for it: "<group>/<case>" of
/// tests/reference/<group>.txt.
OpExample vs_pytorch(const char* pytorch_case, OpExample e) {
    e.pytorch_case = pytorch_case;
    return e;
}

/// The channel count of x [N, C, *]: the running statistics' size.
std::size_t channels(const Tensor& x) {
    return x.shape()[1];
}

}  // namespace

const std::vector<OpExample>& op_catalog() {
    // Image-like inputs [N, C, H, W], an empty batch of them, and rows [N, D].
    const Shape img{2, 2, 6, 6}, img0{0, 2, 5, 5}, rows{2, 3}, rows0{0, 3};
    static const std::vector<OpExample> catalog{
        // elementwise.hpp
        op("add", "AddBackward", false, {rows, rows}, {rows0, {3}}, rows0,
           [](const In& v) { return add(v[0], v[1]); }),
        op("sub", "SubBackward", false, {rows, rows}, {rows0, {3}}, rows0,
           [](const In& v) { return sub(v[0], v[1]); }),
        op("mul", "MulBackward", false, {rows, rows}, {rows0, {3}}, rows0,
           [](const In& v) { return mul(v[0], v[1]); }),
        op("div", "DivBackward", false, {rows, rows}, {rows0, {3}}, rows0,
           [](const In& v) { return div(v[0], v[1]); }),
        op("add scalar", "AddScalarBackward", false, {rows}, {rows0}, rows0,
           [](const In& v) { return add(v[0], 2.0); }),
        op("sub from scalar", "RsubScalarBackward", false, {rows}, {rows0}, rows0,
           [](const In& v) { return sub(2.0, v[0]); }),
        op("mul scalar", "MulScalarBackward", false, {rows}, {rows0}, rows0,
           [](const In& v) { return mul(v[0], 2.0); }),
        op("div by scalar", "DivScalarBackward", false, {rows}, {rows0}, rows0,
           [](const In& v) { return div(v[0], 2.0); }),
        op("div scalar by", "RdivScalarBackward", false, {rows}, {rows0}, rows0,
           [](const In& v) { return div(2.0, v[0]); }),
        op("neg", "NegBackward", false, {rows}, {rows0}, rows0,
           [](const In& v) { return neg(v[0]); }),
        op("exp", "ExpBackward", false, {rows}, {rows0}, rows0,
           [](const In& v) { return exp(v[0]); }),
        op("log", "LogBackward", false, {rows}, {rows0}, rows0,
           [](const In& v) { return log(v[0]); }),
        op("sqrt", "SqrtBackward", false, {rows}, {rows0}, rows0,
           [](const In& v) { return sqrt(v[0]); }),
        op("pow scalar", "PowScalarBackward", false, {rows}, {rows0}, rows0,
           [](const In& v) { return pow(v[0], 2.0); }),
        op("pow", "PowBackward", false, {rows, rows}, {rows0, {3}}, rows0,
           [](const In& v) { return pow(v[0], v[1]); }),
        // reduce.hpp
        op("sum", "SumBackward", false, {rows}, {}, {}, [](const In& v) { return sum(v[0]); }),
        op("sum over dim 0", "SumBackward", false, {rows}, {rows0}, {3},
           [](const In& v) { return sum(v[0], {0}); }),
        op("mean over dim 0", "SumBackward", false, {rows}, {}, {},
           [](const In& v) { return mean(v[0], {0}); }),
        // linalg.hpp, linear.hpp
        op("matmul", "MatmulBackward", false, {rows, {3, 4}}, {rows0, {3, 4}}, {0, 4},
           [](const In& v) { return matmul(v[0], v[1]); }),
        op("linear", "LinearBackward", false, {rows, {4, 3}, {4}}, {rows0, {4, 3}, {4}}, {0, 4},
           [](const In& v) { return linear(v[0], v[1], v[2]); }),
        // shape.hpp
        op("reshape", "ReshapeBackward", false, {rows}, {}, {},
           [](const In& v) {
               return reshape(v[0], {3, 2});
           }),
        op("flatten", "ReshapeBackward", false, {img}, {img0}, {0, 50},
           [](const In& v) { return flatten(v[0]); }),
        op("transpose", "PermuteBackward", false, {rows}, {rows0}, {3, 0},
           [](const In& v) { return transpose(v[0], 0, 1); }),
        // dropout.hpp
        op("dropout", "DropoutBackward", false, {rows}, {rows0}, rows0,
           [](const In& v) {
               Generator gen(1);
               return dropout(v[0], 0.5, true, gen);
           }),
        // activation.hpp
        op("relu", "ReluBackward", true, {rows}, {rows0}, rows0,
           [](const In& v) { return relu(v[0]); }),
        op("tanh", "TanhBackward", true, {rows}, {rows0}, rows0,
           [](const In& v) { return tanh(v[0]); }),
        op("sigmoid", "SigmoidBackward", true, {rows}, {rows0}, rows0,
           [](const In& v) { return sigmoid(v[0]); }),
        op("leaky_relu", "LeakyReluBackward", true, {rows}, {rows0}, rows0,
           [](const In& v) { return leaky_relu(v[0], 0.2); }),
        op("gelu", "GeluBackward", true, {rows}, {rows0}, rows0,
           [](const In& v) { return gelu(v[0]); }),
        op("gelu tanh", "GeluBackward", true, {rows}, {rows0}, rows0,
           [](const In& v) { return gelu(v[0], "tanh"); }),
        // pool.hpp
        op("max_pool2d", "MaxPool2dBackward", true, {img}, {img0}, {0, 2, 2, 2},
           [](const In& v) { return max_pool2d(v[0], 2); }),
        op("avg_pool2d", "AvgPool2dBackward", true, {img}, {img0}, {0, 2, 2, 2},
           [](const In& v) { return avg_pool2d(v[0], 2); }),
        op("avg_pool2d padded", "AvgPool2dBackward", true, {img}, {img0}, {0, 2, 3, 3},
           [](const In& v) { return avg_pool2d(v[0], 3, 2, 1); }),
        // fused.hpp (the reference kernels run it as relu, then max_pool2d: two entries)
        op("relu_max_pool2d", "ReluMaxPool2dBackward", false, {img}, {img0}, {0, 2, 2, 2},
           [](const In& v) { return relu_max_pool2d(v[0]); }),
        // conv.hpp
        op("conv2d", "Conv2dBackward", true, {img, {3, 2, 3, 3}}, {img0, {3, 2, 3, 3}},
           {0, 3, 3, 3}, [](const In& v) { return conv2d(v[0], v[1]); }),
        op("conv2d with bias, padded", "Conv2dBackward", true, {img, {3, 2, 3, 3}, {3}},
           {img0, {3, 2, 3, 3}, {3}}, {0, 3, 5, 5},
           [](const In& v) { return conv2d(v[0], v[1], v[2], 1, 1); }),
        // loss.hpp
        op("log_softmax", "LogSoftmaxBackward", true, {rows}, {rows0}, rows0,
           [](const In& v) { return log_softmax(v[0]); }),
        op("softmax", "SoftmaxBackward", false, {rows}, {rows0}, rows0,
           [](const In& v) { return softmax(v[0]); }),
        op("cross_entropy", "CrossEntropyBackward", true, {rows}, {}, {},
           [](const In& v) {
               return cross_entropy(v[0], Labels{0, 2});
           }),
        op("mse_loss", "MseLossBackward", false, {rows, rows}, {}, {},
           [](const In& v) { return mse_loss(v[0], v[1]); }),
        // normalization.hpp
        op("batch_norm (training, running statistics)", "BatchNormBackward", true, {img, {2}, {2}},
           {img0, {2}, {2}}, img0,
           [](const In& v) {
               const Tensor rm = Tensor::zeros({channels(v[0])}),
                            rv = Tensor::ones({channels(v[0])});
               return batch_norm(v[0], rm, rv, v[1], v[2], true, 0.1, 1e-5);
           }),
        op("batch_norm (eval)", "BatchNormBackward", true, {img, {2}, {2}}, {img0, {2}, {2}}, img0,
           [](const In& v) {
               const Tensor rm = Tensor::zeros({channels(v[0])}),
                            rv = Tensor::ones({channels(v[0])});
               return batch_norm(v[0], rm, rv, v[1], v[2], false, 0.1, 1e-5);
           }),
        bad_call({{2, 4}, {3}, {3}},
                 "layer_norm: normalized_shape [3] does not match input [2, 4] (expected input of "
                 "shape [*, 3])",
                 vs_pytorch("norm/catalog_layer_norm",
                            op("layer_norm", "NormalizeSetsBackward", true, {rows, {3}, {3}},
                               {rows0, {3}, {3}}, rows0,
                               [](const In& v) { return layer_norm(v[0], {3}, v[1], v[2]); }))),
        bad_call({{2, 4}, {3}},
                 "rms_norm: normalized_shape [3] does not match input [2, 4] (expected input of "
                 "shape [*, 3])",
                 vs_pytorch("norm/catalog_rms_norm",
                            op("rms_norm", "RMSNormBackward", true, {rows, {3}}, {rows0, {3}},
                               rows0, [](const In& v) { return rms_norm(v[0], {3}, v[1]); }))),
        // Values ~1e-4 in PyTorch's case: the default eps (the float type's epsilon) counts.
        vs_pytorch(
            "norm/catalog_rms_norm_tiny",
            op("rms_norm over [H, W], no weight", "RMSNormBackward", true, {img}, {{0, 2, 6, 6}},
               {0, 2, 6, 6}, [](const In& v) { return rms_norm(v[0], {6, 6}); })),
        op("group_norm", "NormalizeSetsBackward", true, {{2, 4, 3}, {4}, {4}},
           {{0, 4, 3}, {4}, {4}}, {0, 4, 3},
           [](const In& v) { return group_norm(v[0], 2, v[1], v[2]); }),
        // instance_norm without weight and bias on an empty batch: PyTorch raises with them.
        op("instance_norm", "NormalizeSetsBackward", true, {{2, 2, 3}}, {{0, 2, 3}}, {0, 2, 3},
           [](const In& v) { return instance_norm(v[0], {}, {}, {}, {}, true, 0.1, 1e-5); }),
        // checkpoint.hpp
        op("checkpoint", "CheckpointBackward", false, {rows}, {}, {},
           [](const In& v) { return checkpoint([](const In& xs) { return relu(xs[0]); }, v); }),
    };
    return catalog;
}

}  // namespace tg
