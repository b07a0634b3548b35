// viz: histograms against hand-counted bins and numpy.histogram, statistics, CSV files,
// terminal histograms.
#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tapegrad/viz/viz.hpp"
#include "testing.hpp"

namespace fs = std::filesystem;
namespace viz = tg::viz;

namespace {

using tgtest::read_file;
using tgtest::TempDir;

std::vector<double> dens(std::initializer_list<double> d) {
    return d;
}

void check_density(const viz::Histogram& h, const std::vector<double>& expected) {
    REQUIRE(h.density.size() == expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
        CHECK_MESSAGE(h.density[i] == doctest::Approx(expected[i]).epsilon(1e-14), "bin " << i);
    }
}

}  // namespace

TEST_CASE("viz: histogram of hand-counted values, automatic range") {
    // Range [0, 4] in 4 bins of width 1: [0,1) {0}, [1,2) {1,1}, [2,3) {2}, [3,4] {3,3,3,4}
    // (the last bin includes its right edge). density = count / (8 * 1).
    const std::vector<double> x = {3, 1, 0, 4, 3, 2, 1, 3};
    const auto h = viz::histogram(x, 4);
    CHECK(h.edges == std::vector<double>{0, 1, 2, 3, 4});
    CHECK(h.counts == std::vector<std::size_t>{1, 2, 1, 4});
    CHECK(h.total == 8);
    check_density(h, dens({0.125, 0.25, 0.125, 0.5}));
    CHECK(h.max_density() == 0.5);
    CHECK(h.center(1) == 1.5);
    CHECK(h.width(3) == 1.0);
}

TEST_CASE("viz: histogram with a range excludes values outside it and keeps the right edge") {
    // Range [0, 2] in 2 bins: -1 and 2.5 are outside; 2 == hi lands in the last bin.
    // total = 4, width = 1: density = 2 / (4 * 1) = 0.5 in both bins.
    const std::vector<double> x = {-1, 0, 0.5, 1, 2, 2.5};
    const auto h = viz::histogram(x, 2, 0.0, 2.0);
    CHECK(h.counts == std::vector<std::size_t>{2, 2});
    CHECK(h.total == 4);
    check_density(h, dens({0.5, 0.5}));
    // NaN is never counted when a range is given (numpy drops it too).
    const auto hn = viz::histogram(std::vector<double>{1.0, std::nan(""), 2.0}, 2, 0.0, 2.0);
    CHECK(hn.counts == std::vector<std::size_t>{0, 2});
}

TEST_CASE("viz: histogram matches numpy.histogram") {
    // x_i = ((i * 7919) % 1000) / 100 - 3.3, i = 0..499: exact IEEE arithmetic, the same in
    // Python and C++. Expected values printed by /usr/bin/python3 (numpy 1.24.2):
    //   np.histogram(x, bins=7, range=(-2.0, 4.1)) and the same with density=True,
    //   np.histogram(x, bins=9) (automatic range) and density=True.
    std::vector<double> x;
    for (int i = 0; i < 500; ++i)
        x.push_back(((i * 7919) % 1000) / 100.0 - 3.3);

    const auto a = viz::histogram(x, 7, -2.0, 4.1);
    CHECK(a.counts == std::vector<std::size_t>{43, 44, 44, 42, 42, 44, 45});
    CHECK(a.total == 304);
    check_density(a,
                  {0.16231665228645384, 0.1660914581535807, 0.1660914581535807, 0.158541846419327,
                   0.158541846419327, 0.16609145815358076, 0.16986626402070742});
    const std::vector<double> a_edges = {-2.0,
                                         -1.1285714285714286,
                                         -0.25714285714285734,
                                         0.6142857142857139,
                                         1.4857142857142853,
                                         2.3571428571428568,
                                         3.2285714285714278,
                                         4.1};
    CHECK(a.edges == a_edges);  // bit for bit: numpy.linspace's lo + i * step

    const auto b = viz::histogram(x, 9);
    CHECK(b.counts == std::vector<std::size_t>{55, 56, 55, 55, 56, 55, 56, 56, 56});
    CHECK(b.lo() == -3.3);
    CHECK(b.hi() == 6.69);
    check_density(b, {0.09909909909909906, 0.10090090090090091, 0.0990990990990991,
                      0.09909909909909906, 0.10090090090090087, 0.09909909909909916,
                      0.10090090090090087, 0.10090090090090087, 0.10090090090090095});
}

