// viz: gnuplot figures — the generated script, the files next to it, rendering, and the
// fallback without gnuplot.
#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <tuple>
#include <utility>

#include "tapegrad/viz/viz.hpp"
#include "testing.hpp"

namespace fs = std::filesystem;
namespace viz = tg::viz;

namespace {

const bool kHaveGnuplot = viz::find_executable("gnuplot").has_value();

using tgtest::contains;
using tgtest::read_file;
using tgtest::TempDir;

// The chapter's 2 x 4 grid: before/after BN histograms for four batch sizes.
viz::Figure chapter_figure() {
    viz::Figure fig(2, 4);
    fig.suptitle = "Batch Normalisation: distribution before/after, across batch sizes";
    const int batch[] = {8, 32, 128, 512};
    for (std::size_t c = 0; c < 4; ++c) {
        std::vector<double> before, after;
        for (int i = 0; i < batch[c] * 4; ++i) {
            const double u = ((i * 7919) % 1000) / 1000.0;  // in [0, 1)
            before.push_back(5 + 9 * (u - 0.5));
            after.push_back(3 * (u - 0.5));
        }
        const std::string b = " (B=" + std::to_string(batch[c]) + ")";
        fig.panel(0, c)
            .set_title("Before BN" + b)
            .set_xrange(-5, 15)
            .bars(viz::histogram(before, 20), viz::kRed);
        fig.panel(1, c)
            .set_title("After BN" + b)
            .set_xrange(-4, 4)
            .bars(viz::histogram(after, 20), viz::kBlue);
    }
    fig.panel(0, 0).set_ylabel("Density (before BN)");
    fig.panel(1, 0).set_ylabel("Density (after BN)");
    return fig;
}

std::size_t entries(const fs::path& dir) {
    return static_cast<std::size_t>(
        std::distance(fs::directory_iterator(dir), fs::directory_iterator{}));
}

}  // namespace

TEST_CASE("viz: nice tick steps are 1, 2, 2.5 or 5 times a power of ten") {
    // Density axes of the chapter's figure: max 0.149 in at most 7 intervals -> 0.025
    // (0.149 / 7 = 0.0213); 0.137 -> 0.02 (0.0196); 0.46 -> 0.1 (0.066).
    CHECK(viz::nice_tick_step(0, 0.149, 7) == doctest::Approx(0.025));
    CHECK(viz::nice_tick_step(0, 0.137, 7) == doctest::Approx(0.02));
    CHECK(viz::nice_tick_step(0, 0.46, 7) == doctest::Approx(0.1));
    // x axes: [-5, 15] and [-4, 4] in at most 6 intervals -> 5 and 2.
    CHECK(viz::nice_tick_step(-5, 15, 6) == doctest::Approx(5));
    CHECK(viz::nice_tick_step(-4, 4, 6) == doctest::Approx(2));
    CHECK(viz::nice_tick_step(0, 1000, 4) == doctest::Approx(250));
}

TEST_CASE("viz: the script of the chapter's histogram grid") {
    const std::string g = chapter_figure().script("bn");
    CHECK(contains(g, "set terminal pngcairo size 1680,720"));
    CHECK(contains(g,
                   "set multiplot layout 2,4 title \"Batch Normalisation: distribution "
                   "before/after, across batch sizes\""));
    CHECK(contains(g, "set title \"Before BN (B=8)\""));
    CHECK(contains(g, "set title \"After BN (B=512)\""));
    CHECK(contains(g, "set ylabel \"Density (before BN)\""));
    CHECK(contains(g, "set ylabel \"Density (after BN)\""));
    CHECK(contains(g, "set xrange [-5:15]\nset xtics -5,5\n"));
    CHECK(contains(g, "set xrange [-4:4]\nset xtics -4,2\n"));
    CHECK(contains(g, "set yrange [0:"));  // bars start at 0
    CHECK(contains(g,
                   "dir . \"bn_r0c0_s0.csv\" using \"bin_center\":\"density\":\"bin_width\" "
                   "with boxes lc rgb \"#EE8176\""));
    CHECK(contains(g, "dir . \"bn_r1c3_s0.csv\""));
    CHECK(contains(g, "lc rgb \"#70B6E5\""));
    CHECK(contains(g, "set style fill") == false);  // the fill is per plot, "fs solid 1.0"
    CHECK(contains(g, "fs solid 1.0"));
    CHECK(contains(g, "if (!exists(\"outfile\")) outfile = dir . \"bn.png\""));
    CHECK(contains(g, "unset multiplot"));
    // Eight panels, eight plot commands; the columns after the first have no y label.
    std::size_t plots = 0;
    for (auto p = g.find("\nplot "); p != std::string::npos; p = g.find("\nplot ", p + 1))
        ++plots;
    CHECK(plots == 8);
}

