// Our own CSV writer: none of the packaged libraries writes through a temporary file, fsync and
// rename, which keeps a half-written figure input from ever being read by gnuplot.
#include "tapegrad/viz/csv.hpp"

#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <system_error>

#include "tapegrad/atomic_file.hpp"
#include "tapegrad/nn/state_file.hpp"  // printable

namespace tg::viz {

namespace {

// A header field, quoted as RFC 4180 asks when it holds a comma, a quote or a line break.
std::string csv_field(const std::string& s) {
    if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
    std::string q = "\"";
    for (const char c : s) {
        if (c == '"') q += '"';
        q += c;
    }
    return q + "\"";
}

}  // namespace

std::string format_number(double x) {
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof buf, x);  // shortest round-trip form
    return std::string(buf, r.ptr);
}

std::string csv_text(const std::vector<CsvColumn>& columns) {
    if (columns.empty()) throw std::invalid_argument("write_csv: no columns");
    const std::size_t rows = columns.front().values.size();
    for (const auto& c : columns) {
        if (c.values.size() != rows) {
            // Names escaped (tg::nn::printable): a NUL would cut the message, control bytes
            // would reach the terminal (found by tests/fuzz/fuzz_csv.cpp).
            throw std::invalid_argument("write_csv: column '" + nn::printable(c.name) + "' has " +
                                        std::to_string(c.values.size()) + " values, column '" +
                                        nn::printable(columns.front().name) + "' has " +
                                        std::to_string(rows) + "; expected equal lengths");
        }
    }
    std::string out;
    for (std::size_t j = 0; j < columns.size(); ++j) {
        if (j > 0) out += ',';
        out += csv_field(columns[j].name);
    }
    out += '\n';
    for (std::size_t i = 0; i < rows; ++i) {
        for (std::size_t j = 0; j < columns.size(); ++j) {
            if (j > 0) out += ',';
            out += format_number(columns[j].values[i]);
        }
        out += '\n';
    }
    return out;
}

void write_csv(const std::filesystem::path& path, const std::vector<CsvColumn>& columns) {
    write_text_atomically(path, csv_text(columns));
}

std::vector<CsvColumn> histogram_columns(const Histogram& h) {
    const std::size_t n = h.bins();
    std::vector<CsvColumn> c = {{"bin_left", {}},  {"bin_right", {}}, {"bin_center", {}},
                                {"bin_width", {}}, {"count", {}},     {"density", {}}};
    for (auto& col : c)
        col.values.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        c[0].values.push_back(h.edges[i]);
        c[1].values.push_back(h.edges[i + 1]);
        c[2].values.push_back(h.center(i));
        c[3].values.push_back(h.width(i));
        c[4].values.push_back(static_cast<double>(h.counts[i]));
        c[5].values.push_back(h.density[i]);
    }
    return c;
}

void write_histogram_csv(const std::filesystem::path& path, const Histogram& h) {
    write_csv(path, histogram_columns(h));
}

void write_text_atomically(const std::filesystem::path& path, std::string_view text) {
    namespace fs = std::filesystem;
    if (path.has_parent_path()) {
        std::error_code ec;
        fs::create_directories(path.parent_path(), ec);
        if (ec) {
            throw std::runtime_error("write: cannot create directory " +
                                     path.parent_path().string() + ": " + ec.message());
        }
    }
    // The checkpoint writer's temporary file: unpredictable name, O_EXCL, fsync, rename,
    // directory fsync (never through a planted symlink; safe for two writers of one path).
    write_file_atomically(path.string(), text, "write");
}

}  // namespace tg::viz
