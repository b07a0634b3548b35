#include "progress.hpp"

#include <unistd.h>

#include <cstdio>

namespace tg::examples {

namespace {

double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

// A bar of `width` cells, done/total of them filled.
std::string bar(std::size_t done, std::size_t total, std::size_t width) {
    const std::size_t filled = total == 0 ? width : width * done / total;
    std::string s;
    for (std::size_t i = 0; i < width; ++i)
        s += i < filled ? "█" : "░";
    return s;
}

}  // namespace

bool stdout_is_terminal() {
    return ::isatty(STDOUT_FILENO) == 1;
}

EpochProgress::EpochProgress(std::string run, std::size_t epoch, std::size_t epochs,
                             std::size_t steps)
    : steps_(steps), tty_(stdout_is_terminal()), start_(Clock::now()) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%-6s epoch %zu/%zu", run.c_str(), epoch, epochs);
    prefix_ = buf;
}

void EpochProgress::update(std::size_t done, double loss, double acc, std::size_t examples) {
    if (!tty_) return;
    const auto now = Clock::now();
    if (done != steps_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    std::printf("\r%s %s %4zu/%zu  loss %.4f  acc %6.2f%%  %6.0f ex/s\033[K", prefix_.c_str(),
                bar(done, steps_, 12).c_str(), done, steps_, loss, 100.0 * acc,
                static_cast<double>(examples) / elapsed());
    std::fflush(stdout);
}

void EpochProgress::finish(double loss, double acc, double test_loss, double test_acc,
                           std::size_t examples, double seconds) {
    std::printf("%s%s  train loss %.4f  acc %6.2f%%   test loss %.4f  acc %6.2f%%%s\n",
                tty_ ? "\r" : "", prefix_.c_str(), loss, 100.0 * acc, test_loss, 100.0 * test_acc,
                tty_ ? "\033[K" : "");
    std::printf("%*s%.1f s, %.0f ex/s\n", static_cast<int>(prefix_.size()) + 2, "", seconds,
                static_cast<double>(examples) / seconds);
    std::fflush(stdout);
}

double EpochProgress::elapsed() const {
    return seconds_since(start_);
}

SweepProgress::SweepProgress(std::size_t total)
    : total_(total), tty_(stdout_is_terminal()), start_(Clock::now()) {}

void SweepProgress::start(std::size_t index, std::string label) {
    index_ = index;
    label_ = std::move(label);
    last_draw_ = {};
}

void SweepProgress::step(std::size_t done, std::size_t steps, double loss) {
    if (!tty_) return;
    const auto now = Clock::now();
    if (done != steps && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    // At most 79 columns: "[ 12/42] " + label (<= 28) + bar 10 + step counts + loss.
    std::printf("\r[%3zu/%zu] %-28.28s %s %5zu/%-5zu loss %.3g\033[K", index_ + 1, total_,
                label_.c_str(), bar(done, steps, 10).c_str(), done, steps, loss);
    std::fflush(stdout);
}

void SweepProgress::finish(const std::string& summary) {
    ++finished_;
    if (tty_) {
        std::printf("\r[%3zu/%zu] %-28.28s %-36.36s\033[K", index_ + 1, total_, label_.c_str(),
                    summary.c_str());
        std::fflush(stdout);
        return;
    }
    // Not a terminal: a line at 25%, 50%, 75% and 100% of the runs.
    const std::size_t quarter = (4 * finished_) / total_;
    const std::size_t before = (4 * (finished_ - 1)) / total_;
    if (quarter != before) {
        std::printf("  %zu/%zu runs done, %.0f s\n", finished_, total_, seconds_since(start_));
        std::fflush(stdout);
    }
}

void SweepProgress::done() {
    if (tty_) std::printf("\r%zu runs in %.0f s\033[K\n", total_, seconds_since(start_));
    std::fflush(stdout);
}

}  // namespace tg::examples