TEST_CASE("viz: the y axis of a histogram panel fits its tallest bar with a 5% margin") {
    // Densities 0.125, 0.25, 0.125, 0.5: y range [0, 0.525]; ticks every 0.1 ("%.1f").
    viz::Figure fig(1, 1, 600, 400);
    fig.panel(0, 0).bars(viz::histogram(std::vector<double>{3, 1, 0, 4, 3, 2, 1, 3}, 4));
    const std::string g = fig.script("one");
    CHECK(contains(g, "set yrange [0:0.525]"));
    CHECK(contains(g, "set format y \"%.1f\""));
    CHECK(contains(g, "set xrange [-0.2:4.2]"));  // 5% of the bins' span each side
}

TEST_CASE("viz: the script of line plots with legends") {
    viz::Figure fig(1, 2, 1400, 500);
    fig.panel(0, 0)
        .set_title("Loss")
        .set_xlabel("epoch")
        .curve({2.0, 1.0, 0.5}, "with BN")
        .curve({2.2, 1.6, 1.1}, "without BN");
    fig.panel(0, 1)
        .set_title("Accuracy")
        .line({1, 2, 3}, {0.5, 0.8, 0.9}, "with BN", "#000000", true);
    fig.panel(0, 1).legend = "bottom right";
    const std::string g = fig.script("curves");
    CHECK(contains(g, "set multiplot layout 1,2"));
    CHECK(contains(g, "using \"x\":\"y\" with lines lw 2 lc rgb \"#1F77B4\" title \"with BN\""));
    CHECK(contains(g, "lc rgb \"#FF7F0E\" title \"without BN\""));
    CHECK(contains(g, "lc rgb \"#000000\" dt 2 title \"with BN\""));
    CHECK(contains(g, "set key top right"));
    CHECK(contains(g, "set key bottom right"));
    CHECK(contains(g, "set xlabel \"epoch\""));
    // Curves over 1..3 with 5% margins: x in [0.9, 3.1].
    CHECK(contains(g, "set xrange [0.9:3.1]"));
}

TEST_CASE("viz: measured points get markers, a theory line none") {
    viz::Figure fig(1, 1, 600, 400);
    fig.panel(0, 0)
        .line({8, 32}, {1.1, 0.5}, "measured", "#1F77B4")
        .markers()
        .line({8, 32}, {1.06, 0.53}, "theory", "#555555", true);
    const std::string g = fig.script("noise");
    CHECK(contains(g, "with linespoints pt 7 ps 1.3 lw 2 lc rgb \"#1F77B4\" title \"measured\""));
    CHECK(contains(g, "with lines lw 2 lc rgb \"#555555\" dt 2 title \"theory\""));
    viz::Figure empty(1, 1, 600, 400);
    CHECK_THROWS_AS(empty.panel(0, 0).markers(), std::logic_error);
}

TEST_CASE("viz: titles are quoted for gnuplot") {
    viz::Figure fig(1, 1);
    fig.panel(0, 0).set_title("a \"quoted\" \\ title").curve({1, 2});
    CHECK(contains(fig.script("q"), "set title \"a \\\"quoted\\\" \\\\ title\""));
}

