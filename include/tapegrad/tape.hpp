// tapegrad/tape.hpp — the Wengert list that records ops and walks them back.
//
// While a Tape lives it is its thread's active tape. Every op with an input that requires
// grad appends one entry {op, inputs, output, backward}. Entries are in execution order, so
// the backward pass is a plain reverse loop: when entry i is reached, every later use of its
// output has already pushed its gradient into output.grad.
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tapegrad/tensor.hpp"

namespace tg {

class Tape;

namespace detail {
/// One link in the thread's stack of recording scopes (a Tape, or a NoGradGuard with
/// `tape == nullptr`). The top of the stack is the active tape. A doubly linked list, so a
/// scope destroyed out of order (two unique_ptr<Tape> reset first-made-first) unlinks itself
/// wherever it is and never restores a scope that is already gone.
struct ScopeLink {
    Tape* tape = nullptr;
    ScopeLink* below = nullptr;
    ScopeLink* above = nullptr;
};
/// The tape_id of a tensor whose tape has been destroyed (its backward closures are gone).
inline constexpr std::uint64_t kDestroyedTape = ~std::uint64_t{0};
}  // namespace detail

/// The interface of a recorded backward closure (see BackwardFn).
struct BackwardClosure {
    virtual ~BackwardClosure() = default;
    virtual void operator()(const Array& grad_output) = 0;
};

/// A callable of type F that is not a BackwardClosure (a lambda recorded for an op of one's own,
/// as tests/test_tape.cpp does; the library's ops record named structs) behind that interface.
template <class F>
struct BackwardClosureOf final : BackwardClosure {
    explicit BackwardClosureOf(F f) : fn(std::move(f)) {}
    void operator()(const Array& grad_output) override { fn(grad_output); }
    F fn;
};

/// Receives d loss / d output and accumulates d loss / d input into each input's grad: any
/// callable `void(const Array& grad_output)`. Every op of the library records a struct deriving
/// from BackwardClosure (a named backward, e.g. BatchNormBackward in src/ops/normalization.cpp,
/// MulBackward in src/ops/elementwise.cpp), kept as it is, so the tape's virtual call lands in
/// it directly; any other callable (a lambda recorded for an op of one's own) is wrapped in
/// BackwardClosureOf. Not std::function: calling through it is one virtual call, so in a
/// debugger's backtrace the op's backward sits one frame above Tape::backward (a lambda: two;
/// std::function puts four frames of its own plumbing there). Copies share the closure.
class BackwardFn {
  public:
    BackwardFn() = default;
    template <class F>
    requires(!std::is_same_v<std::decay_t<F>, BackwardFn> &&
             std::is_invocable_v<std::decay_t<F>&, const Array&>)
        BackwardFn(F f)  // NOLINT(google-explicit-constructor): ops pass their struct directly
        : closure_(make_closure(std::move(f))) {}

    explicit operator bool() const { return closure_ != nullptr; }
    /// The closure itself: Tape::backward calls `backward.closure()(grad)` so that no frame of
    /// BackwardFn's own stands between the tape and the op.
    BackwardClosure& closure() const { return *closure_; }
    void operator()(const Array& grad_output) const { (*closure_)(grad_output); }

  private:
    // A BackwardClosure (a named backward struct) is kept as it is; any other callable is wrapped.
    template <class F>
    static std::shared_ptr<BackwardClosure> make_closure(F f) {
        if constexpr (std::is_base_of_v<BackwardClosure, F>)
            return std::make_shared<F>(std::move(f));
        else
            return std::make_shared<BackwardClosureOf<F>>(std::move(f));
    }
    std::shared_ptr<BackwardClosure> closure_;
};

/// One recorded op.
struct TapeEntry {
    const char* op;              // "matmul", "batch_norm", ...
    std::vector<Tensor> inputs;  // kept alive until the tape is destroyed
    Tensor output;
    BackwardFn backward;
    double forward_seconds = 0.0;   // with profiling: time since the previous entry was recorded
    double backward_seconds = 0.0;  // with profiling: time spent in `backward`
};

class Tape {
  public:
    /// Starts recording: this tape becomes the thread's active tape (the previous one, if
    /// any, is restored when this one is destroyed). Tapes may be destroyed in any order; a
    /// Tape belongs to the thread that made it. Destroying it marks the tensors it produced,
    /// so a later backward through them is an error instead of a silently lost gradient.
    Tape();
    ~Tape();
    Tape(const Tape&) = delete;
    Tape& operator=(const Tape&) = delete;

    /// The thread's active tape, or nullptr (nothing is recorded).
    static Tape* active();

    /// Appends an entry and marks `output` as produced here (requires_grad = true).
    void record(const char* op, std::vector<Tensor> inputs, Tensor& output, BackwardFn backward);

    /// Seeds d loss / d loss = 1 for a one-element `loss` and walks the entries in reverse.
    void backward(const Tensor& loss);
    /// Same, seeding d loss / d output = `grad_output` (same shape as `output`).
    void backward(const Tensor& output, const Array& grad_output);

    std::size_t size() const { return entries_.size(); }
    const std::vector<TapeEntry>& entries() const { return entries_; }
    std::uint64_t id() const { return id_; }

    /// Times every entry from now on: its forward (wall time since the previous entry was
    /// recorded, or since this call) and its backward closure. See print_profile.
    void enable_profiling();
    bool profiling() const { return profiling_; }
    /// A table of the entries with their forward and backward milliseconds and share of the
    /// total: where the time of one training step goes.
    void print_profile(std::ostream& out) const;

    /// Lists the entries: index, op, input names/shapes and output shape.
    void print(std::ostream& out) const;
    /// A Graphviz (dot) description of the recorded graph: leaves as boxes, ops as ellipses.
    std::string to_dot() const;

  private:
    // Throws if a tensor on the way from `output` back to the leaves was produced on a tape
    // that has been destroyed.
    void check_no_destroyed_tape_inputs(const Tensor& output) const;
    // The reverse walk's steps (see backward): the checks and the seed, then the last entry
    // leading to `output`; after an entry's backward ran, its bookkeeping and the entry before
    // it that leads to `output`; the entry before entries_[end] that does (nullptr: none left).
    TapeEntry* start_backward(const Tensor& output, const Array& grad_output);
    TapeEntry* next_entry(TapeEntry& done);
    TapeEntry* previous_entry(std::size_t end);

    detail::ScopeLink link_;
    std::uint64_t id_;
    bool walked_ = false;
    bool profiling_ = false;
    std::chrono::steady_clock::time_point last_mark_{};
    std::vector<TapeEntry> entries_;
    // Under a DetectAnomaly guard: the NaN/Inf counts of the running entry's inputs' grads
    // before its backward, so that only the ones it adds are reported.
    bool anomaly_armed_ = false;
    std::vector<std::size_t> anomaly_before_;
};

/// The tape an op must record on: the active tape if any input requires grad, else nullptr.
template <class... T>
Tape* recording_tape(const T&... inputs) {
    Tape* tape = Tape::active();
    if (tape == nullptr) return nullptr;
    return (inputs.requires_grad() || ...) ? tape : nullptr;
}

/// RAII: while alive, no tape is active (nothing is recorded), like torch.no_grad().
class NoGradGuard {
  public:
    NoGradGuard();
    ~NoGradGuard();
    NoGradGuard(const NoGradGuard&) = delete;
    NoGradGuard& operator=(const NoGradGuard&) = delete;

  private:
    detail::ScopeLink link_;
};

}  // namespace tg
