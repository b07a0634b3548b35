// SyncBatchNorm over P ranks, each given some of the B rows, against single-process
// BatchNorm (the core's batch_norm, itself checked against PyTorch in tests/test_norm.cpp)
// over all B rows: outputs, input gradients, γ/β gradients, running_mean/var,
// num_batches_tracked, in both kernel paths, for equal and unequal (even empty) shares.
#include <doctest/doctest.h>

#include <numeric>
#include <string>
#include <vector>

#include <xtensor/xview.hpp>

#include "tapegrad/checkpoint.hpp"
#include "tapegrad/dist/sync_batchnorm.hpp"
#include "tapegrad/nn/nn.hpp"
#include "tapegrad/ops/elementwise.hpp"
#include "tapegrad/ops/reduce.hpp"
#include "tapegrad/random.hpp"
#include "tapegrad/tape.hpp"
#include "testing_dist.hpp"

using tg::Array;
using tg::Shape;
using tg::Tensor;
using tg::nn::BatchNormOptions;

namespace {

// Rows [first, first + count) of a [B, ...] array.
Array rows(const Array& a, std::size_t first, std::size_t count) {
    return xt::view(a, xt::range(first, first + count));
}

// How many rows each rank gets: `equal` gives every rank 3; otherwise 3, 0, 2, 1, 4, 3, 0, ...
// (unequal shares, an empty rank from P = 2 on, a rank with one row from P = 4 on). At least
// 3 rows in all: with B = 2 values per channel x̂ = ±1 whatever x, dx is 0 up to ε and
// compares rounding noise.
std::vector<std::size_t> shares(int P, bool equal) {
    std::vector<std::size_t> n(static_cast<std::size_t>(P));
    const std::size_t pattern[] = {3, 0, 2, 1, 4};
    for (std::size_t r = 0; r < n.size(); ++r)
        n[r] = equal ? 3 : pattern[r % 5];
    return n;
}

// Two training steps and one eval forward of BN (BatchNorm1d or BatchNorm2d) on all rows, and
// of SyncBatchNorm on this rank's rows; every number compared.
template <class BN>
void check_equivalence(Shape shape, bool equal, BatchNormOptions options, double centre) {
    const auto& ctx = test_ctx();
    const auto counts = shares(ctx.world_size(), equal);
    const auto r = static_cast<std::size_t>(ctx.rank());
    const std::size_t B = std::accumulate(counts.begin(), counts.end(), std::size_t{0});
    const std::size_t first = std::accumulate(counts.begin(), counts.begin() + r, std::size_t{0});
    const std::size_t mine = counts[r];
    shape[0] = B;
    const std::size_t C = shape[1];
    INFO(ctx.where() << ", rows " << first << ".." << first + mine << " of " << B << ", shape "
                     << tg::shape_str(shape) << ", centre " << centre);

    tg::Generator gen(42);  // the same numbers on every rank
    BN single(C, options);
    tg::nn::SyncBatchNorm sync(ctx, C, options);
    if (options.affine) {
        const Array gamma = tg::normal({C}, 1.0, 0.5, gen), beta = tg::normal({C}, 0.0, 0.5, gen);
        single.weight.value() = gamma;
        sync.weight.value() = gamma;
        single.bias.value() = beta;
        sync.bias.value() = beta;
    }
    for (int step = 0; step < 2; ++step) {
        CAPTURE(step);
        const Array x = tg::normal(shape, centre, 2.0, gen);
        const Array w = tg::normal(shape, 0.0, 1.0, gen);  // loss = Σ w·y, so dy = w
        const Tensor x_all(x, true), x_mine(rows(x, first, mine), true);
        Tensor y_all, y_mine;
        {
            tg::Tape tape;
            y_all = single(x_all);
            tape.backward(tg::sum(tg::mul(y_all, Tensor(w))));
        }
        {
            tg::Tape tape;
            y_mine = sync(x_mine);
            tape.backward(tg::sum(tg::mul(y_mine, Tensor(rows(w, first, mine)))));
        }
        if (mine > 0) {
            CHECK(rel_error(y_mine.value(), rows(y_all.value(), first, mine)) <= kRelTol);
            CHECK(rel_error(x_mine.grad(), rows(x_all.grad(), first, mine)) <= kRelTol);
        }
        if (options.affine) {
            // Each rank's dγ, dβ are its rows' share; their sum is the whole batch's.
            Array dgamma = sync.weight.grad(), dbeta = sync.bias.grad();
            ctx.all_reduce_sum(dgamma);
            ctx.all_reduce_sum(dbeta);
            CHECK(rel_error(dgamma, single.weight.grad()) <= kRelTol);
            CHECK(rel_error(dbeta, single.bias.grad()) <= kRelTol);
            single.zero_grad(true);
            sync.zero_grad(true);
        }
        if (options.track_running_stats) {
            CHECK(rel_error(sync.running_mean.value(), single.running_mean.value()) <= kRelTol);
            CHECK(rel_error(sync.running_var.value(), single.running_var.value()) <= kRelTol);
            CHECK(sync.num_batches_tracked.item() == single.num_batches_tracked.item());
        }
    }
    // Eval: the (identical) running statistics, no communication.
    single.eval();
    sync.eval();
    tg::NoGradGuard no_grad;
    const Array x = tg::normal(shape, centre, 2.0, gen);
    const Tensor y_all = single(Tensor(x)), y_mine = sync(Tensor(rows(x, first, mine)));
    if (mine > 0) CHECK(rel_error(y_mine.value(), rows(y_all.value(), first, mine)) <= kRelTol);
}

struct KernelsGuard {
    explicit KernelsGuard(tg::Kernels k) : saved(tg::kernels_in_use()) { tg::set_kernels(k); }
    ~KernelsGuard() { tg::set_kernels(saved); }
    tg::Kernels saved;
};

}  // namespace

