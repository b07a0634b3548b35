// Our own histogram, not a library's: it must reproduce numpy.histogram bin for bin (edges, the
// closed last bin, float rounding at the edges) so the figures match the chapter's matplotlib.
#include "tapegrad/viz/histogram.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>

namespace tg::viz {

namespace {

std::string num(double x) {
    std::ostringstream s;
    s << x;
    return s.str();
}

// An Array's elements as doubles (tg::real may be float).
std::vector<double> to_doubles(const Array& a) {
    return std::vector<double>(a.data(), a.data() + a.size());
}

}  // namespace

double Histogram::max_density() const {
    return density.empty() ? 0.0 : *std::max_element(density.begin(), density.end());
}

Histogram histogram(std::span<const double> values, std::size_t bins, double lo, double hi) {
    if (bins == 0) throw std::invalid_argument("histogram: bins must be positive, got 0");
    if (!std::isfinite(lo) || !std::isfinite(hi)) {
        throw std::invalid_argument("histogram: range [" + num(lo) + ", " + num(hi) +
                                    "] is not finite");
    }
    if (lo > hi) {
        throw std::invalid_argument("histogram: range [" + num(lo) + ", " + num(hi) +
                                    "] has lo > hi; expected lo <= hi");
    }
    if (lo == hi) {  // numpy widens an empty range by half a unit on each side
        lo -= 0.5;
        hi += 0.5;
    }

    Histogram h;
    // Edges as numpy.linspace(lo, hi, bins + 1) computes them: lo + i * step, the last one
    // exactly hi.
    const double step = (hi - lo) / static_cast<double>(bins);
    h.edges.resize(bins + 1);
    for (std::size_t i = 0; i < bins; ++i)
        h.edges[i] = static_cast<double>(i) * step + lo;
    h.edges[bins] = hi;
    h.counts.assign(bins, 0);

    // Bin index as numpy computes it: i = floor((x - lo) / (hi - lo) * bins), then moved by
    // one where rounding put x on the wrong side of an edge; x == hi goes in the last bin.
    const double span = hi - lo;
    const auto last = static_cast<std::ptrdiff_t>(bins) - 1;
    for (const double x : values) {
        if (!(x >= lo && x <= hi)) continue;  // outside the range, or NaN
        auto i = static_cast<std::ptrdiff_t>((x - lo) / span * static_cast<double>(bins));
        if (i > last) i = last;
        if (x < h.edges[i]) --i;
        if (i != last && x >= h.edges[i + 1]) ++i;
        ++h.counts[i];
        ++h.total;
    }

    // density_i = count_i / width_i / total (numpy's order of operations, for equal bits).
    h.density.assign(bins, 0.0);
    if (h.total > 0) {
        const auto total = static_cast<double>(h.total);
        for (std::size_t i = 0; i < bins; ++i) {
            h.density[i] = static_cast<double>(h.counts[i]) / h.width(i) / total;
        }
    }
    return h;
}

Histogram histogram(std::span<const double> values, std::size_t bins) {
    if (values.empty()) return histogram(values, bins, 0.0, 1.0);
    const auto [mn, mx] = std::minmax_element(values.begin(), values.end());
    double lo = *mn, hi = *mx;
    bool finite = true;
    for (const double x : values)
        finite = finite && std::isfinite(x);
    if (!finite) {
        throw std::invalid_argument(
            "histogram: the values contain NaN or infinity, so the "
            "automatic range is not finite; pass a range (lo, hi)");
    }
    return histogram(values, bins, lo, hi);
}

Histogram histogram(const Array& values, std::size_t bins, double lo, double hi) {
    const auto v = to_doubles(values);
    return histogram(std::span<const double>(v), bins, lo, hi);
}

Histogram histogram(const Array& values, std::size_t bins) {
    const auto v = to_doubles(values);
    return histogram(std::span<const double>(v), bins);
}

double mean(std::span<const double> values) {
    if (values.empty()) throw std::invalid_argument("mean: no values");
    double s = 0.0;
    for (const double x : values)
        s += x;
    return s / static_cast<double>(values.size());
}

double variance(std::span<const double> values, std::size_t ddof) {
    if (values.size() <= ddof) {
        throw std::invalid_argument("variance: " + std::to_string(values.size()) +
                                    " values with ddof = " + std::to_string(ddof) +
                                    "; expected more than ddof values");
    }
    // Two passes: first the mean, then the squared deviations (no catastrophic cancellation).
    const double m = mean(values);
    double s = 0.0;
    for (const double x : values)
        s += (x - m) * (x - m);
    return s / static_cast<double>(values.size() - ddof);
}

double mean(const Array& values) {
    const auto v = to_doubles(values);
    return mean(std::span<const double>(v));
}

double variance(const Array& values, std::size_t ddof) {
    const auto v = to_doubles(values);
    return variance(std::span<const double>(v), ddof);
}

}  // namespace tg::viz
