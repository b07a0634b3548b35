// examples/common/cli.hpp — the one command-line convention of every example program.
//
// Every program has --help (each flag with its default, and a footer naming what the program
// writes), --seed, --out (created and checked writable before any work), --quick, --threads,
// --kernels and, when it reads MNIST, --dataset; the experiments also have --seeds N. Every numeric
// flag has a finite, bounded range (option() refuses to register one without), and any value
// outside it, a minus sign on a count, a fraction for a whole number, inf, nan, 1e400 or an empty
// string is refused with one plain line naming the flag and exit code 2, before any work
// ("--epochs must be between 1 and 1000 (got 0)", "--epochs takes a whole number, not \"2.5\"").
// An unknown flag names the nearest one ("--batchsize is not a flag; did you mean --batch-size?"),
// and a value outside a flag's choices lists them ("--kernels takes reference or fast, not
// \"foo\"").
//
//     tg::examples::Cli cli("ch310_lr_sweep", "Learning rates with and without BN.");
//     auto& common = cli.add_common({.seeds = 3});
//     std::size_t epochs = 1;
//     cli.option("--epochs", epochs, "passes over the data", tg::examples::between(1, 1000));
//     cli.outputs("ch310_lr_sweep.png, ch310_lr_sweep.csv");
//     if (const auto exit_code = cli.parse(argc, argv)) return *exit_code;
//     const fs::path out = cli.prepare();   // --threads applied, --out ready
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <limits>
#include <stdexcept>

#include <CLI/CLI.hpp>

#include "tapegrad/anomaly.hpp"

namespace tg::examples {

/// The flags every program shares, with their defaults.
struct CommonFlags {
    std::uint64_t seed = 0;         // --seed: initial weights, batch order, dropout masks
    std::size_t seeds = 1;          // --seeds: runs repeated for seed, seed + 1, ...
    std::string out = "out/ch310";  // --out: where figures, CSV files, checkpoints go
    bool quick = false;             // --quick: the few-second mode the tests run
    bool full = false;              // --full: the longer sweeps of record (see Cli::full_help)
    std::size_t threads = 0;        // --threads: tg::set_num_threads; 0 = leave as is
    std::string dataset = "mnist";  // --dataset: mnist, fashion-mnist or a directory
    std::string kernels{};          // --kernels: reference or fast; empty = the build's default
    bool detect_anomaly = false;    // --detect-anomaly: train under tg::DetectAnomaly

    /// The seeds of the repeated runs: seed, seed + 1, ..., seed + seeds − 1.
    std::vector<std::uint64_t> seed_list() const;
};

/// A numeric flag's allowed range, always bounded on both sides; see between, greater_than.
struct Limit {
    double lo = 0, hi = 0;
    bool lo_strict = false;  // value > lo rather than value >= lo
};
/// lo <= value <= hi: "--momentum must be between 0 and 0.999".
inline Limit between(double lo, double hi) {
    return {lo, hi, false};
}
/// lo < value <= hi: "--lr must be greater than 0 and at most 1000000".
inline Limit greater_than(double lo, double hi) {
    return {lo, hi, true};
}

/// What a flag's value is converted to: whole numbers are parsed exactly (no rounding through
/// double), so 2^64 is refused rather than saturated.
struct NumberKind {
    bool integral = false;
    bool is_unsigned = false;
    long double type_max = 0;
};
template <class T>
NumberKind number_kind() {
    return {std::is_integral_v<T>, std::is_unsigned_v<T>,
            static_cast<long double>(std::numeric_limits<T>::max())};
}

class Cli {
  public:
    /// `program` is the name errors start with ("ch310_lr_sweep: ...").
    Cli(std::string program, std::string description);

    /// Adds --seed, --out, --quick, --threads, --kernels and, if `with_seeds`, --seeds, if
    /// `with_dataset`, --dataset (a program on data it makes itself has none), with the defaults
    /// in `defaults`. Returns the flags, filled in by parse().
    CommonFlags& add_common(CommonFlags defaults = {}, bool with_seeds = true,
                            bool with_dataset = true);
    CommonFlags& common() { return common_; }