TEST_CASE("viz: bad figures are rejected with a message") {
    CHECK_THROWS_WITH_AS(viz::Figure(0, 2),
                         "Figure: a grid of 0 x 2 panels; expected at least 1 x 1",
                         std::invalid_argument);
    viz::Figure fig(1, 2);
    CHECK_THROWS_WITH_AS(fig.panel(1, 0), "Figure::panel: (1, 0) is outside the 1 x 2 grid",
                         std::out_of_range);
    fig.panel(0, 1).line({1, 2, 3}, {1, 2});
    TempDir dir("viz_bad");
    CHECK_THROWS_WITH_AS(fig.save(dir.path / "f.png"),
                         "Figure: panel (0, 1) series 0: x has 3 values, y has 2; expected equal "
                         "lengths",
                         std::invalid_argument);
}

TEST_CASE("viz: save writes the data and the script, and says how to render without gnuplot") {
    TempDir dir("viz_nognuplot");
    const auto fig = chapter_figure();
    const auto r = fig.save(dir.path / "bn.png", {.gnuplot = "/nonexistent/gnuplot"});
    CHECK(r.status == viz::RenderResult::Status::gnuplot_missing);
    CHECK_FALSE(r.rendered());
    CHECK(contains(r.message,
                   "install gnuplot-nox and run: gnuplot " + (dir.path / "bn.gp").string()));
    CHECK_FALSE(fs::exists(dir.path / "bn.png"));
    CHECK(r.script == dir.path / "bn.gp");
    CHECK(read_file(r.script) == fig.script("bn"));
    REQUIRE(r.data.size() == 8);
    CHECK(r.data[0] == dir.path / "bn_r0c0_s0.csv");
    CHECK(r.data[7] == dir.path / "bn_r1c3_s0.csv");
    // The CSV holds the histogram of that panel.
    const auto& h = fig.panel(0, 0).series[0].histogram;
    CHECK(read_file(r.data[0]) == viz::csv_text(viz::histogram_columns(h)));
    CHECK(entries(dir.path) == 9);  // 8 CSV + the script, no temporaries

    const auto unrendered = fig.save(dir.path / "bn.png", {.render = false});
    CHECK(unrendered.status == viz::RenderResult::Status::not_rendered);
    CHECK(contains(unrendered.message, "render with: gnuplot"));
}

TEST_CASE("viz: a failing gnuplot is reported, not thrown, and leaves no PNG") {
    TempDir dir("viz_fail");
    viz::Figure fig(1, 1);
    fig.panel(0, 0).curve({1, 2, 3});
    const auto r = fig.save(dir.path / "f.png", {.gnuplot = "/bin/false"});
    CHECK(r.status == viz::RenderResult::Status::gnuplot_failed);
    CHECK(contains(r.message, "exit status 1"));
    CHECK_FALSE(fs::exists(dir.path / "f.png"));
    CHECK(entries(dir.path) == 2);  // f.gp and f_r0c0_s0.csv
}

TEST_CASE("viz: find_executable looks on PATH") {
    CHECK(viz::find_executable("sh").has_value());
    CHECK_FALSE(viz::find_executable("no-such-program-tapegrad").has_value());
    CHECK_FALSE(viz::find_executable("/nonexistent/sh").has_value());
    CHECK_FALSE(viz::find_executable("/etc/passwd").has_value());  // not executable
}

