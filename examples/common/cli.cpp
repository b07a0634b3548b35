#include "cli.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include "tapegrad/data/dataset.hpp"
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
    with_dataset_ = with_dataset;
    option("--seed", common_.seed,
           "random seed (initial weights, batch order, dropout masks); the same seed gives the "
           "same numbers",
           between(0, static_cast<double>(std::numeric_limits<std::uint64_t>::max())));
    if (with_seeds)
        option("--seeds", common_.seeds,
               "repeat every run for this many seeds (--seed, --seed + 1, ...); tables and figures "
               "show the mean and the spread",
               between(1, 100));
    option("--out", common_.out, "directory for the figures, CSV files and anything else written");
    quick_option_ = flag("--quick", common_.quick, quick_help_);
    option("--threads", common_.threads,
           "threads the kernels use (tg::set_num_threads); 0: TAPEGRAD_NUM_THREADS or every "
           "core",
           between(0, 256));
    choice("--kernels", common_.kernels,
           "reference (the chapter's plain loops, one thread) or fast; default: "
           "TAPEGRAD_KERNELS, else the build's (tg::set_kernels)",
           {"reference", "fast"});
    if (with_dataset)
        option("--dataset", common_.dataset,
               "mnist (the 8,000/2,000 bundled digits), fashion-mnist (Debian's "
               "dataset-fashion-mnist, 60,000/10,000), or a directory of MNIST-format IDX files");
    flag("--detect-anomaly", common_.detect_anomaly,
         "check every recorded op's output and every gradient for NaN/Inf (tg::DetectAnomaly) "
         "and stop at the first, naming the op and its tape entry; slower");
    return common_;
}

CLI::Option* Cli::choice(const std::string& name, std::string& value, const std::string& help,
                         std::vector<std::string> choices) {
    CLI::Option* opt = app_.add_option(name, value, help)->capture_default_str();
    add_choices(opt, name, std::move(choices), false);
    return opt;
}

CLI::Option* Cli::choices(const std::string& name, std::vector<std::string>& values,
                          const std::string& help, std::vector<std::string> choices) {
    CLI::Option* opt = app_.add_option(name, values, help)->delimiter(',')->capture_default_str();
    add_choices(opt, name, std::move(choices), true);
    return opt;
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

void Cli::full_help(const std::string& what) {
    flag("--full", common_.full, what + " (--quick takes precedence)");
}

bool Cli::given(const std::string& name) const {
    return app_.get_option(name)->count() > 0;
}

namespace {

// A bound as a person writes it; a whole number in full ("18446744073709551615", "1000000").
std::string plain_bound(long double x, bool integral) {
    if (integral || (x == std::floor(x) && std::fabs(x) < 1e15L)) {
        std::ostringstream s;
        s << std::fixed << std::setprecision(0) << x;
        return s.str();
    }
    return plain_number(static_cast<double>(x));
}

bool all_space(const char* p) {
    while (*p != '\0' && std::isspace(static_cast<unsigned char>(*p)))
        ++p;
    return *p == '\0';
}

// Levenshtein distance, for "did you mean --batch-size?".
std::size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j)
        row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
            diagonal = up;
        }
    }
    return row[b.size()];
}

}  // namespace

void Cli::add_limit(CLI::Option* opt, const std::string& name, Limit limit, NumberKind kind) {
    // Runs on the text before CLI11 converts it, so "-1" is seen before an unsigned wraps it,
    // and 2^64 before strtoull saturates it.
    const long double lo = limit.lo;
    const long double hi = std::min<long double>(limit.hi, kind.type_max);
    // --help shows the range after the description: "passes over the training set (1 to 1000)".
    const std::string shown_lo = plain_bound(lo, kind.integral);
    const std::string shown_hi = plain_bound(hi, kind.integral);
    opt->description(opt->get_description() +
                     (limit.lo_strict ? " (more than " + shown_lo + ", at most " + shown_hi + ")"
                                      : " (" + shown_lo + " to " + shown_hi + ")"));
    opt->check(CLI::Validator(
        [this, name, limit, kind, lo, hi](std::string& text) -> std::string {
            const auto fail = [&](const std::string& why) {
                plain_error_ = why;
                return plain_error_;
            };
            const char* begin = text.c_str();
            char* end = nullptr;
            // As a double, what the program gets: 1e400 is inf, 1e-400 is 0.
            long double v = std::strtod(begin, &end);
            const bool parsed = end != begin && all_space(end);
            if (kind.integral) {
                // Whole numbers only, read exactly: "2.5", "1e3" and "inf" are not counts.
                const char* digits = begin;
                while (std::isspace(static_cast<unsigned char>(*digits)))
                    ++digits;
                const bool negative = *digits == '-';
                if (*digits == '+' || negative) ++digits;
                const bool whole = *digits != '\0' &&
                                   std::all_of(digits, digits + std::strlen(digits), [](char c) {
                                       return std::isdigit(static_cast<unsigned char>(c)) != 0;
                                   });
                if (!whole) {
                    return fail(name + " takes a whole number, not \"" + text + "\"");
                }
                if (!negative) {
                    errno = 0;
                    const unsigned long long u = std::strtoull(digits, nullptr, 10);
                    v = errno == ERANGE ? std::numeric_limits<long double>::infinity()
                                        : static_cast<long double>(u);
                }
            } else {
                if (!parsed) return fail(name + " takes a number, not \"" + text + "\"");
                if (std::isnan(v))
                    return fail(name + " takes a finite number, not \"" + text + "\"");
            }
            const bool low = limit.lo_strict ? !(v > lo) : !(v >= lo);
            const bool high = !(v <= hi);
            if (!low && !high) return {};
            std::string range = limit.lo_strict
                                    ? "greater than " + plain_bound(lo, kind.integral) +
                                          " and at most " + plain_bound(hi, kind.integral)
                                    : "between " + plain_bound(lo, kind.integral) + " and " +
                                          plain_bound(hi, kind.integral);
            return fail(name + " must be " + range + " (got " + text + ")");
        },
        ""));
}

