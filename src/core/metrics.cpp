#include "tapegrad/metrics.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace tg {

namespace {

void check_logits(const char* op, const Array& x) {
    if (x.dimension() != 2 || x.shape()[1] == 0) {
        throw std::invalid_argument(std::string(op) + ": expected logits [N, C] with C >= 1, got " +
                                    shape_str(x.shape()));
    }
}

// The argmax of one row of C values: the first NaN if there is one (torch.argmax treats NaN
// as the largest value), else the first of the largest values.
std::int64_t row_argmax(const real* row, std::size_t C) {
    std::size_t best = 0;
    for (std::size_t c = 0; c < C; ++c) {
        if (std::isnan(row[c])) return static_cast<std::int64_t>(c);
        if (row[c] > row[best]) best = c;  // strictly larger: ties keep the first index
    }
    return static_cast<std::int64_t>(best);
}

}  // namespace

Labels argmax(const Array& x) {
    check_logits("argmax", x);
    const std::size_t N = x.shape()[0], C = x.shape()[1];
    Labels out(N);
    for (std::size_t n = 0; n < N; ++n)
        out[n] = row_argmax(x.data() + n * C, C);
    return out;
}

Labels argmax(const Tensor& x) {
    return argmax(x.value());
}

std::size_t num_correct(const Array& logits, const Labels& labels) {
    check_logits("num_correct", logits);
    const std::size_t N = logits.shape()[0], C = logits.shape()[1];
    if (labels.size() != N) {
        throw std::invalid_argument("num_correct: logits " + shape_str(logits.shape()) + " but " +
                                    std::to_string(labels.size()) + " labels; expected " +
                                    std::to_string(N));
    }
    std::size_t right = 0;
    for (std::size_t n = 0; n < N; ++n)
        right += row_argmax(logits.data() + n * C, C) == labels[n];
    return right;
}

std::size_t num_correct(const Tensor& logits, const Labels& labels) {
    return num_correct(logits.value(), labels);
}

double accuracy(const Array& logits, const Labels& labels) {
    const std::size_t right = num_correct(logits, labels);
    return labels.empty() ? 0.0 : static_cast<double>(right) / static_cast<double>(labels.size());
}

double accuracy(const Tensor& logits, const Labels& labels) {
    return accuracy(logits.value(), labels);
}

}  // namespace tg
