#include "tapegrad/viz/terminal.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ostream>

namespace tg::viz {

namespace {

// U+2581..U+2588 (▁ to █) in UTF-8: eight heights of a vertical bar.
const char* const kVertical[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
// U+258F..U+2589 (▏ to ▉): one to seven eighths of a horizontal cell.
const char* const kEighths[] = {"▏", "▎", "▍", "▌", "▋", "▊", "▉"};

std::string printf_str(const char* format, double x) {
    char buf[64];
    std::snprintf(buf, sizeof buf, format, x);
    return buf;
}

}  // namespace

void print_histogram(std::ostream& out, const Histogram& h, std::size_t bar_width) {
    const double peak = h.max_density();
    out << "histogram: " << h.total << " values in " << h.bins() << " bins over ["
        << printf_str("%.4g", h.lo()) << ", " << printf_str("%.4g", h.hi()) << "]\n";
    for (std::size_t i = 0; i < h.bins(); ++i) {
        // The bar is density / peak of bar_width cells, in eighths of a cell.
        const auto eighths = static_cast<std::size_t>(
            peak > 0 ? std::lround(h.density[i] / peak * static_cast<double>(bar_width * 8)) : 0);
        std::string bar;
        for (std::size_t k = 0; k < eighths / 8; ++k)
            bar += "█";
        std::size_t cells = eighths / 8;
        if (eighths % 8 != 0) {
            bar += kEighths[eighths % 8 - 1];
            ++cells;
        }
        bar.append(bar_width - cells, ' ');
        out << '[' << printf_str("%8.3g", h.edges[i]) << ", " << printf_str("%8.3g", h.edges[i + 1])
            << (i + 1 == h.bins() ? "]  " : ")  ") << bar << "  "
            << printf_str("%.4f", h.density[i]) << "  " << h.counts[i] << '\n';
    }
}

std::string sparkline(const Histogram& h) {
    const double peak = h.max_density();
    std::string s;
    for (std::size_t i = 0; i < h.bins(); ++i) {
        if (h.counts[i] == 0 || peak <= 0) {
            s += ' ';
            continue;
        }
        // Level 1..8: the smallest non-empty bin still shows as ▁.
        const auto level = static_cast<int>(std::ceil(h.density[i] / peak * 8.0));
        s += kVertical[std::clamp(level, 1, 8) - 1];
    }
    return s;
}

void print_sparkline(std::ostream& out, const Histogram& h, std::string_view label) {
    if (!label.empty()) out << label << "  ";
    out << printf_str("%.3g", h.lo()) << ' ' << sparkline(h) << ' ' << printf_str("%.3g", h.hi())
        << "   peak density " << printf_str("%.3g", h.max_density()) << '\n';
}

}  // namespace tg::viz
