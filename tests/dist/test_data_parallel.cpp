// Data parallelism: the sampler's shares, the start-up checks and broadcast, gradient
// averaging, the plain-BatchNorm gotcha, and 20 training steps of the chapter's CNN with
// SyncBatchNorm against one process on the full batch.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <ranges>
#include <set>
#include <string>
#include <vector>

#include <xtensor/xview.hpp>

#include "../chapter_cnn.hpp"
#include "tapegrad/data/dataset.hpp"
#include "tapegrad/data/loader.hpp"
#include "tapegrad/dist/data_parallel.hpp"
#include "tapegrad/dist/sync_batchnorm.hpp"
#include "tapegrad/nn/nn.hpp"
#include "tapegrad/ops/loss.hpp"
#include "tapegrad/optim/sgd.hpp"
#include "tapegrad/random.hpp"
#include "tapegrad/tape.hpp"
#include "testing_dist.hpp"

using tg::Array;
using tg::Tensor;

namespace {

// Every rank's copy of `a`, in rank order.
std::vector<std::vector<double>> gather(const tg::dist::Context& ctx, const Array& a) {
    const std::vector<double> all = ctx.all_gather(to_doubles(a));
    std::vector<std::vector<double>> per_rank;
    for (int r = 0; r < ctx.world_size(); ++r)
        per_rank.emplace_back(all.begin() + r * a.size(), all.begin() + (r + 1) * a.size());
    return per_rank;
}

const tg::data::Dataset& digits() {
    static const tg::data::Dataset d =
        tg::data::bundled_mnist(tg::data::Split::train).slice(0, 480);
    return d;
}

}  // namespace

TEST_CASE("DistributedSampler: disjoint seed-shuffled shares that cover the epoch") {
    using tg::dist::DistributedSampler;
    // One rank: the DataLoader's own order.
    const tg::data::DataLoader loader(digits(), {.batch_size = 8, .shuffle = true, .seed = 5});
    for (std::size_t k : {0, 3})
        CHECK(DistributedSampler(digits().size(), 0, 1, {.seed = 5}).indices(k) == loader.order(k));
    for (const int P : {2, 3, 4, 7}) {
        CAPTURE(P);
        for (const std::size_t size : {std::size_t{20}, std::size_t{23}}) {
            CAPTURE(size);
            std::multiset<std::size_t> seen;
            for (int r = 0; r < P; ++r) {
                const auto idx = DistributedSampler(size, r, P, {.seed = 9}).indices(1);
                CHECK(idx.size() == (size + P - 1) / P);
                seen.insert(idx.begin(), idx.end());
            }
            // Every example once, plus the padding (repeats of the first positions).
            CHECK(std::set<std::size_t>(seen.begin(), seen.end()).size() == size);
            CHECK(seen.size() == ((size + P - 1) / P) * P);
            std::size_t dropped = 0;
            std::set<std::size_t> cut;
            for (int r = 0; r < P; ++r) {
                const auto idx =
                    DistributedSampler(size, r, P, {.seed = 9, .drop_last = true}).indices(1);
                dropped += idx.size();
                cut.insert(idx.begin(), idx.end());
            }
            CHECK(cut.size() == dropped);  // disjoint
            CHECK(dropped == size / P * P);
        }
        // Another epoch, another order; the same epoch, the same order.
        const DistributedSampler s(100, 0, P, {.seed = 9});
        CHECK(s.indices(0) != s.indices(1));
        CHECK(s.indices(2) == s.indices(2));
    }
    CHECK_THROWS_WITH_AS(DistributedSampler(3, 0, 4, {.drop_last = true}),
                         doctest::Contains("cannot give each of 4 ranks one"),
                         std::invalid_argument);
    CHECK_THROWS_AS(DistributedSampler(3, 4, 4), std::invalid_argument);
}

TEST_CASE("DataParallel: mismatched models are found at the start, on every rank") {
    const auto& ctx = test_ctx();
    if (ctx.world_size() < 2) return;
    // Rank 1 builds a wider layer.
    tg::nn::Sequential model;
    model.push_back(tg::nn::Linear(4, ctx.rank() == 1 ? 3 : 2));
    CHECK_THROWS_WITH_AS(tg::dist::DataParallel(ctx, model),
                         doctest::Contains("the models differ across ranks: rank 1 has 2 "
                                           "parameters and buffers (15 values), rank 0 has 2 (10 "
                                           "values)"),
                         std::invalid_argument);
    // The same counts, another shape: still found.
    tg::nn::Sequential other;
    other.push_back(ctx.rank() == 1 ? tg::nn::Linear(3, 4) : tg::nn::Linear(4, 3));
    CHECK_THROWS_WITH_AS(tg::dist::DataParallel(ctx, other),
                         doctest::Contains("the models differ across ranks: rank 1"),
                         std::invalid_argument);
}

