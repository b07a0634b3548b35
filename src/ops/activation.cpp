#include "tapegrad/ops/activation.hpp"

#include "tapegrad/parallel.hpp"
#include "tapegrad/tape.hpp"

namespace tg {

Tensor relu(const Tensor& x) {
    // Forward: y_i = max(x_i, 0), one pass over the contiguous data. Written as "0 where
    // x_i <= 0, else x_i" so a NaN passes through (PyTorch: relu(NaN) = NaN).
    const Array& xv = x.value();
    Array y = Array::from_shape(xv.shape());
    const real* xp = xv.data();
    real* yp = y.data();
    parallel_for(xv.size(), grain_for(1), [xp, yp](std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i)
            yp[i] = xp[i] <= real(0) ? real(0) : xp[i];
    });
    Tensor out(std::move(y));

    if (Tape* tape = recording_tape(x)) {
        Tensor y_handle = out;  // the mask y > 0 is the mask x > 0; keep y, not a copy of x
        tape->record("relu", {x}, out, [x, y_handle](const Array& g) {
            // dx_i = g_i where y_i > 0, else 0
            Array dx = Array::from_shape(g.shape());
            const real* gp = g.data();
            const real* yp2 = y_handle.value().data();
            real* dp = dx.data();
            parallel_for(g.size(), grain_for(1), [gp, yp2, dp](std::size_t begin, std::size_t end) {
                for (std::size_t i = begin; i < end; ++i) {
                    // Load g_i first, then select: a load made only when y_i > 0 would force
                    // a branch on data (mispredicted half the time) instead of a vector blend.
                    const real gi = gp[i];
                    dp[i] = yp2[i] > real(0) ? gi : real(0);
                }
            });
            x.accumulate_grad(std::move(dx));
        });
    }
    return out;
}

}  // namespace tg
