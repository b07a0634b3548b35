#include "tapegrad/ops/linalg.hpp"

#include <stdexcept>
#include <string>
#include <utility>

#include "tapegrad/ops/catalog.hpp"
#include "tapegrad/ops/gemm.hpp"
#include "tapegrad/tape.hpp"

namespace tg {

namespace {

/// matmul's backward (C = A B): from G = dL/dC, dA = G B^T and dB = A^T G. A named struct
/// rather than a lambda, so that gdb's `bt` names it.
struct MatmulBackward final : BackwardClosure {
    MatmulBackward(const Tensor& lhs, const Tensor& rhs, std::size_t rows, std::size_t inner,
                   std::size_t cols, bool any_empty)
        : a(lhs), b(rhs), m(rows), k(inner), n(cols), empty(any_empty) {}
    Tensor a, b;  // A [m, k], B [k, n]
    std::size_t m, k, n;
    bool empty;  // an axis of size 0: the products are 0, BLAS is not called
    void operator()(const Array& g) override {
        if (a.requires_grad()) {
            // dA [m, k] = G [m, n] B^T (B stored [k, n])
            Array da = new_array({m, k});
            if (empty) {
                da.fill(real(0));
            } else {
                detail::gemm(false, true, m, k, n, real(1), g.data(), n, b.value().data(), n,
                             real(0), da.data(), k);
            }
            a.accumulate_grad(std::move(da));
        }
        if (b.requires_grad()) {
            // dB [k, n] = A^T (A stored [m, k]) G [m, n]
            Array db = new_array({k, n});
            if (empty) {
                db.fill(real(0));
            } else {
                detail::gemm(true, false, k, n, m, real(1), a.value().data(), k, g.data(), n,
                             real(0), db.data(), n);
            }
            b.accumulate_grad(std::move(db));
        }
    }
};

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
    const Shape as = a.shape(), bs = b.shape();
    if (as.size() != 2 || bs.size() != 2) {
        throw std::invalid_argument("matmul: expected 2-D tensors [m, k] x [k, n], got " +
                                    shape_str(as) + " x " + shape_str(bs));
    }
    if (as[1] != bs[0]) {
        throw std::invalid_argument("matmul: " + shape_str(as) + " x " + shape_str(bs) +
                                    ": inner dimensions " + std::to_string(as[1]) + " and " +
                                    std::to_string(bs[0]) + " differ");
    }
    const std::size_t m = as[0], k = as[1], n = bs[1];
    // With an empty axis BLAS would reject the leading dimensions; the products are 0 anyway.
    const bool empty = m == 0 || k == 0 || n == 0;

    // Forward: C [m, n] = A [m, k] B [k, n]
    Array c = new_array({m, n});
    if (empty) {
        c.fill(real(0));
    } else {
        detail::gemm(false, false, m, n, k, real(1), a.value().data(), k, b.value().data(), n,
                     real(0), c.data(), n);
    }
    Tensor out(std::move(c));

    if (Tape* tape = recording_tape(a, b)) {
        tape->record("matmul", {a, b}, out, MatmulBackward(a, b, m, k, n, empty));
    }
    return out;
}

// ---- catalog -------------------------------------------------------------------------------

// This file's ops in tg::op_catalog() (tapegrad/ops/catalog.hpp): an example puts its op in every
// test that walks the catalog.
std::vector<OpExample> catalog::linalg_examples() {
    return {
        op("matmul", "MatmulBackward", false, {rows, {3, 4}}, {rows0, {3, 4}}, {0, 4},
           [](const In& v) { return matmul(v[0], v[1]); }),
    };
}

}  // namespace tg
