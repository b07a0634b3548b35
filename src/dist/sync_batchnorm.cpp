#include "tapegrad/dist/sync_batchnorm.hpp"

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "../ops/kernels/batch_norm.hpp"
#include "../ops/tape_inputs.hpp"
#include "kernels/sync_batch_norm.hpp"
#include "tapegrad/dist/moments.hpp"
#include "tapegrad/ops/normalization.hpp"
#include "tapegrad/tape.hpp"

namespace tg::dist {

const kernels::KernelSet kernels::reference_set = {reference::local_moments, reference::normalize,
                                                   reference::backward_reduce,
                                                   reference::backward_dx};
const kernels::KernelSet kernels::fast_set = {fast::local_moments, fast::normalize,
                                              fast::backward_reduce, fast::backward_dx};

namespace {

/// The kernel set in use (tg::set_kernels), as the core's ops pick theirs.
const kernels::KernelSet& kernels_in_use_here() {
    return kernels_in_use() == Kernels::reference ? kernels::reference_set : kernels::fast_set;
}

std::size_t trailing_size(const Shape& shape) {
    std::size_t n = 1;
    for (std::size_t i = 2; i < shape.size(); ++i)
        n *= shape[i];
    return n;
}

const real* data_or_null(const Tensor& t) {
    return t.defined() ? t.value().data() : nullptr;
}

/// SyncBatchNorm's backward (the closure sync_batch_norm records): this rank's Σdy and
/// Σdy·x̂ per channel give its dβ and dγ; their sum over the ranks gives dx with the global B.
/// Every rank runs it, in the same order, since it holds a collective.
struct SyncBatchNormBackward final : BackwardClosure {
    SyncBatchNormBackward(const Context& context, const kernels::KernelSet& set,
                          const Tensor& input, const Tensor& gamma, const Tensor& beta,
                          std::vector<double> batch_mean, std::vector<double> batch_invstd,
                          std::size_t n, std::size_t c, std::size_t l, double b)
        : ctx(context),
          k(set),
          x(input),
          weight(gamma),
          bias(beta),
          mean(std::move(batch_mean)),
          invstd(std::move(batch_invstd)),
          N(n),
          C(c),
          L(l),
          B(b) {}

    void operator()(const Array& dy) override {
        const real* xd = x.value().data();
        // This rank's Σdy and Σdy·x̂ per channel: its dβ and dγ.
        std::vector<double> sums(2 * C);
        k.backward_reduce(sums.data(), sums.data() + C, xd, dy.data(), mean.data(), invstd.data(),
                          N, C, L);
        if (weight.defined() && weight.requires_grad()) {
            Array dw = new_array({C});
            for (std::size_t c = 0; c < C; ++c)
                dw.data()[c] = static_cast<real>(sums[C + c]);
            weight.accumulate_grad(std::move(dw));
        }
        if (bias.defined() && bias.requires_grad()) {
            Array db = new_array({C});
            for (std::size_t c = 0; c < C; ++c)
                db.data()[c] = static_cast<real>(sums[c]);
            bias.accumulate_grad(std::move(db));
        }
        // Σ over the ranks (every rank runs this backward), then dx with the global B.
        ctx.all_reduce_sum(sums.data(), sums.size());
        if (x.requires_grad()) {
            Array dx = new_array(x.shape());
            k.backward_dx(dx.data(), xd, dy.data(), mean.data(), invstd.data(),
                          data_or_null(weight), sums.data(), sums.data() + C, N, C, L, B);
            x.accumulate_grad(std::move(dx));
        }
    }

