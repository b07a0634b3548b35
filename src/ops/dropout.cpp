#include "tapegrad/ops/dropout.hpp"

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

#include "tapegrad/ops/catalog.hpp"
#include "tapegrad/tape.hpp"

namespace tg {

namespace {

/// dropout's backward (y = x · mask): g · mask, the mask the forward pass drew. A named struct
/// rather than a lambda, so that gdb's `bt` names it.
struct DropoutBackward final : BackwardClosure {
    DropoutBackward(const Tensor& input, Array keep_mask) : x(input), mask(std::move(keep_mask)) {}
    Tensor x;
    Array mask;  // 1/(1 - p) where the element was kept, 0 where it was dropped
    void operator()(const Array& g) override {
        // dy/dx = mask: dropped elements get no gradient, kept ones are scaled by 1/(1-p)
        Array dx = new_array(x.shape());
        const real* gp = g.data();
        const real* mp2 = mask.data();
        real* dxp = dx.data();
        for (std::size_t i = 0; i < dx.size(); ++i)
            dxp[i] = gp[i] * mp2[i];
        x.accumulate_grad(std::move(dx));
    }
};

}  // namespace

Tensor dropout(const Tensor& x, double p, bool training, Generator& gen) {
    if (!(p >= 0.0 && p <= 1.0)) {  // also rejects NaN
        std::ostringstream msg;
        msg << "dropout: probability p must be in [0, 1], got " << p << " (input "
            << shape_str(x.shape()) << ")";
        throw std::invalid_argument(msg.str());
    }
    // As PyTorch: nothing to drop, so the input itself is returned (no copy, no random draws).
    if (!training || p == 0.0) return x;

    // mask[i] = 1 / (1 - p) with probability 1 - p, else 0. With p = 1 every element is
    // dropped (and no random numbers are needed).
    Array mask = new_array(x.shape());
    real* mp = mask.data();
    if (p == 1.0) {
        mask.fill(real(0));
    } else {
        const real scale = static_cast<real>(1.0 / (1.0 - p));
        for (std::size_t i = 0; i < mask.size(); ++i) {
            mp[i] = gen.uniform01() < 1.0 - p ? scale : real(0);  // keep with probability 1 - p
        }
    }

    // y = x * mask
    Array y = new_array(x.shape());
    const real* xp = x.value().data();
    real* yp = y.data();
    for (std::size_t i = 0; i < y.size(); ++i)
        yp[i] = xp[i] * mp[i];

    Tensor out(std::move(y));
    if (Tape* tape = recording_tape(x)) {
        tape->record("dropout", {x}, out, DropoutBackward(x, std::move(mask)));
    }
    return out;
}

// ---- catalog -------------------------------------------------------------------------------

// This file's ops in tg::op_catalog() (tapegrad/ops/catalog.hpp): an example puts its op in every
// test that walks the catalog.
std::vector<OpExample> catalog::dropout_examples() {
    return {
        op("dropout", "DropoutBackward", false, {rows}, {rows0}, rows0,
           [](const In& v) {
               Generator gen(1);
               return dropout(v[0], 0.5, true, gen);
           }),
    };
}

}  // namespace tg
