// tapegrad/viz/csv.hpp — CSV tables with a header row, written atomically (a temporary file
// renamed into place), so a crash never leaves a half-written file behind.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "tapegrad/viz/histogram.hpp"

namespace tg::viz {

/// One named column of a CSV table.
struct CsvColumn {
    std::string name;
    std::vector<double> values;
};

/// Writes `columns` as CSV: a header row of the names, then one row per index, numbers in
/// their shortest form that reads back to the same double ("0.1", "1e-05", "nan"). All
/// columns must have the same length. Creates missing parent directories.
void write_csv(const std::filesystem::path& path, const std::vector<CsvColumn>& columns);

/// The CSV text write_csv writes (for tests and for printing).
std::string csv_text(const std::vector<CsvColumn>& columns);

/// A histogram as CSV columns: bin_left, bin_right, bin_center, bin_width, count, density.
std::vector<CsvColumn> histogram_columns(const Histogram& h);

/// write_csv(path, histogram_columns(h)).
void write_histogram_csv(const std::filesystem::path& path, const Histogram& h);

/// Creates missing parent directories, then tg::write_file_atomically(path, text): readers see
/// the old file or the whole new one, never a partial one; the temporary file has an
/// unpredictable name, is created O_EXCL (never through a symlink) and is safe for two writers
/// of one path. Throws std::runtime_error naming the file if anything fails.
void write_text_atomically(const std::filesystem::path& path, std::string_view text);

/// The shortest decimal text that reads back to exactly `x` ("0.1", "1e-05", "-inf", "nan").
std::string format_number(double x);

}  // namespace tg::viz
