// tapegrad/viz/figure.hpp — figures as a grid of panels (histograms, line plots), rendered by
// gnuplot.
//
// Figure::save("out/fig.png") writes, next to the PNG, the data of every series as CSV
// (out/fig_r0c1_s0.csv: row 0, column 1, series 0) and a gnuplot script out/fig.gp that reads
// them, then runs `gnuplot out/fig.gp` to draw out/fig.png (pngcairo). A reader can restyle the
// script and re-render it by hand. Without gnuplot the CSV files and the script are still
// written and the result says how to render them.
//
//     tg::viz::Figure fig(2, 4);
//     fig.suptitle = "Batch Normalisation: distribution before/after, across batch sizes";
//     fig.panel(0, 0).set_title("Before BN (B=8)").set_ylabel("Density (before BN)")
//         .set_xrange(-5, 15).bars(tg::viz::histogram(x, 40), "#EE8176");
//     auto result = fig.save("out/batchnorm.png");
//     std::cout << result.message << '\n';
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "tapegrad/viz/histogram.hpp"

namespace tg::viz {

/// The colours of the chapter's figures: salmon red (before BN) and light blue (after BN).
inline constexpr const char* kRed = "#EE8176";
inline constexpr const char* kBlue = "#70B6E5";

/// An axis range [lo, hi].
struct Range {
    double lo = 0.0;
    double hi = 1.0;
};

/// One thing drawn in a panel: histogram bars or a line through points.
struct Series {
    enum class Kind { bars, line };
    /// What the height of a histogram bar shows.
    enum class BarHeight { density, count };

    Kind kind = Kind::line;
    std::string label;   // legend entry; empty = not in the legend
    std::string colour;  // "#RRGGBB" or a gnuplot colour name; empty = the next default colour
    // bars
    Histogram histogram;
    BarHeight height = BarHeight::density;
    // line
    std::vector<double> x, y;
    double line_width = 2.0;
    bool dashed = false;
    bool markers = false;  // a filled circle on every point: measured values, not a formula
};

/// One plot of the grid: a title, axis labels and ranges, and the series drawn in it.
/// Unset ranges fit the data with 5% margins (bars start at 0), like matplotlib.
struct Panel {
    std::string title, xlabel, ylabel;
    std::optional<Range> xrange, yrange;
    bool logy = false;                 // logarithmic y axis (gnuplot chooses the ticks)
    std::string legend = "top right";  // gnuplot `set key` position; empty = no legend
    /// With a legend at the "top ..." or "bottom ..." of the panel and no y range given: the
    /// y axis is stretched on that side so the legend's rows fit beside the data instead of
    /// over it (for panels whose curves fill the whole height).
    bool legend_room = false;
    std::vector<std::string> extra;  // raw gnuplot commands run just before this panel's plot
    std::vector<Series> series;

    Panel& set_title(std::string t);
    Panel& set_xlabel(std::string l);
    Panel& set_ylabel(std::string l);
    Panel& set_xrange(double lo, double hi);
    Panel& set_yrange(double lo, double hi);
    /// Adds histogram bars: one box per bin, edges[i] to edges[i+1], height density[i]
    /// (or counts[i]).
    Panel& bars(const Histogram& h, std::string colour = kRed, std::string label = {},
                Series::BarHeight height = Series::BarHeight::density);
    /// Adds a line through (x[i], y[i]).
    Panel& line(std::vector<double> x, std::vector<double> y, std::string label = {},
                std::string colour = {}, bool dashed = false);
    /// Marks every point of the last series added with a filled circle (measured values, so
    /// they stay visible under a theory line drawn through them).
    Panel& markers();
    /// Adds a curve through (i + 1, y[i]): a value per epoch or step, counted from 1.
    Panel& curve(std::vector<double> y, std::string label = {}, std::string colour = {},
                 bool dashed = false);
};

/// How Figure::save renders.
struct RenderOptions {
    /// The gnuplot program: a name looked up on PATH, or a path.
    std::string gnuplot = "gnuplot";
    /// false: write the CSV files and the script only.
    bool render = true;
};

/// What Figure::save did.
struct RenderResult {
    enum class Status { rendered, not_rendered, gnuplot_missing, gnuplot_failed };
    Status status = Status::not_rendered;
    std::filesystem::path png, script;        // the PNG (when rendered) and the gnuplot script
    std::vector<std::filesystem::path> data;  // the CSV files the script reads
    /// One line for the user: where the figure is, or why it is not and how to render it.
    std::string message;

    bool rendered() const { return status == Status::rendered; }
};

/// A rows x cols grid of panels with an overall title, drawn by gnuplot into a PNG.
class Figure {
  public:
    /// A grid of rows x cols panels in an image of width x height pixels.
    Figure(std::size_t rows, std::size_t cols, std::size_t width = 1680, std::size_t height = 720);

    std::string suptitle;              // title over the whole grid; empty = none
    std::string font = "DejaVu Sans";  // font family
    double font_size = 11.5;  // points: ticks; axis labels 1.1x, suptitle 1.15x, titles 1.25x

    std::size_t rows() const { return rows_; }
    std::size_t cols() const { return cols_; }
    std::size_t width() const { return width_; }
    std::size_t height() const { return height_; }

    /// The panel at (row, col), both from 0. Throws std::out_of_range outside the grid.
    Panel& panel(std::size_t row, std::size_t col);
    const Panel& panel(std::size_t row, std::size_t col) const;

    /// The gnuplot script that draws this figure from the CSV files save() writes next to it;
    /// `stem` is the PNG's file name without ".png" (data files are <stem>_r<row>c<col>_s<k>.csv).
    std::string script(const std::string& stem) const;

    /// Writes <stem>_r*c*_s*.csv and <stem>.gp next to `png` (creating its directory), then
    /// runs gnuplot on the script to draw `png` (through a temporary file renamed into place).
    /// Throws std::invalid_argument for an empty series or one with x and y of unequal length,
    /// std::runtime_error if a file cannot be written. A missing or failing gnuplot is not an
    /// exception: see the result's status and message.
    RenderResult save(const std::filesystem::path& png, const RenderOptions& options = {}) const;

  private:
    std::size_t rows_, cols_, width_, height_;
    std::vector<Panel> panels_;  // row-major
};

/// The full path of an executable: `program` itself if it contains '/', else the first
/// PATH entry holding an executable file of that name. nullopt if there is none.
std::optional<std::filesystem::path> find_executable(const std::string& program);

/// Axis ticks as matplotlib's default locator picks them: a step of 1, 2, 2.5 or 5 times a
/// power of ten, the smallest giving at most `max_intervals` intervals over [lo, hi].
double nice_tick_step(double lo, double hi, std::size_t max_intervals);

}  // namespace tg::viz
