#include "tapegrad/ops/reduce.hpp"

#include <stdexcept>
#include <string>
#include <utility>

#include <xtensor/xbroadcast.hpp>

#include "tapegrad/ops/catalog.hpp"
#include "tapegrad/tape.hpp"

namespace tg {

namespace detail {

std::size_t normalize_dim(const char* op, int dim, const Shape& shape) {
    // A 0-d tensor accepts dims -1 and 0, as in PyTorch.
    const int n = std::max<int>(static_cast<int>(shape.size()), 1);
    if (dim < -n || dim >= n) {
        throw std::invalid_argument(std::string(op) + ": dim " + std::to_string(dim) +
                                    " out of range for shape " + shape_str(shape) +
                                    " (expected in [" + std::to_string(-n) + ", " +
                                    std::to_string(n - 1) + "])");
    }
    return static_cast<std::size_t>(dim < 0 ? dim + n : dim);
}

namespace {

// out[j] += x[i], where the output index j is the input index i with the reduced axes set
// to 0. Walks x in memory order: rows along the last axis, an odometer over the other axes.
template <class Acc>
void sum_axes_kernel(const real* x, const Shape& shape, const std::vector<bool>& reduced,
                     Acc* out) {
    const std::size_t n = shape.size();
    if (n == 0) {
        out[0] += x[0];
        return;
    }
    // Strides of the output (in keepdim form); 0 along a reduced axis.
    std::vector<std::size_t> ostride(n, 0);
    std::size_t s = 1;
    for (std::size_t d = n; d-- > 0;) {
        if (!reduced[d]) {
            ostride[d] = s;
            s *= shape[d];
        }
    }
    const std::size_t last = shape[n - 1];
    std::size_t rows = 1;
    for (std::size_t d = 0; d + 1 < n; ++d)
        rows *= shape[d];
    if (last == 0 || rows == 0) return;

    std::vector<std::size_t> idx(n, 0);
    std::size_t offset = 0;  // output offset of the current row
    for (std::size_t r = 0; r < rows; ++r) {
        const real* row = x + r * last;
        Acc* o = out + offset;
        if (reduced[n - 1]) {
            Acc acc = 0;
            for (std::size_t j = 0; j < last; ++j)
                acc += row[j];
            *o += acc;
        } else {
            for (std::size_t j = 0; j < last; ++j)
                o[j] += row[j];
        }
        // Next row: advance the odometer over axes n-2 .. 0.
        for (std::size_t d = n - 1; d-- > 0;) {
            offset += ostride[d];
            if (++idx[d] < shape[d]) break;
            offset -= ostride[d] * shape[d];
            idx[d] = 0;
        }
    }
}

}  // namespace

Array sum_axes(const Array& x, const std::vector<bool>& reduced) {
    const Shape shape(x.shape().begin(), x.shape().end());
    Shape out_shape = shape;
    for (std::size_t d = 0; d < shape.size(); ++d) {
        if (reduced[d]) out_shape[d] = 1;
    }
    Array out = new_array(out_shape);
    if constexpr (std::is_same_v<real, double>) {
        out.fill(real(0));
        sum_axes_kernel<real>(x.data(), shape, reduced, out.data());
    } else {
        // float: accumulate in double so long sums keep their digits
        std::vector<double> acc(out.size(), 0.0);
        sum_axes_kernel<double>(x.data(), shape, reduced, acc.data());
        std::copy(acc.begin(), acc.end(), out.begin());
    }
    return out;
}

}  // namespace detail

namespace {

// The reduced-axis flags of `dims` for `shape` (empty dims: every axis), rejecting repeats.
std::vector<bool> reduced_axes(const char* op, const std::vector<int>& dims, const Shape& shape) {
    std::vector<bool> reduced(shape.size(), dims.empty());
    for (int dim : dims) {
        const std::size_t d = detail::normalize_dim(op, dim, shape);
        if (shape.empty()) continue;  // a 0-d tensor: nothing to reduce
        if (reduced[d]) {
            throw std::invalid_argument(std::string(op) + ": dim " + std::to_string(d) +
                                        " appears more than once in the dims of shape " +
                                        shape_str(shape));
        }
        reduced[d] = true;
    }
    return reduced;
}

// The reduced shape: keepdim form has size 1 on reduced axes, else they are dropped.
Shape reduced_shape(const Shape& shape, const std::vector<bool>& reduced, bool keepdim) {
    Shape out;
    for (std::size_t d = 0; d < shape.size(); ++d) {
        if (!reduced[d]) {
            out.push_back(shape[d]);
        } else if (keepdim) {
            out.push_back(1);
        }
    }
    return out;
}

/// sum's and mean's backward (mean is the sum scaled by 1/n): g·scale to every x_i summed into
/// the output, i.e. g broadcast back over the reduced axes. A named struct rather than a lambda,
/// so that gdb's `bt` names it.
struct SumBackward final : BackwardClosure {
    SumBackward(const Tensor& input, Shape keepdim_shape, real scale_)
        : x(input), keep_shape(std::move(keepdim_shape)), scale(scale_) {}
    Tensor x;
    Shape keep_shape;  // the output's shape in keepdim form (size 1 on the reduced axes)
    real scale;        // 1 for sum, 1/n for mean
    void operator()(const Array& g) override {
        // ds_j/dx_i = scale for every i summed into j: g broadcast back over the reduced axes
        if (g.size() == 1) {
            // every axis summed (a loss): the one number g·scale for every x_i, written as a
            // fill (xtensor's broadcast steps an index per element: seconds for 2^20 elements
            // under the sanitizers, tests/fuzz/fuzz_shapes.cpp)
            Array dx = new_array(x.shape());
            dx.fill(scale != real(1) ? g.flat(0) * scale : g.flat(0));
            x.accumulate_grad(std::move(dx));
            return;
        }
        Array gk = g;
        gk.reshape(keep_shape);
        if (scale != real(1)) gk *= scale;
        x.accumulate_grad(Array(xt::broadcast(gk, x.shape())));
    }
};

// sum (scale = 1) or mean (scale = 1/n) over the flagged axes.
Tensor reduce_sum(const char* op, const Tensor& x, const std::vector<bool>& reduced, bool keepdim,
                  bool average) {
    const Shape shape = x.shape();
    std::size_t count = 1;  // n: the number of elements summed into each output
    for (std::size_t d = 0; d < shape.size(); ++d) {
        if (reduced[d]) count *= shape[d];
    }
    const real scale = average ? real(1) / static_cast<real>(count) : real(1);

    // Forward: s_j = scale * sum_{i -> j} x_i
    Array s = detail::sum_axes(x.value(), reduced);
    if (average) s *= scale;
    s.reshape(reduced_shape(shape, reduced, keepdim));
    Tensor out(std::move(s));

    if (Tape* tape = recording_tape(x)) {
        Shape keep_shape = reduced_shape(shape, reduced, /*keepdim=*/true);
        tape->record(op, {x}, out, SumBackward(x, std::move(keep_shape), scale));
    }
    return out;
}

}  // namespace

Tensor sum(const Tensor& x) {
    return sum(x, {}, false);
}

Tensor sum(const Tensor& x, const std::vector<int>& dims, bool keepdim) {
    return reduce_sum("sum", x, reduced_axes("sum", dims, x.shape()), keepdim, false);
}

Tensor mean(const Tensor& x) {
    return mean(x, {}, false);
}

Tensor mean(const Tensor& x, const std::vector<int>& dims, bool keepdim) {
    return reduce_sum("mean", x, reduced_axes("mean", dims, x.shape()), keepdim, true);
}

// ---- catalog -------------------------------------------------------------------------------

// This file's ops in tg::op_catalog() (tapegrad/ops/catalog.hpp): an example puts its op in every
// test that walks the catalog.
std::vector<OpExample> catalog::reduce_examples() {
    return {
        op("sum", "SumBackward", false, {rows}, {}, {}, [](const In& v) { return sum(v[0]); }),
        op("sum over dim 0", "SumBackward", false, {rows}, {rows0}, {3},
           [](const In& v) { return sum(v[0], {0}); }),
        op("mean over dim 0", "SumBackward", false, {rows}, {}, {},
           [](const In& v) { return mean(v[0], {0}); }),
    };
}

}  // namespace tg
