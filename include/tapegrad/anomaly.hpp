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
// tape pays one test of a thread-local counter per recorded op and per entry of the backward
// walk (measured in docs/debugging.md); ops not recorded (no tape, or no input requiring grad)
// are never checked.
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

/// The NaN/Inf counts of the grads of `entry`'s inputs (0 for an input without a grad), taken
/// by Tape::backward before the entry's backward runs.
std::vector<std::size_t> count_input_grad_anomalies(const TapeEntry& entry);

/// Throws AnomalyError if the backward of entries[index] left more NaN/Inf in an input's grad
/// than `before` (count_input_grad_anomalies before it ran) (called by Tape::backward).
void check_backward(const std::vector<TapeEntry>& entries, std::size_t index,
                    const std::vector<std::size_t>& before);

}  // namespace detail

}  // namespace tg
