// tapegrad/viz/viz.hpp — the whole viz layer: histograms, CSV, gnuplot figures, terminal plots.
#pragma once

#include "tapegrad/viz/csv.hpp"
#include "tapegrad/viz/figure.hpp"
#include "tapegrad/viz/histogram.hpp"
#include "tapegrad/viz/terminal.hpp"
