// tapegrad/viz/histogram.hpp — equal-width histograms (numpy.histogram semantics) and the two
// statistics a histogram panel is usually annotated with (mean, variance).
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "tapegrad/config.hpp"

namespace tg::viz {

/// An equal-width histogram of some values over [lo, hi], as numpy.histogram returns it.
///
/// Bin i covers [edges[i], edges[i+1]); the last bin also holds values equal to hi. Values
/// outside [lo, hi] (and NaN) are not counted. density[i] = counts[i] / (total * width_i), so
/// sum_i density[i] * width_i = 1 (numpy / matplotlib `density=True`).
struct Histogram {
    std::vector<double> edges;        // bins + 1 edges: edges[0] = lo, edges[bins] = hi
    std::vector<std::size_t> counts;  // values in each bin
    std::vector<double> density;      // counts[i] / (total * (edges[i+1] - edges[i]))
    std::size_t total = 0;            // values inside [lo, hi] = sum of counts

    std::size_t bins() const { return counts.size(); }
    double lo() const { return edges.front(); }
    double hi() const { return edges.back(); }
    double width(std::size_t i) const { return edges[i + 1] - edges[i]; }
    double center(std::size_t i) const { return 0.5 * (edges[i] + edges[i + 1]); }
    /// max_i density[i] (0 for an empty histogram).
    double max_density() const;
};

/// `bins` equal-width bins over [lo, hi]: numpy.histogram(values, bins, range=(lo, hi),
/// density=True). lo == hi widens the range to [lo - 0.5, hi + 0.5], as numpy does. With no
/// value inside the range the densities are 0 (numpy gives NaN with a warning).
Histogram histogram(std::span<const double> values, std::size_t bins, double lo, double hi);
/// The same over the data's own range [min(values), max(values)] (numpy's automatic range;
/// [0, 1] for no values). Throws if a value is NaN or infinite (the range would be too).
Histogram histogram(std::span<const double> values, std::size_t bins = 10);
/// Every element of an array (any shape, flattened), over [lo, hi].
Histogram histogram(const Array& values, std::size_t bins, double lo, double hi);
/// Every element of an array (any shape, flattened), over its own range.
Histogram histogram(const Array& values, std::size_t bins = 10);

/// mean = (1/n) sum_i x_i. Throws for no values.
double mean(std::span<const double> values);
/// variance = 1/(n - ddof) sum_i (x_i - mean)^2; ddof = 0 is the biased variance BatchNorm
/// normalises with, ddof = 1 the unbiased one its running_var tracks. Throws if n <= ddof.
double variance(std::span<const double> values, std::size_t ddof = 0);
double mean(const Array& values);
double variance(const Array& values, std::size_t ddof = 0);

}  // namespace tg::viz