    /// An option showing its default in --help. A numeric one needs its Limit (std::logic_error
    /// naming the flag otherwise): values outside it, and anything that is not a finite number
    /// of T's kind, are refused with a sentence naming the flag.
    template <class T>
    CLI::Option* option(const std::string& name, T& value, const std::string& help,
                        std::optional<Limit> limit = std::nullopt) {
        CLI::Option* opt = app_.add_option(name, value, help)->capture_default_str();
        if constexpr (std::is_arithmetic_v<T>) {
            if (!limit)
                throw std::logic_error(program_ + ": numeric flag " + name + " has no range");
            add_limit(opt, name, *limit, number_kind<T>());
        }
        return opt;
    }
    /// A list option ("--lrs 0.01,0.1,1"), every element within `limit`.
    template <class T>
    CLI::Option* list(const std::string& name, std::vector<T>& values, const std::string& help,
                      Limit limit) {
        CLI::Option* opt =
            app_.add_option(name, values, help)->delimiter(',')->capture_default_str();
        add_limit(opt, name, limit, number_kind<T>());
        return opt;
    }
    /// A flag taking one of `choices` ("--kernels reference"); anything else is refused with
    /// one plain line listing them: "--kernels takes reference or fast, not \"foo\"".
    CLI::Option* choice(const std::string& name, std::string& value, const std::string& help,
                        std::vector<std::string> choices);
    /// A comma-separated list whose every element is one of `choices` ("--figures noise,cnn").
    CLI::Option* choices(const std::string& name, std::vector<std::string>& values,
                         const std::string& help, std::vector<std::string> choices);
    /// A flag (no value).
    CLI::Option* flag(const std::string& name, bool& value, const std::string& help);

    /// The --help footer: "Writes into --out: <what>".
    void outputs(const std::string& what);
    /// What --quick does, shown in --help.
    void quick_help(const std::string& what);
    /// Adds --full (CommonFlags::full) to a program whose default run is a cut of a longer
    /// sweep; `what` is what --full adds, shown in --help. --quick takes precedence over it.
    /// scripts/run_chapter.sh --full passes --full to the programs whose --help lists it.
    void full_help(const std::string& what);
    /// After parse(): true if the command line gave `name` ("--lrs"), so a mode (--quick,
    /// --full) leaves the reader's value alone.
    bool given(const std::string& name) const;

    /// After parse(): sets `value` to --quick's or --full's value (--quick wins) unless the
    /// command line gave `name`; with neither mode the flag keeps its default.
    template <class T>
    void mode_value(const std::string& name, T& value, std::type_identity_t<T> quick,
                    std::type_identity_t<T> full) const {
        if (given(name)) return;
        if (common_.quick)
            value = std::move(quick);
        else if (common_.full)
            value = std::move(full);
    }

    /// For a program started as several processes (MPI ranks, ch310_sync_batchnorm): each parses
    /// the same command line, and all but one are made silent. A silent one prints nothing
    /// (--help, errors, the runtime summary) and leaves --out alone (it writes nothing there).
    void silent(bool is_silent) { silent_ = is_silent; }

    /// Parses the command line. Returns nothing to go on, or the exit code to return at once:
    /// 0 after --help, 2 after an error (printed as "program: <sentence>").
    std::optional<int> parse(int argc, char** argv);

    /// After parse(): checks --dataset (both splits load; so a wrong one leaves no --out behind),
    /// applies --threads (tg::set_num_threads) and --kernels, and makes --out, checking it can be
    /// written by creating and removing a file there. Throws std::runtime_error naming the
    /// dataset or the directory if not. With --detect-anomaly, starts a
    /// tg::DetectAnomaly guard that lasts as long as this Cli (the thread that trains).
    /// Returns --out.
    std::filesystem::path prepare() const;

    CLI::App& app() { return app_; }
    const std::string& program() const { return program_; }

  private:
    void add_limit(CLI::Option* opt, const std::string& name, Limit limit, NumberKind kind);
    void add_choices(CLI::Option* opt, const std::string& name, std::vector<std::string> choices,
                     bool is_list);
    std::string unknown_flag_message() const;

    std::string program_;
    CLI::App app_;
    CommonFlags common_;
    std::string quick_help_ = "a fast run for the tests (seconds)";
    CLI::Option* quick_option_ = nullptr;
    bool silent_ = false;
    bool with_dataset_ = false;
    std::string plain_error_;  // set by a failing range check, printed instead of CLI11's text
    mutable std::optional<tg::DetectAnomaly> anomaly_guard_;  // --detect-anomaly, from prepare()
};

/// Checks that `dir` can be written: creates it (and its parents) and a file in it, then
/// removes the file. Throws std::runtime_error "cannot write into <flag> <dir>: <reason>".
void check_writable(const std::filesystem::path& dir, const std::string& flag = "--out");

/// A batch size larger than the `n` examples it is drawn from, capped at n with one line
/// saying so ("ch310_train_cnn: --batch-size 9000 is more than the 2000 training images;
/// using 2000"). Returns the batch size to use.
std::size_t cap_batch_size(const std::string& program, const std::string& flag,
                           std::size_t batch_size, std::size_t n, const std::string& what);

/// One line for a training run whose loss is not finite: "training diverged at step S (epoch E):
/// the loss is nan; try a smaller --lr, and --detect-anomaly to name the op that first made a
/// NaN or Inf". Thrown as std::runtime_error by the programs that train; their main prints it
/// after the program's name and exits 1.
std::string diverged_message(std::size_t step, std::size_t epoch, double loss);

}  // namespace tg::examples