TEST_CASE("SyncBatchNorm over P ranks equals BatchNorm over the whole batch") {
    for (const auto k : {tg::Kernels::reference, tg::Kernels::fast}) {
        KernelsGuard guard(k);
        const std::string path = k == tg::Kernels::reference ? "reference" : "fast";
        CAPTURE(path);
        for (const bool equal : {true, false}) {
            CAPTURE(equal);
            check_equivalence<tg::nn::BatchNorm2d>({0, 3, 4, 5}, equal, {}, 0.5);
            // |μ| ≫ σ: the merged mean/M2 keep σ² exact where Σx² − Bμ² would not.
            check_equivalence<tg::nn::BatchNorm2d>({0, 2, 3, 3}, equal, {}, 300.0);
            check_equivalence<tg::nn::BatchNorm1d>({0, 5}, equal, {.momentum = std::nullopt}, 1.0);
            check_equivalence<tg::nn::BatchNorm1d>({0, 4, 6}, equal, {.affine = false}, -2.0);
        }
    }
}

TEST_CASE("SyncBatchNorm: one value per channel across all ranks is an error on every rank") {
    const auto& ctx = test_ctx();
    tg::nn::SyncBatchNorm bn(ctx, 3);
    // Rank 0 has one row [1, 3], the others none: one value per channel in the global batch.
    const Tensor x = Tensor::zeros({ctx.rank() == 0 ? std::size_t{1} : std::size_t{0}, 3});
    CHECK_THROWS_WITH_AS(bn(x),
                         doctest::Contains("expected more than 1 value per channel across all "
                                           "ranks when training, got 1"),
                         std::invalid_argument);
    // In eval the running statistics are used: no error.
    bn.eval();
    CHECK_NOTHROW(bn(x));
}

TEST_CASE("SyncBatchNorm: another channel count on one rank is an error on every rank") {
    const auto& ctx = test_ctx();
    if (ctx.world_size() < 2) return;
    // Rank 1 has 4 channels, the others 3 (no γ/β or running statistics: nothing of size C
    // that DataParallel's start-up check could have compared).
    const std::size_t C = ctx.rank() == 1 ? 4 : 3;
    tg::nn::SyncBatchNorm bn(ctx, C, {.affine = false, .track_running_stats = false});
    const Tensor x = Tensor::ones({2, C});
    CHECK_THROWS_WITH_AS(bn(x), doctest::Contains("channels differ (rank 0 has 3, rank 1 has 4"),
                         std::invalid_argument);
    ctx.barrier();  // and nobody is left waiting in a collective
}

TEST_CASE(
    "SyncBatchNorm in eval mode does not synchronise: without running statistics, each "
    "rank normalises with its own batch (as PyTorch)") {
    const auto& ctx = test_ctx();
    const auto r = static_cast<std::size_t>(ctx.rank());
    // Every rank its own rows, centred differently, so its batch statistics differ from the
    // global batch's: a synchronised forward would not match BatchNorm on this rank's rows.
    tg::Generator gen(7 + r);
    const Array x = tg::normal({3 + r, 4, 5}, static_cast<double>(r), 1.0 + 0.5 * r, gen);
    const BatchNormOptions untracked{.track_running_stats = false};
    tg::nn::BatchNorm1d local(4, untracked);
    tg::nn::SyncBatchNorm sync(ctx, 4, untracked);
    local.eval();
    sync.eval();
    const Tensor x_local(x, true), x_sync(x, true);
    Tensor y_local, y_sync;
    {
        tg::Tape tape;
        y_local = local(x_local);
        tape.backward(tg::sum(tg::mul(y_local, y_local)));
    }
    {
        tg::Tape tape;
        y_sync = sync(x_sync);
        tape.backward(tg::sum(tg::mul(y_sync, y_sync)));
    }
    CHECK(rel_error(y_sync.value(), y_local.value()) <= kRelTol);
    CHECK(rel_error(x_sync.grad(), x_local.grad()) <= kRelTol);
    CHECK(rel_error(sync.weight.grad(), local.weight.grad()) <= kRelTol);
}

