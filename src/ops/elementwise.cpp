#include "tapegrad/ops/elementwise.hpp"

#include <algorithm>
#include <stdexcept>

#include <xtensor/xmath.hpp>

#include "tapegrad/tape.hpp"

namespace tg {

Shape broadcast_shape(const char* op, const Shape& a, const Shape& b) {
    const std::size_t n = std::max(a.size(), b.size());
    Shape out(n);
    for (std::size_t i = 0; i < n; ++i) {
        // Align at the last axis; a missing leading axis counts as size 1.
        const std::size_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
        const std::size_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
        if (da != db && da != 1 && db != 1) {
            throw std::invalid_argument(std::string(op) + ": shapes " + shape_str(a) + " and " +
                                        shape_str(b) + " cannot be broadcast (axis " +
                                        std::to_string(i) + ": " + std::to_string(da) + " vs " +
                                        std::to_string(db) + ")");
        }
        out[i] = std::max(da, db);
    }
    return out;
}

Array unbroadcast(const Array& grad, const Shape& shape) {
    if (std::equal(grad.shape().begin(), grad.shape().end(), shape.begin(), shape.end())) {
        return grad;
    }
    // Axes to sum: the leading ones `shape` lacks, and those where `shape` has size 1.
    const std::size_t lead = grad.dimension() - shape.size();
    std::vector<std::size_t> axes;
    for (std::size_t i = 0; i < grad.dimension(); ++i) {
        if (i < lead || (shape[i - lead] == 1 && grad.shape()[i] != 1)) axes.push_back(i);
    }
    Array summed = xt::sum(grad, axes);
    summed.reshape(shape);
    return summed;
}

Tensor add(const Tensor& a, const Tensor& b) {
    broadcast_shape("add", a.shape(), b.shape());
    Tensor out(a.value() + b.value());
    if (Tape* tape = recording_tape(a, b)) {
        tape->record("add", {a, b}, out, [a, b](const Array& g) {
            // d(a + b)/da = 1, d(a + b)/db = 1
            if (a.requires_grad()) a.accumulate_grad(unbroadcast(g, a.shape()));
            if (b.requires_grad()) b.accumulate_grad(unbroadcast(g, b.shape()));
        });
    }
    return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
    broadcast_shape("mul", a.shape(), b.shape());
    Tensor out(a.value() * b.value());
    if (Tape* tape = recording_tape(a, b)) {
        tape->record("mul", {a, b}, out, [a, b](const Array& g) {
            // d(a * b)/da = b, d(a * b)/db = a
            if (a.requires_grad()) a.accumulate_grad(unbroadcast(g * b.value(), a.shape()));
            if (b.requires_grad()) b.accumulate_grad(unbroadcast(g * a.value(), b.shape()));
        });
    }
    return out;
}

}  // namespace tg
