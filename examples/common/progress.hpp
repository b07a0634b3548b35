// examples/common/progress.hpp — what a program shows while it trains.
//
// On a terminal a line redrawn in place (\r) at most ten times a second; when the output is a
// file or a pipe (logs, the tests) only the summaries, so a log gets a few lines, not thousands.
// Our own rather than a library (indicators, tqdm-likes): two dozen lines, no dependency.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>

namespace tg::examples {

using Clock = std::chrono::steady_clock;

/// True when standard output is a terminal (progress lines are redrawn in place).
bool stdout_is_terminal();

/// One training epoch: a bar with the step, running loss and accuracy and examples per second,
/// replaced by the epoch's summary (train and test loss and accuracy) when it ends.
class EpochProgress {
  public:
    EpochProgress(std::string run, std::size_t epoch, std::size_t epochs, std::size_t steps);

    /// After step `done` (1-based) with the epoch's running loss and accuracy.
    void update(std::size_t done, double loss, double acc, std::size_t examples);

    /// The epoch's summary (replacing the bar on a terminal), then its timing on its own line.
    void finish(double loss, double acc, double test_loss, double test_acc, std::size_t examples,
                double seconds);

    /// Seconds since construction.
    double elapsed() const;

  private:
    std::string prefix_;
    std::size_t steps_;
    bool tty_;
    Clock::time_point start_, last_draw_{};
};

/// A sweep of many short runs (learning rates x models x seeds): on a terminal one line with
/// the run being trained, its step and loss; elsewhere a line at each quarter of the runs.
class SweepProgress {
  public:
    /// `total` runs in all.
    explicit SweepProgress(std::size_t total);

    /// Run number `index` (from 0) starts; `label` says which ("BN  lr 0.1  seed 2").
    void start(std::size_t index, std::string label);
    /// Its step `done` of `steps`, with the latest loss.
    void step(std::size_t done, std::size_t steps, double loss);
    /// step() as the callback tg::examples::train takes.
    std::function<void(std::size_t, std::size_t, double)> on_step() {
        return
            [this](std::size_t done, std::size_t steps, double loss) { step(done, steps, loss); };
    }
    /// It ended; `summary` is shown with it on a terminal ("acc 97.3%").
    void finish(const std::string& summary);
    /// Clears the line (terminal) and says how long the sweep took.
    void done();

  private:
    std::size_t total_, index_ = 0, finished_ = 0;
    std::string label_;
    bool tty_;
    Clock::time_point start_, last_draw_{};
};

}  // namespace tg::examples