TEST_CASE("viz: histogram puts values on rounded edges where numpy does") {
    // i / 10 and 0.1 * i (which differ in the last bit for some i) over [0, 1] in 10 bins.
    // numpy: np.histogram([i/10 for i in range(11)] + [0.1*i for i in range(11)], bins=10,
    // range=(0, 1)) -> [2, 2, 3, 1, 2, 3, 2, 1, 2, 4]; with bins=3 (automatic range) -> [8, 6, 8].
    std::vector<double> y;
    for (int i = 0; i <= 10; ++i)
        y.push_back(i / 10.0);
    for (int i = 0; i <= 10; ++i)
        y.push_back(0.1 * i);
    CHECK(viz::histogram(y, 10, 0.0, 1.0).counts ==
          std::vector<std::size_t>{2, 2, 3, 1, 2, 3, 2, 1, 2, 4});
    CHECK(viz::histogram(y, 3).counts == std::vector<std::size_t>{8, 6, 8});
}

TEST_CASE("viz: histogram density integrates to 1") {
    std::vector<double> x;
    for (int i = 0; i < 1000; ++i)
        x.push_back(std::sin(i * 0.37) * std::exp(0.001 * i));
    const auto h = viz::histogram(x, 17, -1.5, 1.2);
    double integral = 0.0;
    std::size_t counted = 0;
    for (std::size_t i = 0; i < h.bins(); ++i) {
        integral += h.density[i] * h.width(i);
        counted += h.counts[i];
    }
    CHECK(integral == doctest::Approx(1.0).epsilon(1e-12));
    CHECK(counted == h.total);
    CHECK(h.total < x.size());  // some values are outside [-1.5, 1.2]
}

TEST_CASE("viz: histogram edge cases follow numpy") {
    // One repeated value: the range widens to [v - 0.5, v + 0.5] (numpy: edges 1.5 ... 2.5).
    const auto one = viz::histogram(std::vector<double>{2.0, 2.0}, 4);
    CHECK(one.edges == std::vector<double>{1.5, 1.75, 2.0, 2.25, 2.5});
    CHECK(one.counts == std::vector<std::size_t>{0, 0, 2, 0});
    // No values: range [0, 1], all counts 0, densities 0 (numpy: NaN).
    const auto none = viz::histogram(std::vector<double>{}, 2);
    CHECK(none.edges == std::vector<double>{0.0, 0.5, 1.0});
    CHECK(none.total == 0);
    CHECK(none.density == std::vector<double>{0.0, 0.0});
}

TEST_CASE("viz: histogram of an Array flattens it") {
    const tg::Array a = {{1, 2, 2}, {3, 3, 3}};  // [2, 3]
    const auto h = viz::histogram(a, 3, 0.5, 3.5);
    CHECK(h.counts == std::vector<std::size_t>{1, 2, 3});
    CHECK(viz::histogram(a, 2).edges == std::vector<double>{1, 2, 3});
}

TEST_CASE("viz: histogram rejects bad arguments with a message") {
    const std::vector<double> x = {1, 2};
    CHECK_THROWS_WITH_AS(viz::histogram(x, 0), "histogram: bins must be positive, got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(viz::histogram(x, 3, 2.0, 1.0),
                         "histogram: range [2, 1] has lo > hi; expected lo <= hi",
                         std::invalid_argument);
    CHECK_THROWS_AS(viz::histogram(x, 3, 0.0, INFINITY), std::invalid_argument);
    CHECK_THROWS_WITH_AS(viz::histogram(std::vector<double>{1.0, std::nan("")}, 3),
                         doctest::Contains("automatic range is not finite"), std::invalid_argument);
}

