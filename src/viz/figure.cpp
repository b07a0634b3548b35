#include "tapegrad/viz/figure.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "tapegrad/atomic_file.hpp"
#include "tapegrad/viz/csv.hpp"

extern char** environ;

namespace tg::viz {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Panel

Panel& Panel::set_title(std::string t) {
    title = std::move(t);
    return *this;
}
Panel& Panel::set_xlabel(std::string l) {
    xlabel = std::move(l);
    return *this;
}
Panel& Panel::set_ylabel(std::string l) {
    ylabel = std::move(l);
    return *this;
}
Panel& Panel::set_xrange(double lo, double hi) {
    xrange = Range{lo, hi};
    return *this;
}
Panel& Panel::set_yrange(double lo, double hi) {
    yrange = Range{lo, hi};
    return *this;
}

Panel& Panel::bars(const Histogram& h, std::string colour, std::string label,
                   Series::BarHeight height) {
    Series s;
    s.kind = Series::Kind::bars;
    s.histogram = h;
    s.colour = std::move(colour);
    s.label = std::move(label);
    s.height = height;
    series.push_back(std::move(s));
    return *this;
}

Panel& Panel::line(std::vector<double> x, std::vector<double> y, std::string label,
                   std::string colour, bool dashed) {
    Series s;
    s.kind = Series::Kind::line;
    s.x = std::move(x);
    s.y = std::move(y);
    s.label = std::move(label);
    s.colour = std::move(colour);
    s.dashed = dashed;
    series.push_back(std::move(s));
    return *this;
}

Panel& Panel::markers() {
    if (series.empty()) throw std::logic_error("Panel::markers: no series to mark yet");
    series.back().markers = true;
    return *this;
}

Panel& Panel::curve(std::vector<double> y, std::string label, std::string colour, bool dashed) {
    std::vector<double> x(y.size());
    for (std::size_t i = 0; i < x.size(); ++i)
        x[i] = static_cast<double>(i + 1);
    return line(std::move(x), std::move(y), std::move(label), std::move(colour), dashed);
}

// ---------------------------------------------------------------------------------------------
// Axis ranges and ticks

double nice_tick_step(double lo, double hi, std::size_t max_intervals) {
    const double span = hi - lo;
    if (!(span > 0) || !std::isfinite(span) || max_intervals == 0) return 1.0;
    // The raw step, then the first of 1, 2, 2.5, 5, 10 (times its power of ten) not below it.
    const double raw = span / static_cast<double>(max_intervals);
    const double mag = std::pow(10.0, std::floor(std::log10(raw)));
    for (const double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
        if (m * mag >= raw * (1 - 1e-9)) return m * mag;
    }
    return 10.0 * mag;
}

namespace {

// Tableau's ten colours, matplotlib's default cycle: the colour of the k-th series without one.
const char* const kCycle[] = {"#1F77B4", "#FF7F0E", "#2CA02C", "#D62728", "#9467BD",
                              "#8C564B", "#E377C2", "#7F7F7F", "#BCBD22", "#17BECF"};

// A gnuplot double-quoted string literal.
std::string quote(const std::string& s) {
    std::string q = "\"";
    for (const char c : s) {
        if (c == '"' || c == '\\') q += '\\';
        if (c == '\n') {
            q += "\\n";
            continue;
        }
        q += c;
    }
    return q + "\"";
}

// A number for the script: 6 significant digits are plenty for ranges, ticks and layout.
std::string fmt(double x) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", x == 0.0 ? 0.0 : x);  // no "-0"
    return buf;
}

// Decimals needed to print every multiple of `step` exactly: 0.025 -> 3, 0.5 -> 1, 5 -> 0.
int decimals(double step) {
    for (int d = 0; d < 12; ++d) {
        const double scaled = step * std::pow(10.0, d);
        if (std::abs(scaled - std::round(scaled)) < 1e-6 * scaled) return d;
    }
    return 12;
}

// The printf format of an axis's tick labels (gnuplot `set format`).
std::string tick_format(double step, double lo, double hi) {
    const double big = std::max(std::abs(lo), std::abs(hi));
    if (big >= 1e6 || step < 1e-5) return "%g";
    return "%." + std::to_string(decimals(step)) + "f";
}

// The tick labels an axis will show, to size the margins that hold them.
std::vector<std::string> tick_labels(const Range& r, double step, const std::string& format) {
    std::vector<std::string> labels;
    const double first = std::ceil(r.lo / step - 1e-9) * step;
    for (double t = first; t <= r.hi + 1e-9 * step && labels.size() < 100; t += step) {
        char buf[64];
        std::snprintf(buf, sizeof buf, format.c_str(), std::abs(t) < 1e-12 * step ? 0.0 : t);
        labels.emplace_back(buf);
    }
    return labels;
}

// The range of the data of a panel along x or y: bars span their bins (and 0 in y); lines
// their points (non-finite values, e.g. NaN for missing, are skipped).
std::optional<Range> data_range(const Panel& p, bool along_x) {
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    auto take = [&](double v) {
        if (!std::isfinite(v)) return;
        lo = std::min(lo, v);
        hi = std::max(hi, v);
    };
    for (const Series& s : p.series) {
        if (s.kind == Series::Kind::bars) {
            const Histogram& h = s.histogram;
            if (along_x) {
                take(h.lo());
                take(h.hi());
            } else {
                take(0.0);
                for (std::size_t i = 0; i < h.bins(); ++i) {
                    take(s.height == Series::BarHeight::density ? h.density[i]
                                                                : static_cast<double>(h.counts[i]));
                }
            }
        } else {
            for (const double v : along_x ? s.x : s.y)
                take(v);
        }
    }
    if (lo > hi) return std::nullopt;
    return Range{lo, hi};
}

bool has_bars(const Panel& p) {
    return std::any_of(p.series.begin(), p.series.end(),
                       [](const Series& s) { return s.kind == Series::Kind::bars; });
}

// One axis as it will be drawn: its range, tick step and tick format.
struct Axis {
    Range range;
    double step = 1.0;
    std::string format = "%g";
    std::vector<std::string> labels;
};

// With p.legend_room: the share of the plot's height the legend takes (its rows at gnuplot's
// spacing 1.1, plus the box, with room to spare: plot_h is the grid's estimate, before the
// titles and labels take their part), for a plot `plot_h` pixels high and a font `em` high;
// 0 when the legend is not at the top or bottom, or the axis is given or logarithmic.
double legend_share(const Panel& p, double plot_h, double em) {
    if (!p.legend_room || p.yrange || p.logy) return 0.0;
    if (p.legend.rfind("top", 0) != 0 && p.legend.rfind("bottom", 0) != 0) return 0.0;
    const auto rows = std::count_if(p.series.begin(), p.series.end(),
                                    [](const Series& s) { return !s.label.empty(); });
    const double key_h = (1.3 * static_cast<double>(rows) + 1.5) * em;
    return std::min(0.6, key_h / plot_h);
}

// The drawn axis: the given range, else the data's with matplotlib's 5% margins (a bar axis
// starting at 0 stays at 0); a degenerate range is widened by 0.5 each side. A y axis then
// gives `legend` of its height to the legend, on the legend's side (legend_share).
Axis make_axis(const Panel& p, bool along_x, std::size_t max_intervals, double legend = 0.0) {
    Axis a;
    const auto& given = along_x ? p.xrange : p.yrange;
    if (given) {
        a.range = *given;
    } else {
        const auto d = data_range(p, along_x);
        Range r = d ? *d : Range{0.0, 1.0};
        if (r.lo == r.hi) {
            r.lo -= 0.5;
            r.hi += 0.5;
        }
        const double margin = 0.05 * (r.hi - r.lo);
        const bool sticky_zero = !along_x && has_bars(p) && r.lo == 0.0;
        a.range = Range{sticky_zero ? 0.0 : r.lo - margin, r.hi + margin};
        if (!along_x && legend > 0.0) {
            // The data keeps 1 - legend of the height; the rest goes to the legend's side.
            const double extra = legend / (1.0 - legend) * (a.range.hi - a.range.lo);
            if (p.legend.rfind("top", 0) == 0) {
                a.range.hi += extra;
            } else {
                a.range.lo -= extra;
            }
        }
    }
    a.step = nice_tick_step(a.range.lo, a.range.hi, max_intervals);
    a.format = tick_format(a.step, a.range.lo, a.range.hi);
    a.labels = tick_labels(a.range, a.step, a.format);
    return a;
}

std::size_t widest(const std::vector<std::string>& labels) {
    std::size_t w = 0;
    for (const auto& l : labels)
        w = std::max(w, l.size());
    return w;
}

std::string data_file(const std::string& stem, std::size_t r, std::size_t c, std::size_t k) {
    return stem + "_r" + std::to_string(r) + "c" + std::to_string(c) + "_s" + std::to_string(k) +
           ".csv";
}

std::vector<CsvColumn> series_columns(const Series& s) {
    if (s.kind == Series::Kind::bars) return histogram_columns(s.histogram);
    return {{"x", s.x}, {"y", s.y}};
}

void check_series(const Series& s, std::size_t r, std::size_t c, std::size_t k) {
    const std::string where = "Figure: panel (" + std::to_string(r) + ", " + std::to_string(c) +
                              ") series " + std::to_string(k);
    if (s.kind == Series::Kind::bars) {
        if (s.histogram.bins() == 0) throw std::invalid_argument(where + ": histogram has no bins");
        return;
    }
    if (s.x.size() != s.y.size()) {
        throw std::invalid_argument(where + ": x has " + std::to_string(s.x.size()) +
                                    " values, y has " + std::to_string(s.y.size()) +
                                    "; expected equal lengths");
    }
    if (s.x.empty()) throw std::invalid_argument(where + ": line has no points");
}

// The commands of one panel: title, labels, axes, legend, and its plot command reading
// <stem>_r<r>c<c>_s<k>.csv.
void write_panel(std::ostream& g, const Panel& p, const Axis& x, const Axis& y,
                 const std::string& stem, std::size_t r, std::size_t c, double title_size,
                 double label_size) {
    if (p.title.empty()) {
        g << "unset title\n";
    } else {
        g << "set title " << quote(p.title) << " font " << quote("," + fmt(title_size))
          << " offset 0,-0.5\n";
    }
    const std::string label_font = " font " + quote("," + fmt(label_size));
    g << (p.xlabel.empty() ? "unset xlabel"
                           : "set xlabel " + quote(p.xlabel) + label_font + " offset 0,0.3")
      << "\n";
    g << (p.ylabel.empty() ? "unset ylabel" : "set ylabel " + quote(p.ylabel) + label_font) << "\n";
    const double x0 = std::ceil(x.range.lo / x.step - 1e-9) * x.step;
    g << "set xrange [" << fmt(x.range.lo) << ":" << fmt(x.range.hi) << "]\n"
      << "set xtics " << fmt(x0) << "," << fmt(x.step) << "\n"
      << "set format x " << quote(x.format) << "\n";
    if (p.logy) {
        g << "set logscale y\n";
        if (p.yrange) {
            g << "set yrange [" << fmt(y.range.lo) << ":" << fmt(y.range.hi) << "]\n";
        } else {
            g << "set yrange [*:*]\n";
        }
        g << "set ytics autofreq\nset format y \"%g\"\n";
    } else {
        const double y0 = std::ceil(y.range.lo / y.step - 1e-9) * y.step;
        g << "unset logscale y\n"
          << "set yrange [" << fmt(y.range.lo) << ":" << fmt(y.range.hi) << "]\n"
          << "set ytics " << fmt(y0) << "," << fmt(y.step) << "\n"
          << "set format y " << quote(y.format) << "\n";
    }
    const bool any_label = std::any_of(p.series.begin(), p.series.end(),
                                       [](const Series& s) { return !s.label.empty(); });
    if (p.legend.empty() || !any_label) {
        g << "unset key\n";
    } else {
        g << "set key " << p.legend
          << " reverse Left samplen 2 spacing 1.1 box lc rgb \"#CCCCCC\" opaque\n";
    }
    for (const auto& cmd : p.extra)
        g << cmd << "\n";

    std::size_t colour_index = 0;  // each panel restarts the cycle: run k, colour k
    g << "plot ";
    for (std::size_t k = 0; k < p.series.size(); ++k) {
        const Series& s = p.series[k];
        std::string colour = s.colour;
        if (colour.empty()) colour = kCycle[colour_index++ % std::size(kCycle)];
        if (k > 0) g << ", \\\n     ";
        g << "dir . " << quote(data_file(stem, r, c, k));
        if (s.kind == Series::Kind::bars) {
            const char* h = s.height == Series::BarHeight::density ? "density" : "count";
            // A border in the fill colour closes the hairline gaps between boxes.
            g << " using \"bin_center\":\"" << h << "\":\"bin_width\" with boxes"
              << " lc rgb " << quote(colour) << " fs solid 1.0 border lc rgb " << quote(colour);
        } else {
            g << " using \"x\":\"y\" with " << (s.markers ? "linespoints pt 7 ps 1.3" : "lines")
              << " lw " << fmt(s.line_width) << " lc rgb " << quote(colour)
              << (s.dashed ? " dt 2" : "");
        }
        g << (s.label.empty() ? " notitle" : " title " + quote(s.label));
    }
    g << "\n";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Figure

Figure::Figure(std::size_t rows, std::size_t cols, std::size_t width, std::size_t height)
    : rows_(rows), cols_(cols), width_(width), height_(height), panels_(rows * cols) {
    if (rows == 0 || cols == 0) {
        throw std::invalid_argument("Figure: a grid of " + std::to_string(rows) + " x " +
                                    std::to_string(cols) + " panels; expected at least 1 x 1");
    }
    if (width < 50 || height < 50) {
        throw std::invalid_argument("Figure: image " + std::to_string(width) + " x " +
                                    std::to_string(height) + " pixels; expected at least 50 x 50");
    }
}

Panel& Figure::panel(std::size_t row, std::size_t col) {
    return const_cast<Panel&>(std::as_const(*this).panel(row, col));
}

const Panel& Figure::panel(std::size_t row, std::size_t col) const {
    if (row >= rows_ || col >= cols_) {
        throw std::out_of_range("Figure::panel: (" + std::to_string(row) + ", " +
                                std::to_string(col) + ") is outside the " + std::to_string(rows_) +
                                " x " + std::to_string(cols_) + " grid");
    }
    return panels_[row * cols_ + col];
}

std::string Figure::script(const std::string& stem) const {
    const double W = static_cast<double>(width_), H = static_cast<double>(height_);
    // Sizes in pixels: pngcairo draws a font of size s points about 4/3 s pixels high (96 dpi).
    const double em = font_size * 4.0 / 3.0;
    const double title_size = font_size * 1.25;
    const double title_em = title_size * 4.0 / 3.0;
    const double digit = 0.64 * em;  // DejaVu Sans digits are 0.636 em wide

    // Ticks: about one y tick per 2 em of height and one x tick per 3.5 em of width at most
    // (matplotlib's rule), between 3 and 9 intervals. The plot size is estimated from the
    // grid before margins are known; close enough for counting ticks.
    const double plot_w = 0.85 * W / static_cast<double>(cols_);
    const double plot_h = 0.75 * H / static_cast<double>(rows_);
    const auto intervals = [](double len, double per) {
        return static_cast<std::size_t>(std::clamp(std::floor(len / per), 3.0, 9.0));
    };
    std::vector<Axis> xaxes, yaxes;
    for (const Panel& p : panels_) {
        xaxes.push_back(make_axis(p, true, intervals(plot_w, 3.5 * em)));
        yaxes.push_back(
            make_axis(p, false, intervals(plot_h, 2.0 * em), legend_share(p, plot_h, em)));
    }

    // Margins around the grid and spacing between panels (pixels), from what sits there:
    // the suptitle, panel titles, tick labels, axis labels.
    bool any_title = false, ylabel_first = false, ylabel_other = false, any_xlabel = false;
    std::size_t ytick_chars = 1, last_xtick_chars = 1;
    for (std::size_t r = 0; r < rows_; ++r) {
        for (std::size_t c = 0; c < cols_; ++c) {
            const Panel& p = panel(r, c);
            const std::size_t i = r * cols_ + c;
            any_title = any_title || !p.title.empty();
            any_xlabel = any_xlabel || !p.xlabel.empty();
            if (!p.ylabel.empty()) {
                if (c == 0) {
                    ylabel_first = true;
                } else {
                    ylabel_other = true;
                }
            }
            if (!p.logy) ytick_chars = std::max(ytick_chars, widest(yaxes[i].labels));
            if (p.logy) ytick_chars = std::max<std::size_t>(ytick_chars, 5);
            if (c + 1 == cols_ && !xaxes[i].labels.empty()) {
                last_xtick_chars = std::max(last_xtick_chars, xaxes[i].labels.back().size());
            }
        }
    }
    const double ytick_w = static_cast<double>(ytick_chars) * digit + 0.9 * em;
    const double ylabel_w = 1.7 * em;
    const double title_h = any_title ? 1.75 * title_em : 0.6 * em;
    const double xtick_h = 1.75 * em;
    const double xlabel_h = any_xlabel ? 1.5 * em : 0.0;
    const double top = (suptitle.empty() ? 0.0 : 2.2 * title_em) + title_h;
    const double bottom = xtick_h + xlabel_h + 1.2 * em;
    const double left = ytick_w + (ylabel_first ? ylabel_w : 0.0) + 0.5 * em;
    const double right = 0.5 * static_cast<double>(last_xtick_chars) * digit + 0.8 * em;
    const double space_x = ytick_w + (ylabel_other ? ylabel_w : 0.0) + 1.2 * em;
    const double space_y = xtick_h + xlabel_h + title_h + 0.9 * em;

    std::ostringstream g;
    const auto png_name = stem + ".png";
    g << "# " << stem << ".gp: written by tapegrad (tg::viz::Figure).\n"
      << "# Render: gnuplot " << stem << ".gp   (gnuplot >= 5.4 with pngcairo; Debian: "
      << "gnuplot-nox)\n"
      << "# Data: " << stem << "_r<row>c<col>_s<series>.csv next to this script (from 0).\n"
      << "# Output: " << png_name << " next to it, or: gnuplot -e \"outfile='x.png'\" " << stem
      << ".gp\n\n"
      << "# The script's directory (ARG0 is its path), so the data is found from anywhere.\n"
      << "dir = \"\"; s = ARG0\n"
      << "while (strstrt(s, \"/\") > 0) { i = strstrt(s, \"/\"); dir = dir . s[1:i]; "
         "s = s[i+1:] }\n"
      << "if (!exists(\"outfile\")) outfile = dir . " << quote(png_name) << "\n\n"
      << "set terminal pngcairo size " << width_ << "," << height_ << " noenhanced font "
      << quote(font + "," + fmt(font_size)) << " background rgb \"white\"\n"
      << "set output outfile\n"
      << "set encoding utf8\n"
      << "set minussign\n"
      << "set datafile separator comma\n"
      << "set datafile columnheaders\n"
      << "set border 15 lw 1 lc rgb \"black\"\n"
      << "set tics nomirror out scale 0.7\n"
      << "set xtics offset 0,0.25\n"
      << "set multiplot layout " << rows_ << "," << cols_;
    if (!suptitle.empty()) {
        g << " title " << quote(suptitle) << " font " << quote("," + fmt(font_size * 1.15));
    }
    g << " \\\n    margins " << fmt(std::round(left) / W) << "," << fmt(1.0 - std::round(right) / W)
      << "," << fmt(std::round(bottom) / H) << "," << fmt(1.0 - std::round(top) / H) << " spacing "
      << fmt(std::round(space_x) / W) << "," << fmt(std::round(space_y) / H) << "\n";

    for (std::size_t r = 0; r < rows_; ++r) {
        for (std::size_t c = 0; c < cols_; ++c) {
            const Panel& p = panel(r, c);
            const std::size_t i = r * cols_ + c;
            g << "\n# Panel (" << r << ", " << c << ")" << (p.title.empty() ? "" : ": ") << p.title
              << "\n";
            if (p.series.empty()) {
                g << "set multiplot next\n";
            } else {
                write_panel(g, p, xaxes[i], yaxes[i], stem, r, c, title_size, font_size * 1.1);
            }
        }
    }
    g << "\nunset multiplot\nunset output\n";
    return g.str();
}

std::optional<fs::path> find_executable(const std::string& program) {
    const auto executable = [](const fs::path& p) {
        struct stat st {};
        return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
    };
    if (program.empty()) return std::nullopt;
    if (program.find('/') != std::string::npos) {
        if (executable(program)) return fs::path(program);
        return std::nullopt;
    }
    const char* path = std::getenv("PATH");
    std::istringstream dirs(path ? path : "");
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
        const fs::path candidate = fs::path(dir.empty() ? "." : dir) / program;
        if (executable(candidate)) return candidate;
    }
    return std::nullopt;
}

namespace {

// Runs `argv` as a child process (no shell), its stdout and stderr captured. Returns the exit
// status (-1 if it could not start or did not exit normally) and sets `output`.
int run(const std::vector<std::string>& argv, std::string& output) {
    int fds[2];
    if (::pipe(fds) != 0) {
        output = std::string("pipe: ") + std::strerror(errno);
        return -1;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
    posix_spawn_file_actions_addclose(&actions, fds[1]);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);

    std::vector<char*> args;
    for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = 0;
    const int err = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    if (err != 0) {
        ::close(fds[0]);
        output = "cannot run " + argv[0] + ": " + std::strerror(err);
        return -1;
    }
    // Read until the child closes its end, then reap it (reading first: a full pipe would
    // otherwise block the child forever).
    char buf[4096];
    ssize_t n = 0;
    while ((n = ::read(fds[0], buf, sizeof buf)) != 0) {
        if (n < 0) {
            if (errno == EINTR) continue;
            break;
        }
        output.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

RenderResult Figure::save(const fs::path& png, const RenderOptions& options) const {
    if (png.filename().empty()) {
        throw std::invalid_argument("Figure::save: '" + png.string() + "' names no file");
    }
    for (std::size_t r = 0; r < rows_; ++r) {
        for (std::size_t c = 0; c < cols_; ++c) {
            const auto& series = panel(r, c).series;
            for (std::size_t k = 0; k < series.size(); ++k)
                check_series(series[k], r, c, k);
        }
    }

    RenderResult result;
    const std::string stem = png.stem().string();
    const fs::path dir = png.parent_path();
    result.png = png;
    result.script = dir / (stem + ".gp");
    for (std::size_t r = 0; r < rows_; ++r) {
        for (std::size_t c = 0; c < cols_; ++c) {
            const auto& series = panel(r, c).series;
            for (std::size_t k = 0; k < series.size(); ++k) {
                const fs::path csv = dir / data_file(stem, r, c, k);
                write_csv(csv, series_columns(series[k]));
                result.data.push_back(csv);
            }
        }
    }
    write_text_atomically(result.script, script(stem));

    const std::string by_hand = "gnuplot " + result.script.string();
    if (!options.render) {
        result.status = RenderResult::Status::not_rendered;
        result.message =
            "wrote " + result.script.string() + " and its data; render with: " + by_hand;
        return result;
    }
    const auto gnuplot = find_executable(options.gnuplot);
    if (!gnuplot) {
        result.status = RenderResult::Status::gnuplot_missing;
        result.message = "gnuplot ('" + options.gnuplot + "') not found, so " + png.string() +
                         " was not drawn; its data and script are written: install gnuplot-nox "
                         "and run: " +
                         by_hand;
        return result;
    }

    // gnuplot draws into a private directory (mkdtemp: an unpredictable name, mode 0700, so no
    // planted symlink can catch its output); the complete PNG is then written onto the target
    // by tg::write_file_atomically, like every file tapegrad writes.
    // (temp_stem: the PNG's name, shortened when the name with ".tmp-XXXXXX" would be too long)
    std::string dir_template =
        (png.parent_path() / (tg::temp_stem(png.filename().string()) + ".tmp-XXXXXX")).string();
    if (::mkdtemp(dir_template.data()) == nullptr) {
        result.status = RenderResult::Status::gnuplot_failed;
        result.message = "cannot create a temporary directory beside " + png.string() + ": " +
                         std::strerror(errno) +
                         "\nthe script and data are written; run: " + by_hand;
        return result;
    }
    const fs::path private_dir(dir_template);
    const fs::path tmp = private_dir / "figure.png";
    std::string out_var = "outfile='";
    for (const char ch : tmp.string())
        out_var += ch == '\'' ? std::string("''") : std::string(1, ch);
    out_var += "'";
    std::string output;
    const int code = run({gnuplot->string(), "-e", out_var, result.script.string()}, output);
    std::string bytes, why;
    if (code == 0) {
        std::ifstream in(tmp, std::ios::binary);
        bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    if (code == 0 && !bytes.empty()) {
        try {
            write_file_atomically(png.string(), bytes, "render");
        } catch (const std::runtime_error& e) {
            why = e.what();
        }
    }
    std::error_code ignored;
    fs::remove_all(private_dir, ignored);
    if (code != 0 || bytes.empty() || !why.empty()) {
        result.status = RenderResult::Status::gnuplot_failed;
        result.message = "gnuplot failed to draw " + png.string() + " (exit status " +
                         std::to_string(code) + (why.empty() ? std::string() : ", " + why) +
                         "): " + output + "\nthe script and data are written; run: " + by_hand;
        return result;
    }
    result.status = RenderResult::Status::rendered;
    // The hint on a line of its own: terminal output stays within 80 columns.
    result.message = "wrote " + png.string() + "\n  (restyle and re-render: " + by_hand + ")";
    return result;
}

}  // namespace tg::viz
