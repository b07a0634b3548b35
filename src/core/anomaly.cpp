#include "tapegrad/anomaly.hpp"

#include <cmath>
#include <string>

#include "tapegrad/tape.hpp"

namespace tg {

namespace detail {
thread_local int anomaly_guards = 0;
}  // namespace detail

DetectAnomaly::DetectAnomaly() {
    ++detail::anomaly_guards;
}

DetectAnomaly::~DetectAnomaly() {
    --detail::anomaly_guards;
}

namespace detail {

namespace {

/// NaN and Inf counts of an array, and the flat index of the first non-finite value.
struct NonFinite {
    std::size_t nan = 0, inf = 0, first = 0;
    real first_value = 0;
    std::size_t total() const { return nan + inf; }
};

NonFinite count_non_finite(const Array& a) {
    NonFinite r;
    const real* p = a.data();
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (std::isfinite(p[i])) continue;
        if (r.total() == 0) {
            r.first = i;
            r.first_value = p[i];
        }
        (std::isnan(p[i]) ? r.nan : r.inf) += 1;
    }
    return r;
}

/// "[1, 0, 2]": the multi-index of flat (row-major) index i in `shape`.
template <class S>
std::string index_str(const S& shape, std::size_t i) {
    std::vector<std::size_t> idx(shape.size());
    for (std::size_t k = shape.size(); k-- > 0;) {
        idx[k] = shape[k] == 0 ? 0 : i % shape[k];
        i = shape[k] == 0 ? 0 : i / shape[k];
    }
    return shape_str(idx);
}

/// As Tape::print labels it: the tensor's name, "%i" for the output of entry i, else "leaf".
std::string label(const std::vector<TapeEntry>& entries, const Tensor& t) {
    if (!t.name().empty()) return "'" + t.name() + "'";
    for (std::size_t i = 0; i < entries.size(); ++i) {
        if (entries[i].output.is(t)) return "%" + std::to_string(i);
    }
    return "a leaf";
}

/// "%5 = batch_norm(%4 [64, 16, 10, 10], '1.weight' [16], '1.bias' [16])"
std::string describe(const std::vector<TapeEntry>& entries, std::size_t index) {
    const TapeEntry& e = entries[index];
    std::string s = "%" + std::to_string(index) + " = " + e.op + "(";
    for (std::size_t k = 0; k < e.inputs.size(); ++k) {
        if (k > 0) s += ", ";
        s += label(entries, e.inputs[k]) + " " + shape_str(e.inputs[k].value().shape());
    }
    return s + ")";
}

std::string what_was_found(const NonFinite& r, const Array& a) {
    std::string value = std::isnan(r.first_value) ? "nan" : r.first_value > 0 ? "inf" : "-inf";
    return std::to_string(r.nan) + " NaN and " + std::to_string(r.inf) +
           " Inf values (the first, " + value + ", at " + index_str(a.shape(), r.first) + ")";
}

}  // namespace

void check_forward(const std::vector<TapeEntry>& entries, std::size_t index) {
    const TapeEntry& e = entries[index];
    const Array& y = e.output.value();
    const NonFinite r = count_non_finite(y);
    if (r.total() == 0) return;
    throw AnomalyError("DetectAnomaly: in the forward pass, tape entry " +
                           describe(entries, index) + " produced an output " +
                           shape_str(y.shape()) + " with " + what_was_found(r, y),
                       index, e.op, false);
}

std::vector<std::size_t> count_input_grad_anomalies(const TapeEntry& entry) {
    std::vector<std::size_t> counts;
    counts.reserve(entry.inputs.size());
    for (const Tensor& in : entry.inputs)
        counts.push_back(in.has_grad() ? count_non_finite(in.grad()).total() : 0);
    return counts;
}

void check_backward(const std::vector<TapeEntry>& entries, std::size_t index,
                    const std::vector<std::size_t>& before) {
    const TapeEntry& entry = entries[index];
    for (std::size_t k = 0; k < entry.inputs.size(); ++k) {
        const Tensor& in = entry.inputs[k];
        if (!in.has_grad()) continue;
        const NonFinite r = count_non_finite(in.grad());
        if (r.total() <= (k < before.size() ? before[k] : 0)) continue;
        throw AnomalyError("DetectAnomaly: in the backward pass, tape entry " +
                               describe(entries, index) + " computed a gradient for its input " +
                               std::to_string(k) + " (" + label(entries, in) + " " +
                               shape_str(in.value().shape()) + ") with " +
                               what_was_found(r, in.grad()),
                           index, entry.op, true);
    }
}

}  // namespace detail

}  // namespace tg
