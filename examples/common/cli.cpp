#include "cli.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include "tapegrad/kernels.hpp"
#include "tapegrad/parallel.hpp"

namespace fs = std::filesystem;

namespace tg::examples {

std::vector<std::uint64_t> CommonFlags::seed_list() const {
    std::vector<std::uint64_t> list;
    for (std::size_t k = 0; k < seeds; ++k)
        list.push_back(seed + k);
    return list;
}

namespace {

// A number as a person writes it: 1, 0.5, 1e-05 -> "1e-05" stays; integers without ".0".
std::string plain_number(double x) {
    std::ostringstream s;
    s << x;
    return s.str();
}

// Characters on screen, not bytes: UTF-8 continuation bytes do not count.
std::size_t display_width(const std::string& s) {
    std::size_t n = 0;
    for (const unsigned char c : s)
        n += (c & 0xC0) != 0x80;
    return n;
}

constexpr std::size_t kScreen = 80;  // --help fits an 80-column terminal
constexpr std::size_t kColumn = 28;  // where the flags' descriptions start

// `text` broken into lines of at most `width` characters at spaces (a longer word stays whole).
std::string wrap(const std::string& text, std::size_t width) {
    std::istringstream words(text);
    std::string out, line, word;
    while (words >> word) {
        if (!line.empty() && display_width(line) + 1 + display_width(word) > width) {
            out += line + "\n";
            line.clear();
        }
        line += (line.empty() ? "" : " ") + word;
    }
    return out + line;
}

// CLI11's formatter with every description wrapped to the screen: CLI11 2.1 does not wrap.
// (CLI11 indents the lines after each '\n' to the description column itself.)
class WrappingFormatter : public CLI::Formatter {
  public:
    std::string make_option_desc(const CLI::Option* opt) const override {
        return wrap(opt->get_description(), kScreen - kColumn - 1);
    }
};

}  // namespace

Cli::Cli(std::string program, std::string description)
    : program_(std::move(program)), app_(wrap(description, kScreen - 1), program_) {
    auto formatter = std::make_shared<WrappingFormatter>();
    formatter->column_width(kColumn);
    app_.formatter(formatter);
}

CommonFlags& Cli::add_common(CommonFlags defaults, bool with_seeds, bool with_dataset) {
    common_ = std::move(defaults);
    option("--seed", common_.seed,
           "random seed (initial weights, batch order, dropout masks); the same seed gives the "
           "same numbers");
    if (with_seeds)
        option("--seeds", common_.seeds,
               "repeat every run for this many seeds (--seed, --seed + 1, ...); tables and figures "
               "show the mean and the spread",
               at_least(1));
    option("--out", common_.out, "directory for the figures, CSV files and anything else written");
    quick_option_ = flag("--quick", common_.quick, quick_help_);
    option("--threads", common_.threads,
           "threads the kernels use (tg::set_num_threads); 0: TAPEGRAD_NUM_THREADS or every "
           "core");
    option("--kernels", common_.kernels,
           "reference (the chapter's plain loops, one thread) or fast; default: "
           "TAPEGRAD_KERNELS, else the build's (tg::set_kernels)")
        ->check(CLI::IsMember({"reference", "fast"}));
    if (with_dataset)
        option("--dataset", common_.dataset,
               "mnist (the 8,000/2,000 bundled digits), fashion-mnist (Debian's "
               "dataset-fashion-mnist, 60,000/10,000), or a directory of MNIST-format IDX files");
    flag("--detect-anomaly", common_.detect_anomaly,
         "check every recorded op's output and every gradient for NaN/Inf (tg::DetectAnomaly) "
         "and stop at the first, naming the op and its tape entry; slower");
    return common_;
}

CLI::Option* Cli::flag(const std::string& name, bool& value, const std::string& help) {
    return app_.add_flag(name, value, help);
}

void Cli::outputs(const std::string& what) {
    app_.footer(wrap("Writes into --out: " + what, kScreen - 1));
}

void Cli::quick_help(const std::string& what) {
    quick_help_ = what;
    if (quick_option_ != nullptr) quick_option_->description(what);
}

void Cli::add_limit(CLI::Option* opt, const std::string& name, Limit limit) {
    // Runs on the text before CLI11 converts it, so "-1" is seen before an unsigned wraps it.
    opt->check(CLI::Validator(
        [this, name, limit](std::string& text) -> std::string {
            char* end = nullptr;
            errno = 0;
            const double v = std::strtod(text.c_str(), &end);
            if (end == text.c_str() || *end != '\0') {
                plain_error_ = name + " takes a number, not \"" + text + "\"";
                return plain_error_;
            }
            const bool low = limit.lo && (limit.lo_strict ? !(v > *limit.lo) : !(v >= *limit.lo));
            const bool high = limit.hi && !(v <= *limit.hi);
            if (!low && !high) return {};
            if (limit.lo && limit.hi) {
                plain_error_ = name + " must be between " + plain_number(*limit.lo) + " and " +
                               plain_number(*limit.hi);
            } else if (limit.lo_strict) {
                plain_error_ = name + " must be greater than " + plain_number(*limit.lo);
            } else if (limit.lo && *limit.lo == 0) {
                plain_error_ = name + " must be 0 or more";
            } else if (limit.lo) {
                plain_error_ = name + " must be at least " + plain_number(*limit.lo);
            } else {
                plain_error_ = name + " must be at most " + plain_number(*limit.hi);
            }
            plain_error_ += " (got " + text + ")";
            return plain_error_;
        },
        ""));
}

std::optional<int> Cli::parse(int argc, char** argv) {
    try {
        app_.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        if (!silent_) std::cout << app_.help();
        return 0;
    } catch (const CLI::ParseError& e) {
        if (silent_) return 2;
        const std::string message = plain_error_.empty() ? e.what() : plain_error_;
        std::cerr << program_ << ": " << message << "\nRun " << program_
                  << " --help for the flags and their ranges.\n";
        return 2;
    }
    return std::nullopt;
}

void check_writable(const fs::path& dir, const std::string& flag) {
    const auto fail = [&](const std::string& why) {
        throw std::runtime_error("cannot write into " + flag + " " + dir.string() + ": " + why);
    };
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) fail(ec.message());
    if (!fs::is_directory(dir)) fail("it is not a directory");
    const fs::path probe = dir / (".write_test_" + std::to_string(::getpid()));
    {
        std::ofstream f(probe);
        if (!f) fail(std::strerror(errno));
        f << "x";
        f.close();
        if (!f) {
            fs::remove(probe, ec);
            fail("writing a file there failed");
        }
    }
    fs::remove(probe, ec);
}

fs::path Cli::prepare() const {
    if (common_.threads > 0) tg::set_num_threads(common_.threads);
    if (!common_.kernels.empty()) tg::set_kernels(tg::parse_kernels(common_.kernels));
    const fs::path out = common_.out;
    if (common_.detect_anomaly && !anomaly_guard_) anomaly_guard_.emplace();
    if (silent_) return out;
    check_writable(out);
    std::printf("%s\n", tg::runtime_summary().c_str());  // which kernels, how many threads
    return out;
}

}  // namespace tg::examples
