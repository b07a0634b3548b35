#include "tapegrad/checkpoint.hpp"

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <utility>

#include "tapegrad/random.hpp"
#include "tapegrad/tape.hpp"

namespace tg {

namespace {
thread_local bool stats_update_enabled = true;
thread_local bool recomputing = false;

// RAII: is_recomputing() is true while alive.
class RecomputeScope {
  public:
    RecomputeScope() : saved_(recomputing) { recomputing = true; }
    ~RecomputeScope() { recomputing = saved_; }
    RecomputeScope(const RecomputeScope&) = delete;
    RecomputeScope& operator=(const RecomputeScope&) = delete;

  private:
    bool saved_;
};
/// checkpoint's backward (the closure it records): runs fn's forward again, then its backward.
struct CheckpointBackward final : BackwardClosure {
    CheckpointBackward(CheckpointFn f, std::vector<Tensor> xs, CheckpointOptions opts,
                       GeneratorStates forward_rng)
        : fn(std::move(f)),
          inputs(std::move(xs)),
          options(opts),
          rng_at_forward(std::move(forward_rng)) {}

    void operator()(const Array& dy) override {
        // Recompute: fn's forward again, on a tape of its own, then its backward seeded with
        // dL/dy. That tape's closures add dL/dx into the inputs' and parameters' grads, which
        // are the very nodes the outer tape holds, so its walk goes on from there.
        const RecomputeScope recompute;
        std::unique_ptr<NoStatsUpdateGuard> frozen;
        if (!options.recompute_updates_running_stats)
            frozen = std::make_unique<NoStatsUpdateGuard>();
        // preserve_rng_state: every generator fn drew from is put back where it was when the
        // forward began, so the recomputation draws the same numbers (the same dropout masks);
        // afterwards each goes back to where it is now, so the caller's stream is undisturbed
        // (PyTorch's fork_rng around the recomputation).
        const GeneratorStates rng_now = rng_at_forward.current();
        struct PutBack {
            const GeneratorStates& states;
            ~PutBack() { states.restore(); }
        } put_back{rng_now};
        rng_at_forward.restore();
        Tape inner;
        const Tensor y = fn(inputs);
        frozen.reset();
        if (y.shape() != dy.shape()) {
            throw std::logic_error("checkpoint: the recomputed output has shape " +
                                   shape_str(y.shape()) + ", the forward's had " +
                                   shape_str(dy.shape()) + " (fn must compute the same thing)");
        }
        if (y.node().tape_id == inner.id()) {
            inner.backward(y, dy);
        } else if (y.requires_grad()) {
            y.accumulate_grad(dy);  // fn returned one of its inputs (or a leaf) unchanged
        }
    }

    CheckpointFn fn;
    std::vector<Tensor> inputs;
    CheckpointOptions options;
    GeneratorStates rng_at_forward;  // empty unless options.preserve_rng_state
};
}  // namespace

bool running_stats_update_enabled() {
    return stats_update_enabled;
}

NoStatsUpdateGuard::NoStatsUpdateGuard() : saved_(stats_update_enabled) {
    stats_update_enabled = false;
}

NoStatsUpdateGuard::~NoStatsUpdateGuard() {
    stats_update_enabled = saved_;
}

bool is_recomputing() {
    return recomputing;
}

Tensor checkpoint(const CheckpointFn& fn, std::vector<Tensor> inputs, CheckpointOptions options) {
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        if (!inputs[i].defined()) {
            throw std::invalid_argument("checkpoint: input " + std::to_string(i) +
                                        " is an undefined tensor");
        }
    }
    Tape* outer = Tape::active();
    if (outer == nullptr) return fn(inputs);  // nothing records: a plain call

    // The forward, on a scratch tape: its entries tell which tensors that require grad fn read
    // (the inputs, and parameters the callable captured). The tape and with it every
    // intermediate activation of fn is freed when this block ends; only y's value is kept.
    std::vector<Tensor> reads;  // what the entry will keep: inputs first, then the rest
    Array y_value;
    bool records = false;
    GeneratorStates rng_at_forward;
    {
        Tape scratch;
        std::optional<GeneratorStates::Recording> rng_recording;
        if (options.preserve_rng_state) rng_recording.emplace(rng_at_forward);
        const Tensor y = fn(inputs);
        rng_recording.reset();
        if (!y.defined())
            throw std::invalid_argument("checkpoint: fn returned an undefined tensor");
        std::unordered_set<const Node*> seen, produced;
        for (const auto& e : scratch.entries())
            produced.insert(&e.output.node());
        for (const auto& x : inputs) {
            if (seen.insert(&x.node()).second) reads.push_back(x);
        }
        for (const auto& e : scratch.entries()) {
            for (const auto& in : e.inputs) {
                const Node* n = &in.node();
                if (in.requires_grad() && !produced.count(n) && seen.insert(n).second) {
                    reads.push_back(in);
                }
            }
        }
        // y depends on something requiring grad iff it was recorded (or is such an input).
        records = y.requires_grad();
        // A copy, never a move: other handles to fn's result may live on (a variable the
        // caller captured, the output a forward hook stored) and must keep their value.
        y_value = y.value();
    }
    Tensor out(std::move(y_value));
    if (!records) return out;

    outer->record("checkpoint", std::move(reads), out,
                  CheckpointBackward(fn, std::move(inputs), options, std::move(rng_at_forward)));
    return out;
}

}  // namespace tg
