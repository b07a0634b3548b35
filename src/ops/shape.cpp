#include "tapegrad/ops/shape.hpp"

#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>

#include "tapegrad/ops/catalog.hpp"
#include "tapegrad/ops/reduce.hpp"
#include "tapegrad/tape.hpp"

namespace tg {

namespace {

std::size_t product(const Shape& s) {
    return std::accumulate(s.begin(), s.end(), std::size_t{1}, std::multiplies<>());
}

// A copy of `x` reshaped (the row-major order of elements is unchanged).
Array reshaped(const Array& x, const Shape& shape) {
    Array y = x;
    y.reshape(shape);
    return y;
}

/// reshape's and flatten's backward: g with x's shape (the order of the elements is unchanged).
/// A named struct rather than a lambda, so that gdb's `bt` names it.
struct ReshapeBackward final : BackwardClosure {
    explicit ReshapeBackward(const Tensor& input) : x(input) {}
    Tensor x;
    void operator()(const Array& g) override { x.accumulate_grad(reshaped(g, x.shape())); }
};

// The op behind reshape and flatten: y = x with a new shape, dx = g with x's shape.
Tensor reshape_op(const char* op, const Tensor& x, const Shape& shape) {
    Tensor out(reshaped(x.value(), shape));
    if (Tape* tape = recording_tape(x)) {
        tape->record(op, {x}, out, ReshapeBackward(x));
    }
    return out;
}

// y = x with axes reordered, y.shape[d] = x.shape[perm[d]]. Walks y in memory order: rows
// along y's last axis (stride istride[perm[n-1]] in x), an odometer over the other axes.
Array permuted(const Array& x, const std::vector<std::size_t>& perm) {
    const std::size_t n = perm.size();
    Shape xshape(x.shape().begin(), x.shape().end());
    Shape yshape(n);
    for (std::size_t d = 0; d < n; ++d)
        yshape[d] = xshape[perm[d]];
    Array y = new_array(yshape);
    if (y.size() == 0) return y;
    if (n == 0) {
        y.flat(0) = x.flat(0);
        return y;
    }
    // xstride[d]: how far x moves when y's index along axis d grows by one.
    std::vector<std::size_t> istride(n), xstride(n);
    std::size_t s = 1;
    for (std::size_t d = n; d-- > 0;) {
        istride[d] = s;
        s *= xshape[d];
    }
    for (std::size_t d = 0; d < n; ++d)
        xstride[d] = istride[perm[d]];

    const real* xp = x.data();
    real* yp = y.data();
    const std::size_t last = yshape[n - 1], step = xstride[n - 1];
    const std::size_t rows = y.size() / last;
    std::vector<std::size_t> idx(n, 0);
    std::size_t offset = 0;  // offset in x of the current row's first element
    for (std::size_t r = 0; r < rows; ++r, yp += last) {
        for (std::size_t j = 0; j < last; ++j)
            yp[j] = xp[offset + j * step];
        for (std::size_t d = n - 1; d-- > 0;) {
            offset += xstride[d];
            if (++idx[d] < yshape[d]) break;
            offset -= xstride[d] * yshape[d];
            idx[d] = 0;
        }
    }
    return y;
}

/// permute's and transpose's backward: g with its axes put back in x's order by the inverse
/// permutation. A named struct rather than a lambda, so that gdb's `bt` names it.
struct PermuteBackward final : BackwardClosure {
    PermuteBackward(const Tensor& input, std::vector<std::size_t> inverse_perm)
        : x(input), inverse(std::move(inverse_perm)) {}
    Tensor x;
    std::vector<std::size_t> inverse;  // x's axis d is g's axis inverse[d]
    void operator()(const Array& g) override { x.accumulate_grad(permuted(g, inverse)); }
};

// The op behind transpose and permute. perm must be a permutation of 0 .. x.dim()-1.
Tensor permute_op(const char* op, const Tensor& x, std::vector<std::size_t> perm) {
    Tensor out(permuted(x.value(), perm));
    if (Tape* tape = recording_tape(x)) {
        // g has y's axes; x's axis perm[d] is g's axis d, so the inverse permutation undoes it.
        std::vector<std::size_t> inverse(perm.size());
        for (std::size_t d = 0; d < perm.size(); ++d)
            inverse[perm[d]] = d;
        tape->record(op, {x}, out, PermuteBackward(x, std::move(inverse)));
    }
    return out;
}

}  // namespace

Tensor reshape(const Tensor& x, const Shape& shape) {
    const Shape from = x.shape();
    checked_numel(shape);  // [2, 2^63 + 3] must not wrap around to 6 elements
    if (product(from) != product(shape)) {
        throw std::invalid_argument("reshape: cannot reshape " + shape_str(from) + " (" +
                                    std::to_string(product(from)) + " elements) into " +
                                    shape_str(shape) + " (" + std::to_string(product(shape)) +
                                    " elements)");
    }
    return reshape_op("reshape", x, shape);
}

Tensor flatten(const Tensor& x, int start_dim, int end_dim) {
    const Shape from = x.shape();
    const std::size_t start = detail::normalize_dim("flatten", start_dim, from);
    const std::size_t end = detail::normalize_dim("flatten", end_dim, from);
    if (start > end) {
        throw std::invalid_argument("flatten: start_dim " + std::to_string(start_dim) +
                                    " comes after end_dim " + std::to_string(end_dim) +
                                    " for shape " + shape_str(from));
    }
    if (from.empty()) return reshape_op("flatten", x, Shape{1});  // a 0-d tensor becomes [1]
    // [d0, .., d(start), .., d(end), ..] -> [d0, .., d(start) * .. * d(end), ..]
    Shape to(from.begin(), from.begin() + static_cast<std::ptrdiff_t>(start));
    std::size_t merged = 1;
    for (std::size_t d = start; d <= end; ++d)
        merged *= from[d];
    to.push_back(merged);
    to.insert(to.end(), from.begin() + static_cast<std::ptrdiff_t>(end) + 1, from.end());
    return reshape_op("flatten", x, to);
}

Tensor transpose(const Tensor& x, int dim0, int dim1) {
    const Shape shape = x.shape();
    const std::size_t d0 = detail::normalize_dim("transpose", dim0, shape);
    const std::size_t d1 = detail::normalize_dim("transpose", dim1, shape);
    std::vector<std::size_t> perm(shape.size());
    std::iota(perm.begin(), perm.end(), std::size_t{0});
    if (!shape.empty()) std::swap(perm[d0], perm[d1]);
    return permute_op("transpose", x, std::move(perm));
}

Tensor permute(const Tensor& x, const std::vector<std::size_t>& dims) {
    const Shape shape = x.shape();
    std::vector<bool> seen(shape.size(), false);
    bool ok = dims.size() == shape.size();
    for (std::size_t d : dims) {
        if (!ok) break;
        ok = d < shape.size() && !seen[d];
        if (ok) seen[d] = true;
    }
    if (!ok) {
        throw std::invalid_argument(
            "permute: dims " + shape_str(dims) + " are not a permutation of the " +
            std::to_string(shape.size()) + " axes of shape " + shape_str(shape));
    }
    return permute_op("permute", x, dims);
}

// ---- catalog -------------------------------------------------------------------------------

// This file's ops in tg::op_catalog() (tapegrad/ops/catalog.hpp): an example puts its op in every
// test that walks the catalog.
std::vector<OpExample> catalog::shape_examples() {
    return {
        op("reshape", "ReshapeBackward", false, {rows}, {}, {},
           [](const In& v) {
               return reshape(v[0], {3, 2});
           }),
        op("flatten", "ReshapeBackward", false, {img}, {img0}, {0, 50},
           [](const In& v) { return flatten(v[0]); }),
        op("transpose", "PermuteBackward", false, {rows}, {rows0}, {3, 0},
           [](const In& v) { return transpose(v[0], 0, 1); }),
    };
}

}  // namespace tg