void Cli::add_choices(CLI::Option* opt, const std::string& name, std::vector<std::string> choices,
                      bool is_list) {
    // "reference or fast", "synthetic, noise or cnn"; --help shows "TEXT:{reference,fast}".
    std::string listed, braced;
    for (std::size_t i = 0; i < choices.size(); ++i) {
        listed += (i == 0 ? "" : i + 1 == choices.size() ? " or " : ", ") + choices[i];
        braced += (i == 0 ? "" : ",") + choices[i];
    }
    opt->check(CLI::Validator(
        [this, name, choices, listed, is_list](std::string& text) -> std::string {
            if (std::find(choices.begin(), choices.end(), text) != choices.end()) return {};
            plain_error_ = name + " takes " + listed + (is_list ? " (comma-separated)" : "") +
                           ", not \"" + text + "\"";
            return plain_error_;
        },
        "{" + braced + "}"));
}

std::string Cli::unknown_flag_message() const {
    const std::vector<std::string> extras = app_.remaining();
    std::string first = extras.empty() ? std::string() : extras.front();
    for (const std::string& e : extras) {
        if (e.rfind("-", 0) == 0) {
            first = e;
            break;
        }
    }
    if (first.rfind("-", 0) != 0) {
        return "unexpected argument \"" + first + "\" (every value follows its flag, as in " +
               "--epochs 3)";
    }
    const std::string flag = first.substr(0, first.find('='));
    std::string nearest;
    std::size_t best = std::numeric_limits<std::size_t>::max();
    for (const CLI::Option* opt : app_.get_options()) {
        for (const std::string& long_name : opt->get_lnames()) {
            const std::string candidate = "--" + long_name;
            const std::size_t d = edit_distance(flag, candidate);
            if (d < best) best = d, nearest = candidate;
        }
    }
    std::string message = flag + " is not a flag of " + program_;
    // Near: at most a third of the flag's letters differ (--batchsize, --epoch, --learning-rat).
    if (!nearest.empty() && best * 3 <= flag.size()) message += "; did you mean " + nearest + "?";
    return message;
}

std::optional<int> Cli::parse(int argc, char** argv) {
    plain_error_.clear();
    try {
        app_.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        if (!silent_) std::cout << app_.help();
        return 0;
    } catch (const CLI::ParseError& e) {
        if (silent_) return 2;
        std::string message = plain_error_;
        if (message.empty()) {
            if (dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr) {
                message = unknown_flag_message();
            } else if (dynamic_cast<const CLI::ArgumentMismatch*>(&e) != nullptr) {
                // "--epochs: 1 required UINT missing" -> "--epochs needs a value"
                const std::string what = e.what();
                message = what.substr(0, what.find(':')) + " needs a value";
            } else {
                message = e.what();
            }
        }
        // One line, whatever went wrong.
        std::replace(message.begin(), message.end(), '\n', ' ');
        std::cerr << program_ << ": " << message << "; --help lists the flags and their ranges\n";
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

std::size_t cap_batch_size(const std::string& program, const std::string& flag,
                           std::size_t batch_size, std::size_t n, const std::string& what) {
    if (batch_size <= n || n == 0) return batch_size;
    std::printf("%s: %s %zu is more than the %zu %s; using %zu\n", program.c_str(), flag.c_str(),
                batch_size, n, what.c_str(), n);
    return n;
}

std::string diverged_message(std::size_t step, std::size_t epoch, double loss) {
    return "training diverged at step " + std::to_string(step) + " (epoch " +
           std::to_string(epoch) + "): the loss is " + plain_number(loss) +
           "; try a smaller --lr, and --detect-anomaly to name the op that first made a NaN or "
           "Inf";
}

fs::path Cli::prepare() const {
    // Every input first: a wrong --dataset must not leave an empty --out behind.
    if (with_dataset_) {
        (void)tg::data::load_dataset(common_.dataset, tg::data::Split::train);
        (void)tg::data::load_dataset(common_.dataset, tg::data::Split::test);
    }
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