TEST_CASE("SyncBatchNorm under tg::checkpoint equals BatchNorm under it on the whole batch") {
    // The recomputation during backward runs the forward's collectives again, on every rank
    // alike; with either option the numbers are one process's (the core's checkpoint and
    // BatchNorm, checked against PyTorch in tests/test_nn_bn_utils.cpp).
    const auto& ctx = test_ctx();
    const auto counts = shares(ctx.world_size(), false);
    const auto r = static_cast<std::size_t>(ctx.rank());
    const std::size_t B = std::accumulate(counts.begin(), counts.end(), std::size_t{0});
    const std::size_t first = std::accumulate(counts.begin(), counts.begin() + r, std::size_t{0});
    for (const bool twice : {true, false}) {
        CAPTURE(twice);
        const tg::CheckpointOptions options{.recompute_updates_running_stats = twice};
        tg::Generator gen(11);
        tg::nn::BatchNorm2d single(3);
        tg::nn::SyncBatchNorm sync(ctx, 3);
        const Array x = tg::normal({B, 3, 2, 2}, 1.0, 2.0, gen);
        const Array w = tg::normal({B, 3, 2, 2}, 0.0, 1.0, gen);
        const Tensor x_all(x, true), x_mine(rows(x, first, counts[r]), true);
        {
            tg::Tape tape;
            const Tensor y = tg::checkpoint(
                options, [&](const Tensor& t) { return single(t); }, x_all);
            tape.backward(tg::sum(tg::mul(y, Tensor(w))));
        }
        {
            tg::Tape tape;
            const Tensor y = tg::checkpoint(
                options, [&](const Tensor& t) { return sync(t); }, x_mine);
            tape.backward(tg::sum(tg::mul(y, Tensor(rows(w, first, counts[r])))));
        }
        if (counts[r] > 0)
            CHECK(rel_error(x_mine.grad(), rows(x_all.grad(), first, counts[r])) <= kRelTol);
        Array dgamma = sync.weight.grad();
        ctx.all_reduce_sum(dgamma);
        CHECK(rel_error(dgamma, single.weight.grad()) <= kRelTol);
        CHECK(rel_error(sync.running_mean.value(), single.running_mean.value()) <= kRelTol);
        CHECK(rel_error(sync.running_var.value(), single.running_var.value()) <= kRelTol);
        CHECK(sync.num_batches_tracked.item() == single.num_batches_tracked.item());
        CHECK(sync.num_batches_tracked.item() == (twice ? 2 : 1));
    }
}

TEST_CASE("convert_sync_batchnorm swaps every BatchNorm and keeps its tensors") {
    const auto& ctx = test_ctx();
    using namespace tg::nn;
    Sequential model;
    model.push_back(Conv2d(1, 2, 3));
    auto& bn2 = model.push_back(BatchNorm2d(2));
    model.push_back(ReLU());
    auto inner = std::make_shared<Sequential>();
    auto& bn1 = inner->push_back(BatchNorm1d(4, {.momentum = 0.3}));
    model.push_back("head", inner);
    bn2.running_mean.value().fill(0.25);
    bn2.num_batches_tracked.value().fill(7);
    bn1.weight.requires_grad_(false);  // a frozen γ stays frozen
    model.eval();
    const Tensor weight2 = bn2.weight, running_var1 = bn1.running_var;
    const auto names_before = model.state_dict();

    CHECK(convert_sync_batchnorm(model, ctx) == 2);
    auto& sync2 = model.at<SyncBatchNorm>(1);
    auto& sync1 = inner->at<SyncBatchNorm>(0);
    CHECK(sync2.weight.is(weight2));  // the very same tensors
    CHECK(sync1.running_var.is(running_var1));
    CHECK(sync2.running_mean.value()(0) == 0.25);
    CHECK(sync2.num_batches_tracked.item() == 7);
    CHECK(sync1.options.momentum == 0.3);
    CHECK_FALSE(sync1.weight.requires_grad());
    CHECK_FALSE(sync2.is_training());
    CHECK(sync2.name() == "1");
    CHECK(sync1.weight.name() == "head.0.weight");
    const auto names_after = model.state_dict();
    REQUIRE(names_after.size() == names_before.size());
    for (std::size_t i = 0; i < names_after.size(); ++i) {
        CHECK(names_after[i].first == names_before[i].first);
        CHECK(names_after[i].second.is(names_before[i].second));
    }
    CHECK(convert_sync_batchnorm(model, ctx) == 0);  // nothing left to convert
    CHECK_THROWS_WITH_AS(model.replace_module("7", std::make_shared<ReLU>()),
                         doctest::Contains("cannot replace module '7': there is no child module"),
                         std::invalid_argument);

    BatchNorm2d bare(3);
    CHECK_THROWS_WITH_AS(convert_sync_batchnorm(bare, ctx),
                         doctest::Contains("cannot be replaced in place"), std::invalid_argument);
}
