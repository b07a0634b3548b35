// The tape entry of an op whose weight and bias are optional (an undefined Tensor when absent):
// the normalisations (ops/normalization.cpp), batch_norm_relu_max_pool2d (ops/fused.cpp) and
// tg::dist::sync_batch_norm (dist/sync_batchnorm.cpp). Internal to the library (src/), not part
// of the API.
#pragma once

#include <initializer_list>
#include <vector>

#include "tapegrad/tape.hpp"

namespace tg::detail {

/// recording_tape for optional inputs: the active tape if any defined tensor among `candidates`
/// requires grad, else nullptr; with a tape, the defined ones are appended to `inputs` (what the
/// op records as its entry's inputs).
inline Tape* recording_tape_of_defined(std::initializer_list<Tensor> candidates,
                                       std::vector<Tensor>& inputs) {
    Tape* tape = Tape::active();
    if (tape == nullptr) return nullptr;
    bool any = false;
    for (const Tensor& t : candidates) {
        if (!t.defined()) continue;
        inputs.push_back(t);
        any = any || t.requires_grad();
    }
    return any ? tape : nullptr;
}

}  // namespace tg::detail
