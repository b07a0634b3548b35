// tapegrad/viz/terminal.hpp — histograms drawn with Unicode block characters, so a program
// shows a distribution in the terminal without a figure file.
#pragma once

#include <cstddef>
#include <iosfwd>
#include <string>
#include <string_view>

#include "tapegrad/viz/histogram.hpp"

namespace tg::viz {

/// One line per bin: the bin, a horizontal bar of width proportional to its density
/// (`bar_width` characters for the tallest, eighth blocks ▏▎▍▌▋▊▉█ for the remainder), the
/// density and the count:
///     [ -1.00,  -0.50)  ██████▍                           0.1250    16
void print_histogram(std::ostream& out, const Histogram& h, std::size_t bar_width = 40);

/// One character per bin, its height ▁▂▃▄▅▆▇█ proportional to the bin's density (the tallest
/// bin is █, an empty bin a space): "  ▁▂▄▆█▆▄▂▁ ".
std::string sparkline(const Histogram& h);

/// One line: the label, the range and the sparkline, and the peak density:
///     after BN (B=8)    -2.47 ▁▂▃▅▇█▇▅▃▂▁ 2.45   peak density 0.442
void print_sparkline(std::ostream& out, const Histogram& h, std::string_view label = {});

}  // namespace tg::viz
