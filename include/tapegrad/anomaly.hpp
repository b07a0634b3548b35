// tapegrad/anomaly.hpp — DetectAnomaly: stop at the first NaN or Inf, naming the op that made it
// (PyTorch's torch.autograd.detect_anomaly).
//
//     tg::DetectAnomaly guard;       // for this thread, while `guard` lives
//     tg::Tape tape;
//     auto loss = ...;               // each recorded op's output is checked as it is recorded
//     tape.backward(loss);           // each entry's backward: the gradients it computed
//
// The first non-finite value throws tg::AnomalyError: which tape entry (its index, op, input
// names and shapes), forward or backward, how many NaN/Inf values and where the first one is.
// Under gdb, `catch throw` stops right there (docs/debugging.md). Without a live guard the
// tape pays one test of a thread-local counter per op; ops not recorded (no tape, or no input
// requiring grad) are never checked.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

namespace tg {

struct TapeEntry;

/// Thrown at the first NaN or Inf found while a DetectAnomaly guard is alive.
class AnomalyError : public std::runtime_error {
  public:
    AnomalyError(const std::string& message, std::size_t entry, const char* op_name, bool backward)
        : std::runtime_error(message), entry_index(entry), op(op_name), in_backward(backward) {}
    std::size_t entry_index;  // the tape entry: "%5" is entry 5
    const char* op;           // "batch_norm"
    bool in_backward;         // false: the op's output; true: a gradient its backward computed
};

/// RAII: while alive (guards nest), this thread's tapes check every recorded op's output and
/// every gradient a backward computes for NaN and Inf, and throw AnomalyError at the first.
class DetectAnomaly {
  public:
    DetectAnomaly();
    ~DetectAnomaly();
    DetectAnomaly(const DetectAnomaly&) = delete;
    DetectAnomaly& operator=(const DetectAnomaly&) = delete;
};

namespace detail {

/// The number of DetectAnomaly guards alive in this thread: the one flag the tape tests.
extern thread_local int anomaly_guards;

/// Throws AnomalyError if the output of entries[index] has a NaN or Inf (called by Tape::record).
void check_forward(const std::vector<TapeEntry>& entries, std::size_t index);

/// Wraps one entry's backward in Tape::backward: counts the NaN/Inf already in its inputs'
/// grads, then after the call throws AnomalyError if the call added any. Does nothing (one
/// test of the flag) without a guard.
class BackwardCheck {
  public:
    BackwardCheck(const std::vector<TapeEntry>& entries, const TapeEntry& entry)
        : entries_(entries), entry_(entry) {
        if (anomaly_guards != 0) snapshot();
    }
    void after_backward() const {
        if (active_) verify();
    }

  private:
    void snapshot();
    void verify() const;

    const std::vector<TapeEntry>& entries_;
    const TapeEntry& entry_;
    bool active_ = false;
    std::vector<std::size_t> before_;  // non-finite values in each input's grad before the call
};

}  // namespace detail

}  // namespace tg