TEST_CASE("viz: mean and variance") {
    // {1, 2, 3, 4}: mean 2.5; squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5.
    const std::vector<double> x = {1, 2, 3, 4};
    CHECK(viz::mean(x) == 2.5);
    CHECK(viz::variance(x) == 1.25);                         // 5 / 4 (biased, ddof = 0)
    CHECK(viz::variance(x, 1) == doctest::Approx(5.0 / 3));  // unbiased
    CHECK(viz::mean(tg::Array{{1, 2}, {3, 4}}) == 2.5);
    CHECK(viz::variance(tg::Array{1, 2, 3, 4}, 1) == doctest::Approx(5.0 / 3));
    // Large offset: the two-pass formula keeps the small variance.
    CHECK(viz::variance(std::vector<double>{1e9 + 1, 1e9 + 2, 1e9 + 3}) ==
          doctest::Approx(2.0 / 3));
    CHECK_THROWS_WITH_AS(viz::mean(std::vector<double>{}), "mean: no values",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(viz::variance(std::vector<double>{1.0}, 1),
                         "variance: 1 values with ddof = 1; expected more than ddof values",
                         std::invalid_argument);
}

TEST_CASE("viz: csv text has a header and shortest round-trip numbers") {
    const std::string text = viz::csv_text({{"x", {0.1, 1e-5, -2}}, {"y", {3, NAN, 0.25}}});
    CHECK(text == "x,y\n0.1,3\n1e-05,nan\n-2,0.25\n");
    CHECK(viz::csv_text({{"a,b", {1}}, {"say \"hi\"", {2}}}) ==
          "\"a,b\",\"say \"\"hi\"\"\"\n1,2\n");
    CHECK(viz::format_number(1.0 / 3) == "0.3333333333333333");
    CHECK(std::stod(viz::format_number(1.0 / 3)) == 1.0 / 3);
    CHECK_THROWS_WITH_AS(viz::csv_text({{"x", {1, 2}}, {"y", {1}}}),
                         "write_csv: column 'y' has 1 values, column 'x' has 2; expected equal "
                         "lengths",
                         std::invalid_argument);
    CHECK_THROWS_AS(viz::csv_text({}), std::invalid_argument);
}

TEST_CASE("viz: histogram csv columns") {
    const auto h = viz::histogram(std::vector<double>{0, 1, 1, 3}, 2, 0.0, 4.0);
    // Bins [0, 2) {0, 1, 1}, [2, 4] {3}; width 2: density 3 / (4 * 2), 1 / (4 * 2).
    CHECK(viz::csv_text(viz::histogram_columns(h)) ==
          "bin_left,bin_right,bin_center,bin_width,count,density\n"
          "0,2,1,2,3,0.375\n"
          "2,4,3,2,1,0.125\n");
}

TEST_CASE("viz: files are written atomically and replace the old file") {
    TempDir dir("viz_csv");
    const fs::path p = dir.path / "sub" / "h.csv";  // the missing directory is created
    viz::write_csv(p, {{"v", {1, 2}}});
    CHECK(read_file(p) == "v\n1\n2\n");
    viz::write_text_atomically(p, "replaced\n");
    CHECK(read_file(p) == "replaced\n");
    CHECK(std::distance(fs::directory_iterator(dir.path / "sub"), fs::directory_iterator{}) == 1);
    // A directory in the way: the rename fails, the message names the file, and no
    // temporary file is left behind.
    fs::create_directories(dir.path / "d.csv" / "inner");
    CHECK_THROWS_WITH_AS(viz::write_text_atomically(dir.path / "d.csv", "x"),
                         doctest::Contains("d.csv"), std::runtime_error);
    CHECK(dir.files().size() == 2);  // sub/ and d.csv/
}

TEST_CASE("viz: terminal histogram, one line per bin with a proportional bar") {
    // Densities 0.125, 0.25, 0.125, 0.5 (see the first test): bars of 2, 4, 2, 8 cells
    // at bar_width 8.
    const auto h = viz::histogram(std::vector<double>{3, 1, 0, 4, 3, 2, 1, 3}, 4);
    std::ostringstream out;
    viz::print_histogram(out, h, 8);
    std::vector<std::string> lines;
    std::istringstream in(out.str());
    for (std::string l; std::getline(in, l);)
        lines.push_back(l);
    REQUIRE(lines.size() == 5);  // a header and 4 bins
    CHECK(lines[0] == "histogram: 8 values in 4 bins over [0, 4]");
    const auto count = [](const std::string& s, const std::string& what) {
        std::size_t n = 0;
        for (auto p = s.find(what); p != std::string::npos; p = s.find(what, p + what.size()))
            ++n;
        return n;
    };
    CHECK(count(lines[1], "█") == 2);
    CHECK(count(lines[2], "█") == 4);
    CHECK(count(lines[4], "█") == 8);
    CHECK(lines[1].find("0.1250") != std::string::npos);
    CHECK(lines[4].find("0.5000") != std::string::npos);
    CHECK(lines[1].substr(0, 2) == "[ ");
    CHECK(lines[4].find("]") != std::string::npos);  // the last bin is closed
    CHECK(lines[1].find("]") == std::string::npos);
    // Fractions of a cell use the eighth blocks: density 0.125 at bar_width 3 is 3/4 cell
    // -> 6 eighths -> "▊".
    std::ostringstream small;
    viz::print_histogram(small, h, 3);
    CHECK(small.str().find("▊") != std::string::npos);
}

TEST_CASE("viz: sparkline heights") {
    // Densities 0.125, 0.25, 0.125, 0.5 -> levels ceil(8 d / 0.5) = 2, 4, 2, 8.
    const auto h = viz::histogram(std::vector<double>{3, 1, 0, 4, 3, 2, 1, 3}, 4);
    CHECK(viz::sparkline(h) == "▂▄▂█");
    // An empty bin is a space.
    const auto gap = viz::histogram(std::vector<double>{0, 0, 3}, 3);
    CHECK(viz::sparkline(gap) == "█ ▄");
    std::ostringstream out;
    viz::print_sparkline(out, h, "x");
    CHECK(out.str() == "x  0 ▂▄▂█ 4   peak density 0.5\n");
}