TEST_CASE("viz: gnuplot renders the chapter's grid to a PNG" * doctest::skip(!kHaveGnuplot)) {
    TempDir dir("viz_render");
    const auto r = chapter_figure().save(dir.path / "bn.png");
    INFO(r.message);
    REQUIRE(r.rendered());
    const std::string png = read_file(dir.path / "bn.png");
    REQUIRE(png.size() > 1000);
    CHECK(png.substr(0, 8) == "\x89PNG\r\n\x1a\n");
    // Width and height from the IHDR chunk (big-endian at bytes 16 and 20).
    const auto be32 = [&](std::size_t at) {
        return (static_cast<unsigned>(static_cast<unsigned char>(png[at])) << 24) |
               (static_cast<unsigned>(static_cast<unsigned char>(png[at + 1])) << 16) |
               (static_cast<unsigned>(static_cast<unsigned char>(png[at + 2])) << 8) |
               static_cast<unsigned>(static_cast<unsigned char>(png[at + 3]));
    };
    CHECK(be32(16) == 1680);
    CHECK(be32(20) == 720);
    CHECK(entries(dir.path) == 10);  // PNG + script + 8 CSV: the temporary PNG was renamed
    CHECK(contains(r.message, "wrote " + (dir.path / "bn.png").string()));

    // A reader re-renders by hand from another directory: the script finds its data.
    fs::remove(dir.path / "bn.png");
    const std::string cmd = "cd / && gnuplot '" + (dir.path / "bn.gp").string() + "' 2>&1";
    CHECK(std::system(cmd.c_str()) == 0);
    CHECK(fs::file_size(dir.path / "bn.png") > 1000);
}

TEST_CASE("viz: gnuplot renders line plots" * doctest::skip(!kHaveGnuplot)) {
    TempDir dir("viz_lines");
    viz::Figure fig(1, 2, 800, 300);
    fig.panel(0, 0).set_title("Loss").curve({2.0, 1.0, 0.5}, "a").curve({2.2, 1.6, 1.1}, "b");
    fig.panel(0, 1).set_title("Accuracy").curve({0.5, 0.8, 0.9}, "a");
    const auto r = fig.save(dir.path / "curves.png");
    INFO(r.message);
    CHECK(r.rendered());
    CHECK(fs::file_size(dir.path / "curves.png") > 1000);
}

TEST_CASE("viz: legend_room stretches the y axis on the legend's side, and only there") {
    // A line from 0 to 1: y range [-0.05, 1.05] (5% margins). Two labelled series in a
    // 1x1 figure 400 pixels high: the legend takes (1.3 * 2 + 1.5) em of the plot's estimated
    // 0.75 * 400 = 300 pixels (em = 11.5 * 4/3 pixels), a share of 0.2096; the data keeps the
    // rest, so the axis grows by 0.2096 / 0.7904 of its 1.1 span on the legend's side.
    const auto y_range = [](const std::string& legend, bool room) {
        viz::Figure fig(1, 1, 600, 400);
        auto& p = fig.panel(0, 0);
        p.line({0, 1}, {0, 1}, "a").line({0, 1}, {1, 0}, "b");
        p.legend = legend;
        p.legend_room = room;
        const std::string g = fig.script("room");
        const auto at = g.find("set yrange [");
        REQUIRE(at != std::string::npos);
        double lo = 0, hi = 0;
        REQUIRE(std::sscanf(g.c_str() + at, "set yrange [%lf:%lf]", &lo, &hi) == 2);
        return std::pair{lo, hi};
    };
    const double extra = 0.2096 / 0.7904 * 1.1;
    auto [lo, hi] = y_range("bottom left", false);
    CHECK(lo == doctest::Approx(-0.05));
    CHECK(hi == doctest::Approx(1.05));
    std::tie(lo, hi) = y_range("bottom left", true);
    CHECK(lo == doctest::Approx(-0.05 - extra).epsilon(1e-3));
    CHECK(hi == doctest::Approx(1.05));
    std::tie(lo, hi) = y_range("top right", true);
    CHECK(lo == doctest::Approx(-0.05));
    CHECK(hi == doctest::Approx(1.05 + extra).epsilon(1e-3));
    std::tie(lo, hi) = y_range("center right", true);  // beside the data: nothing to make room for
    CHECK(lo == doctest::Approx(-0.05));
    CHECK(hi == doctest::Approx(1.05));
}