TEST_CASE(
    "Plain BatchNorm under data parallelism: running statistics differ per rank, "
    "gradients are averaged") {
    const auto& ctx = test_ctx();
    const auto P = static_cast<std::size_t>(ctx.world_size());
    const auto r = static_cast<std::size_t>(ctx.rank());
    tg::Generator gen(100 + r);  // a different start on every rank ...
    tg::nn::Sequential model = tgtest::chapter_cnn(gen);
    tg::dist::DataParallel dp(ctx, model, {.bucket_bytes = 64 * 1024});
    // ... replaced by rank 0's parameters and buffers everywhere.
    for (const Tensor& t : model.state_dict() | std::views::values) {
        const auto copies = gather(ctx, t.value());
        for (std::size_t q = 1; q < P; ++q)
            CHECK(copies[q] == copies[0]);
    }
    // Buckets of at most 64 KiB, unless one tensor alone is larger (Linear(400, 120)'s weight,
    // 48000 values; in float64 also Linear(120, 84)'s, 10080): then it is a bucket of its own.
    const auto sizes = dp.bucket_sizes();
    CHECK(sizes.size() > 1);
    std::set<std::size_t> tensor_sizes;
    std::size_t expected = 0;
    for (const Tensor& p : model.parameters()) {
        tensor_sizes.insert(p.numel());
        expected += p.numel();
    }
    std::size_t total = 0;
    for (const std::size_t s : sizes) {
        CAPTURE(s);
        CHECK((s * sizeof(tg::real) <= 64 * 1024 || tensor_sizes.count(s) == 1));
        total += s;
    }
    CHECK(total == expected);

    // Each rank its own 8 digits.
    const tg::data::DataLoader loader(digits(), {.batch_size = 8});
    std::vector<std::size_t> idx(8);
    std::iota(idx.begin(), idx.end(), 8 * r);
    const tg::data::Batch batch = loader.make_batch(idx.data(), idx.size());
    {
        tg::Tape tape;
        tape.backward(tg::cross_entropy(model(batch.images), batch.labels));
    }
    // The gotcha: per-rank batch statistics, so per-rank running statistics.
    const auto& bn = model.at<tg::nn::BatchNorm2d>(1);
    const auto means = gather(ctx, bn.running_mean.value());
    for (std::size_t q = 1; q < P; ++q) {
        double largest = 0.0;
        for (std::size_t c = 0; c < means[0].size(); ++c)
            largest = std::max(largest, std::abs(means[q][c] - means[0][c]));
        CHECK(largest > 1e-3);
    }
    // all_reduce_gradients: 1/P Σ_ranks g, computed here from every rank's own gradient.
    std::vector<std::vector<std::vector<double>>> before;
    for (const Tensor& p : model.parameters())
        before.push_back(gather(ctx, p.grad()));
    dp.all_reduce_gradients();
    CHECK(dp.all_reduce_calls() == sizes.size());
    std::size_t i = 0;
    for (const Tensor& p : model.parameters()) {
        std::vector<double> mean(p.numel(), 0.0);
        for (std::size_t q = 0; q < P; ++q)
            for (std::size_t k = 0; k < mean.size(); ++k)
                mean[k] += before[i][q][k] / static_cast<double>(P);
        const auto g = to_doubles(p.grad());
        CHECK(rel_error(g.data(), mean.data(), mean.size()) <= (tg::is_double ? 1e-14 : 1e-6));
        ++i;
    }
}

TEST_CASE("20 data-parallel steps with SyncBatchNorm follow one process on the full batch") {
    const auto& ctx = test_ctx();
    const std::size_t P = static_cast<std::size_t>(ctx.world_size());
    const std::size_t global_batch = 24;
    if (global_batch % P != 0) return;  // equal shares: the mean of means is the mean
    const std::size_t local = global_batch / P,
                      first = local * static_cast<std::size_t>(ctx.rank());

    tg::Generator gen_single(7), gen_dist(7);
    tg::nn::Sequential single = tgtest::chapter_cnn(gen_single);
    tg::nn::Sequential model = tgtest::chapter_cnn(gen_dist);
    CHECK(tg::nn::convert_sync_batchnorm(model, ctx) == 2);
    tg::dist::DataParallel dp(ctx, model);
    tg::optim::SGD opt_single(single.parameters(), {.lr = 0.05, .momentum = 0.9});
    tg::optim::SGD opt(model.parameters(), {.lr = 0.05, .momentum = 0.9});

    const tg::data::DataLoader loader(
        digits(),
        {.batch_size = global_batch, .shuffle = true, .seed = 3, .mean = 0.13, .std = 0.31});
    double worst = 0.0;
    std::size_t step = 0;
    for (const auto& [images, labels] : loader.epoch(0)) {
        if (step == 20) break;
        // One process, all rows.
        opt_single.zero_grad();
        double loss_single = 0.0;
        {
            tg::Tape tape;
            const Tensor loss = tg::cross_entropy(single(images), labels);
            loss_single = loss.item();
            tape.backward(loss);
        }
        opt_single.step();
        // This rank's rows; the global loss is the mean of the ranks' means.
        const Tensor x(Array(xt::view(images.value(), xt::range(first, first + local))));
        const tg::Labels y(labels.begin() + first, labels.begin() + first + local);
        opt.zero_grad();
        double loss_global = 0.0;
        {
            tg::Tape tape;
            const Tensor loss = tg::cross_entropy(model(x), y);
            loss_global = loss.item();
            tape.backward(loss);
        }
        dp.all_reduce_gradients();
        opt.step();
        ctx.all_reduce_sum(&loss_global, 1);
        loss_global /= static_cast<double>(P);
        CAPTURE(step);
        CHECK(std::abs(loss_global - loss_single) <= (tg::is_double ? 1e-12 : 1e-5));
        worst = std::max(worst, std::abs(loss_global - loss_single));
        ++step;
    }
    CHECK(step == 20);
    if (ctx.rank() == 0)
        MESSAGE(ctx.where() << ": largest loss difference over 20 steps " << worst);
    // Parameters and running statistics after 20 steps.
    const auto a = model.state_dict(), b = single.state_dict();
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        CAPTURE(a[i].first);
        CHECK(rel_error(a[i].second.value(), b[i].second.value()) <=
              (tg::is_double ? 1e-10 : 1e-4));
    }
}
