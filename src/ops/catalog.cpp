// The op catalog (tapegrad/ops/catalog.hpp): the entry builders, and the list of every op file's
// examples (each file's stand at its end, beside its ops).
#include "tapegrad/ops/catalog.hpp"

#include <utility>

#include "tapegrad/checkpoint.hpp"
#include "tapegrad/ops/activation.hpp"

namespace tg {

OpExample catalog::op(const char* name, const char* backward, bool two_kernels,
                      std::vector<Shape> inputs, std::vector<Shape> empty_inputs,
                      Shape empty_output, std::function<Tensor(const In&)> call) {
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

OpExample catalog::bad_call(std::vector<Shape> bad, const char* message, OpExample e) {
    e.bad_inputs = std::move(bad);
    e.bad_message = message;
    return e;
}

OpExample catalog::vs_pytorch(const char* pytorch_case, OpExample e) {
    e.pytorch_case = pytorch_case;
    return e;
}

const std::vector<OpExample>& op_catalog() {
    static const std::vector<OpExample> all = [] {
        std::vector<OpExample> out;
        for (std::vector<OpExample> (*file)() :
             {catalog::elementwise_examples, catalog::reduce_examples, catalog::linalg_examples,
              catalog::linear_examples, catalog::shape_examples, catalog::dropout_examples,
              catalog::activation_examples, catalog::pool_examples, catalog::fused_examples,
              catalog::conv_examples, catalog::loss_examples, catalog::normalization_examples})
            for (OpExample& e : file())
                out.push_back(std::move(e));
        // checkpoint.hpp (core, not an op file: its example stands here)
        out.push_back(catalog::op("checkpoint", "CheckpointBackward", false, {catalog::rows}, {},
                                  {}, [](const catalog::In& v) {
                                      return checkpoint(
                                          [](const catalog::In& xs) { return relu(xs[0]); }, v);
                                  }));
        return out;
    }();
    return all;
}

}  // namespace tg