    const Context& ctx;
    const kernels::KernelSet& k;
    Tensor x, weight, bias;
    std::vector<double> mean, invstd;  // [C]: the global μ_B and 1/√(σ²_B + ε)
    std::size_t N, C, L;               // x seen as [N, C, L]
    double B;                          // values per channel over all ranks
};

}  // namespace

Tensor sync_batch_norm(const Context& ctx, const Tensor& x, const Tensor& running_mean,
                       const Tensor& running_var, const Tensor& weight, const Tensor& bias,
                       bool training, double momentum, double eps) {
    const char* op = "sync_batch_norm";
    // Eval with running statistics: nothing to synchronise, it is batch_norm (which also checks
    // the arguments). Without running statistics, eval uses the (global) batch statistics.
    if (!training && running_mean.defined())
        return batch_norm(x, running_mean, running_var, weight, bias, false, momentum, eps);
    // Every rank checks its own arguments, then all agree before the statistics' all-gather:
    // a rank whose weight has another shape (or whose input has another channel count) makes
    // every rank throw the same error, instead of throwing alone and leaving the others
    // waiting in the collective (or, with another C, MPI_Allgather failing on some ranks).
    std::string error;
    const Shape shape = x.shape();
    if (x.dim() < 2) {
        error = "input " + shape_str(shape) + " has rank " + std::to_string(x.dim()) +
                ", expected rank 2 or more ([N, C, *])";
    }
    const std::size_t N = error.empty() ? shape[0] : 0, C = error.empty() ? shape[1] : 0;
    const std::size_t L = error.empty() ? trailing_size(shape) : 0;
    for (const auto& [what, t] :
         {std::pair{"weight", &weight}, std::pair{"bias", &bias},
          std::pair{"running_mean", &running_mean}, std::pair{"running_var", &running_var}}) {
        if (error.empty() && t->defined() && t->shape() != Shape{C}) {
            error = std::string(what) + " has shape " + shape_str(t->shape()) + ", expected [" +
                    std::to_string(C) + "] (one per channel of input " + shape_str(shape) + ")";
        }
    }
    if (error.empty() && running_mean.defined() != running_var.defined()) {
        error = "running_mean and running_var must be both defined or both undefined";
    }
    // The token: the channel count, which must be the same on every rank.
    ctx.agree(op, error, static_cast<std::uint64_t>(C), "channels");
    const kernels::KernelSet& k = kernels_in_use_here();
    const real* xp = x.value().data();
    const std::size_t P = static_cast<std::size_t>(ctx.world_size());

    // This rank's statistics: [n_r, mean_r[0..C), M2_r[0..C)], gathered from every rank.
    const std::size_t stride = 1 + 2 * C;
    std::vector<double> mine(stride);
    mine[0] = static_cast<double>(N * L);
    k.local_moments(mine.data() + 1, mine.data() + 1 + C, xp, N, C, L);
    const std::vector<double> all = ctx.all_gather(mine);

    // Merged in rank order, the same on every rank (Chan, Golub & LeVeque; tapegrad/dist/
    // moments.hpp, unit-tested without MPI against the statistics of the concatenated batch).
    MergedMoments merged = merge_moments(all, P, C);
    const double B = merged.count;
    std::vector<double> mean = std::move(merged.mean);
    const std::vector<double> m2 = std::move(merged.m2);
    if (B <= 1.0) {
        std::string counts;
        for (std::size_t r = 0; r < P; ++r)
            counts += (r ? ", " : "") + std::to_string(static_cast<std::size_t>(all[r * stride]));
        throw std::invalid_argument(std::string(op) +
                                    ": expected more than 1 value per channel across all ranks "
                                    "when training, got " +
                                    std::to_string(static_cast<std::size_t>(B)) +
                                    " (values per channel on ranks 0..: " + counts + "; input " +
                                    shape_str(shape) + " on " + ctx.where() + ")");
    }

    // σ²_B = M2/B (biased) normalises; running_var tracks M2/(B − 1) (unbiased, global B).
    std::vector<double> invstd(C);
    for (std::size_t c = 0; c < C; ++c)
        invstd[c] = 1.0 / std::sqrt(m2[c] / B + eps);
    if (training && running_mean.defined()) {
        // BatchNorm's update (kernels/reference/batch_norm.cpp) with the global μ_B, the biased
        // σ²_B = M2/B and the global B: running_var tracks σ²_B·B/(B − 1) = M2/(B − 1).
        std::vector<double> var(C);
        for (std::size_t c = 0; c < C; ++c)
            var[c] = m2[c] / B;
        tg::kernels::reference::batch_norm_update_running(
            Tensor(running_mean).value().data(), Tensor(running_var).value().data(), mean.data(),
            var.data(), C, static_cast<std::size_t>(B), momentum);
    }

    Array y = new_array(shape);
    k.normalize(y.data(), xp, mean.data(), invstd.data(), data_or_null(weight), data_or_null(bias),
                N, C, L);
    Tensor out(std::move(y));

    std::vector<Tensor> inputs;
    if (Tape* tape = tg::detail::recording_tape_of_defined({x, weight, bias}, inputs)) {
        tape->record(op, std::move(inputs), out,
                     SyncBatchNormBackward(ctx, k, x, weight, bias, std::move(mean),
                                           std::move(invstd), N, C, L, B));
    }
    return out;
}

}  // namespace tg::dist

namespace tg::nn {

SyncBatchNorm::SyncBatchNorm(const dist::Context& ctx, std::size_t channels, BatchNormOptions opts)
    : BatchNorm(channels, opts), ctx_(&ctx) {}

SyncBatchNorm::SyncBatchNorm(const dist::Context& ctx, BatchNorm& bn)
    : BatchNorm(TakeOver{}, bn), ctx_(&ctx) {}

Tensor SyncBatchNorm::forward(const Tensor& x) {
    // Eval mode never communicates, as PyTorch's SyncBatchNorm ("don't sync batchnorm stats in
    // inference mode"): BatchNorm's forward, i.e. the running statistics, or without them this
    // rank's own batch statistics. So one rank may evaluate alone.
    if (!is_training()) return BatchNorm::forward(x);
    check_input_dim(x);
    if (recomputing()) {  // under tg::checkpoint's recomputation: statistics, no update
        return dist::sync_batch_norm(*ctx_, x, Tensor{}, Tensor{}, weight, bias, true, 0.0,
                                     options.eps);
    }
    const double factor = count_batch();
    return dist::sync_batch_norm(*ctx_, x, running_mean, running_var, weight, bias, true, factor,
                                 options.eps);
}

void SyncBatchNorm::check_input_dim(const Tensor& x) const {
    if (x.dim() < 2) {
        throw std::invalid_argument(
            "SyncBatchNorm" + (name().empty() ? std::string() : " '" + name() + "'") +
            ": expected at least 2D input [N, C, *] (got " + std::to_string(x.dim()) + "D input " +
            shape_str(x.shape()) + ")");
    }
}

std::size_t convert_sync_batchnorm(Module& model, const dist::Context& ctx) {
    if (dynamic_cast<BatchNorm*>(&model) != nullptr &&
        dynamic_cast<SyncBatchNorm*>(&model) == nullptr) {
        throw std::invalid_argument(
            "convert_sync_batchnorm: the model is itself a " + model.type_name() +
            "; it cannot be replaced in place (wrap it in a Sequential, or build a SyncBatchNorm)");
    }
    std::size_t converted = 0;
    for (const auto& [name, child] : model.named_children()) {
        auto* bn = dynamic_cast<BatchNorm*>(child);
        if (bn != nullptr && dynamic_cast<SyncBatchNorm*>(child) == nullptr) {
            model.replace_module(name, std::make_shared<SyncBatchNorm>(ctx, *bn));
            ++converted;
        } else {
            converted += convert_sync_batchnorm(*child, ctx);
        }
    }
    return converted;
}

}  // namespace tg::nn
