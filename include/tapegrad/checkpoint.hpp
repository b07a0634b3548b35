// tapegrad/checkpoint.hpp — gradient checkpointing, and running statistics that stand still.
//
// A plain forward pass leaves every intermediate activation on the tape until backward.
// tg::checkpoint(fn, inputs...) runs fn's forward, keeps only its inputs and output, and
// records ONE tape entry; when backward reaches that entry it runs fn's forward again
// (recomputation) on a tape of its own and walks that tape back. Memory: the activations
// inside fn live only while its entry is being walked back, for the price of a second forward.
// (torch.utils.checkpoint.checkpoint.)
//
// The gotcha: a module that changes state in its forward changes it twice. BatchNorm in
// training mode updates running_mean/running_var and counts num_batches_tracked in the
// recomputation as well, exactly as PyTorch's checkpoint does. CheckpointOptions{
// .recompute_updates_running_stats = false} recomputes inside a NoStatsUpdateGuard, so each
// batch is counted once and the statistics match a run without checkpointing.
#pragma once

#include <concepts>
#include <cstddef>
#include <functional>
#include <utility>
#include <vector>

#include "tapegrad/tensor.hpp"

namespace tg {

/// True unless a NoStatsUpdateGuard is alive on this thread: whether normalisation layers in
/// training mode may update their running statistics (BatchNorm's running_mean, running_var,
/// num_batches_tracked).
bool running_stats_update_enabled();

/// RAII: while alive, normalisation layers in training mode still normalise with the batch's
/// statistics (the output and gradients are unchanged) but leave their running statistics
/// and num_batches_tracked alone, as with momentum 0. Nests; restores the previous setting.
class NoStatsUpdateGuard {
  public:
    NoStatsUpdateGuard();
    ~NoStatsUpdateGuard();
    NoStatsUpdateGuard(const NoStatsUpdateGuard&) = delete;
    NoStatsUpdateGuard& operator=(const NoStatsUpdateGuard&) = delete;

  private:
    bool saved_;
};

/// True while tg::checkpoint recomputes a forward during backward (on this thread), as
/// fairscale's is_recomputing(): for code that must behave differently the second time.
bool is_recomputing();

struct CheckpointOptions {
    /// true (PyTorch's behaviour): the recomputation runs fn exactly as the forward did, so a
    /// BatchNorm in training mode updates its running statistics a second time per step.
    /// false: the recomputation runs inside a NoStatsUpdateGuard (counted once per step).
    bool recompute_updates_running_stats = true;
    /// true (PyTorch's preserve_rng_state=True): every generator fn draws from (the default
    /// one, a Dropout's own) is set back to its state at the forward before the recomputation
    /// and returned to its current state after it, so the recomputation draws the same numbers
    /// (the same dropout masks) and the gradients are the plain run's. false: fn draws new
    /// numbers the second time.
    bool preserve_rng_state = true;
};

/// The function a checkpoint runs: y = fn(inputs).
using CheckpointFn = std::function<Tensor(const std::vector<Tensor>& inputs)>;

/// y = fn(inputs) with one tape entry "checkpoint" instead of fn's entries; backward reruns fn
/// (forward on a tape of its own, then that tape's backward seeded with dL/dy), so dL/dx for
/// every input and every parameter fn uses equals the plain run's. The first forward records
/// on a scratch tape (discarded at once) only to learn which tensors requiring grad fn reads
/// (parameters it captures are found, unlike PyTorch's reentrant checkpoint, which needs an
/// input requiring grad); they are the entry's inputs. fn must compute the same thing both
/// times: its random draws are replayed (options.preserve_rng_state), its inputs must not
/// change in between. y is a copy of fn's result, which keeps its own value.
Tensor checkpoint(const CheckpointFn& fn, std::vector<Tensor> inputs,
                  CheckpointOptions options = {});

/// y = fn(x0, x1, ...) checkpointed, for a callable taking the tensors one by one:
///     tg::Tensor h = tg::checkpoint([&](const tg::Tensor& x) { return block(x); }, x);
template <class Fn, class... T>
requires(std::convertible_to<const T&, const Tensor&>&&...) Tensor
    checkpoint(Fn&& fn, const T&... inputs) {
    return checkpoint(CheckpointOptions{}, std::forward<Fn>(fn), inputs...);
}

/// The same with options:
///     tg::checkpoint({.recompute_updates_running_stats = false}, block_fn, x)
template <class Fn, class... T>
requires(std::convertible_to<const T&, const Tensor&>&&...) Tensor
    checkpoint(CheckpointOptions options, Fn&& fn, const T&... inputs) {
    CheckpointFn unpacked = [f = std::forward<Fn>(fn)](const std::vector<Tensor>& xs) {
        return [&]<std::size_t... I>(std::index_sequence<I...>) {
            return f(xs[I]...);
        }
        (std::index_sequence_for<T...>{});
    };
    return checkpoint(unpacked, std::vector<Tensor>{inputs...}, options);
}

}  // namespace tg
