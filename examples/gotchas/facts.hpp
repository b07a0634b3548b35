// examples/gotchas/facts.hpp — what the ch310/ch306/ch322 gotcha demonstrations share: the
// numbers each one prints are also written to <out>/<program>_facts.json, which
// tests/check_ch310_gotchas.py reads to check the deterministic facts (so the checker does
// not parse the prose the programs print).
#pragma once

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "tapegrad/atomic_file.hpp"

namespace gotchas {

/// Named numbers and strings, written as one flat JSON object.
class Facts {
  public:
    void number(const std::string& key, double v) { items_.emplace_back(key, format(v)); }
    void text(const std::string& key, const std::string& v) { items_.emplace_back(key, quote(v)); }
    void flag(const std::string& key, bool v) { items_.emplace_back(key, v ? "true" : "false"); }

    /// Writes <dir>/<program>_facts.json with tg::write_file_atomically (a private temporary
    /// file renamed into place; on a failed write nothing else is touched).
    std::filesystem::path save(const std::filesystem::path& dir, const std::string& program) const {
        const auto path = dir / (program + "_facts.json");
        std::ostringstream out;
        out << "{\n";
        for (std::size_t i = 0; i < items_.size(); ++i)
            out << "  " << quote(items_[i].first) << ": " << items_[i].second
                << (i + 1 < items_.size() ? ",\n" : "\n");
        out << "}\n";
        tg::write_file_atomically(path.string(), out.str(), "facts");
        return path;
    }

  private:
    static std::string format(double v) {
        if (std::isnan(v)) return "NaN";
        if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.17g", v);
        return buf;
    }
    static std::string quote(const std::string& s) {
        std::string q = "\"";
        for (char c : s) {
            if (c == '"' || c == '\\') q += '\\';
            if (c == '\n') {
                q += "\\n";
                continue;
            }
            q += c;
        }
        return q + "\"";
    }
    std::vector<std::pair<std::string, std::string>> items_;
};

}  // namespace gotchas
