// tapegrad/ops/elementwise.hpp — element-wise arithmetic with NumPy broadcasting.
//
// Broadcasting (as NumPy and PyTorch): shapes are aligned at their last axis; two sizes are
// compatible when equal or when one is 1. In backward, the gradient of a broadcast input is
// summed over the axes it was broadcast along (see unbroadcast).
#pragma once

#include "tapegrad/tensor.hpp"

namespace tg {

/// The broadcast shape of `a` and `b`; throws naming `op` and both shapes if incompatible.
Shape broadcast_shape(const char* op, const Shape& a, const Shape& b);

/// Sums `grad` (of the broadcast shape) back down to `shape`: over the leading axes `shape`
/// lacks and over the axes where `shape` has size 1.
Array unbroadcast(const Array& grad, const Shape& shape);
/// Same, but returns `grad` itself (moved, no copy) when no axis needs summing.
Array unbroadcast(Array&& grad, const Shape& shape);

// --- tensor (op) tensor, with broadcasting -------------------------------------------------

/// c = a + b. dc/da = 1, dc/db = 1.
Tensor add(const Tensor& a, const Tensor& b);
/// c = a - b. dc/da = 1, dc/db = -1.
Tensor sub(const Tensor& a, const Tensor& b);
/// c = a * b. dc/da = b, dc/db = a.
Tensor mul(const Tensor& a, const Tensor& b);
/// c = a / b. dc/da = 1/b, dc/db = -a/b^2.
Tensor div(const Tensor& a, const Tensor& b);

// --- tensor (op) number and number (op) tensor ----------------------------------------------

/// c = a + s. dc/da = 1.
Tensor add(const Tensor& a, real s);
/// c = s + b. dc/db = 1.
Tensor add(real s, const Tensor& b);
/// c = a - s. dc/da = 1.
Tensor sub(const Tensor& a, real s);
/// c = s - b. dc/db = -1.
Tensor sub(real s, const Tensor& b);
/// c = a * s. dc/da = s.
Tensor mul(const Tensor& a, real s);
/// c = s * b. dc/db = s.
Tensor mul(real s, const Tensor& b);
/// c = a / s. dc/da = 1/s.
Tensor div(const Tensor& a, real s);
/// c = s / b. dc/db = -s/b^2.
Tensor div(real s, const Tensor& b);

// --- unary ------------------------------------------------------------------------------------

/// y = -x. dy/dx = -1.
Tensor neg(const Tensor& x);
/// y = e^x. dy/dx = e^x = y.
Tensor exp(const Tensor& x);
/// y = ln x. dy/dx = 1/x.
Tensor log(const Tensor& x);
/// y = sqrt(x). dy/dx = 1 / (2 sqrt(x)) = 1 / (2y).
Tensor sqrt(const Tensor& x);
/// y = x^p. dy/dx = p x^(p-1) (zero when p = 0, as PyTorch).
Tensor pow(const Tensor& x, real p);
/// c = a^b with broadcasting. dc/da = b a^(b-1), dc/db = a^b ln a (zero where a = 0, b >= 0).
Tensor pow(const Tensor& a, const Tensor& b);

// --- operators: the same ops, spelled as arithmetic ----------------------------------------

inline Tensor operator+(const Tensor& a, const Tensor& b) {
    return add(a, b);
}
inline Tensor operator-(const Tensor& a, const Tensor& b) {
    return sub(a, b);
}
inline Tensor operator*(const Tensor& a, const Tensor& b) {
    return mul(a, b);
}
inline Tensor operator/(const Tensor& a, const Tensor& b) {
    return div(a, b);
}
inline Tensor operator+(const Tensor& a, real s) {
    return add(a, s);
}
inline Tensor operator-(const Tensor& a, real s) {
    return sub(a, s);
}
inline Tensor operator*(const Tensor& a, real s) {
    return mul(a, s);
}
inline Tensor operator/(const Tensor& a, real s) {
    return div(a, s);
}
inline Tensor operator+(real s, const Tensor& b) {
    return add(s, b);
}
inline Tensor operator-(real s, const Tensor& b) {
    return sub(s, b);
}
inline Tensor operator*(real s, const Tensor& b) {
    return mul(s, b);
}
inline Tensor operator/(real s, const Tensor& b) {
    return div(s, b);
}
inline Tensor operator-(const Tensor& x) {
    return neg(x);
}

}  // namespace tg
