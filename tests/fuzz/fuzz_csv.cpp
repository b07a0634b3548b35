// libFuzzer target: the CSV writer (tg::viz::write_csv, csv_text, format_number).
//
// Input: 1 to 4 columns, each a name of any bytes (commas, quotes, CR/LF, NUL, non-ASCII) and
// 0 to 7 values of any bit pattern (NaN, ±inf, subnormals, -0), all columns alike long unless
// the last byte of the header says otherwise.
// Promises checked: columns of unequal length are refused with std::invalid_argument, the
// message whole and printable (names escaped); otherwise
// write_csv puts exactly csv_text's bytes into the file, leaves no temporary file beside it, and
// the text read back as RFC 4180 CSV gives every name byte for byte and every value exactly
// (the same double; NaN as a NaN).
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "fuzz_input.hpp"
#include "tapegrad/viz/csv.hpp"

namespace {

// RFC 4180: fields separated by commas, records by '\n' (the writer's); a quoted field may
// hold commas, quotes (doubled) and line breaks.
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
    std::vector<std::vector<std::string>> records;
    std::vector<std::string> record;
    std::string field;
    std::size_t i = 0;
    bool quoted_field = false;
    while (i < text.size()) {
        const char c = text[i];
        if (field.empty() && !quoted_field && c == '"') {
            quoted_field = true;
            ++i;
            for (;;) {
                if (i >= text.size()) tgfuzz::broken("an unterminated quoted field");
                if (text[i] == '"') {
                    if (i + 1 < text.size() && text[i + 1] == '"') {
                        field += '"';
                        i += 2;
                        continue;
                    }
                    ++i;
                    break;
                }
                field += text[i++];
            }
            continue;
        }
        if (c == ',') {
            record.push_back(field);
            field.clear();
            quoted_field = false;
        } else if (c == '\n') {
            record.push_back(field);
            records.push_back(record);
            record.clear();
            field.clear();
            quoted_field = false;
        } else {
            if (quoted_field) tgfuzz::broken("text after a closing quote");
            field += c;
        }
        ++i;
    }
    if (!field.empty() || !record.empty()) tgfuzz::broken("the text does not end with a newline");
    return records;
}

bool same_double(double a, double b) {
    return (std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, sizeof a) == 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    tgfuzz::Input in(data, size);
    const std::size_t ncols = 1 + in.byte() % 4;
    const std::uint8_t shape_byte = in.byte();
    const std::size_t rows = shape_byte % 8;
    const bool uneven = ncols > 1 && (shape_byte & 0x80) != 0;
    std::vector<tg::viz::CsvColumn> columns(ncols);
    for (std::size_t j = 0; j < ncols; ++j) {
        columns[j].name = in.text(64);
        const std::size_t n = uneven && j + 1 == ncols ? rows + 1 : rows;
        for (std::size_t i = 0; i < n; ++i)
            columns[j].values.push_back(in.f64());
    }
    const std::filesystem::path dir = tgfuzz::scratch_path("csv_dir");
    std::filesystem::create_directories(dir);
    const std::filesystem::path path = dir / "table.csv";

    std::string text;
    try {
        text = tg::viz::csv_text(columns);
    } catch (const std::invalid_argument& e) {
        if (!uneven) tgfuzz::broken(std::string("csv_text refused equal columns: ") + e.what());
        if (std::string(e.what()).find("expected equal lengths") == std::string::npos)
            tgfuzz::broken(std::string("an unclear message: ") + e.what());
        tgfuzz::check_printable(e.what());
        return 0;
    }
    if (uneven) tgfuzz::broken("csv_text accepted columns of unequal length");
    tg::viz::write_csv(path, columns);
    std::ifstream f(path, std::ios::binary);
    std::stringstream read;
    read << f.rdbuf();
    if (read.str() != text) tgfuzz::broken("the file differs from csv_text");
    std::size_t entries = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        ++entries;
        if (e.path().filename() != "table.csv")
            tgfuzz::broken("a file left beside the CSV: " + e.path().filename().string());
    }
    if (entries != 1) tgfuzz::broken("the CSV file is missing");

    const auto records = parse_csv(text);
    if (records.size() != rows + 1) tgfuzz::broken("wrong number of records");
    if (records[0].size() != ncols) tgfuzz::broken("the header has the wrong number of fields");
    for (std::size_t j = 0; j < ncols; ++j) {
        if (records[0][j] != columns[j].name) tgfuzz::broken("a name did not round-trip");
    }
    for (std::size_t i = 0; i < rows; ++i) {
        if (records[i + 1].size() != ncols) tgfuzz::broken("a row has the wrong number of fields");
        for (std::size_t j = 0; j < ncols; ++j) {
            const std::string& field = records[i + 1][j];
            char* end = nullptr;
            const double back = std::strtod(field.c_str(), &end);
            if (field.empty() || *end != '\0') tgfuzz::broken("a value is not a number: " + field);
            if (!same_double(back, columns[j].values[i]))
                tgfuzz::broken("a value did not round-trip: " + field);
        }
    }
    std::filesystem::remove(path);  // the directory is empty again (removed at exit)
    return 0;
}
