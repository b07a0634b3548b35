// Collectives that refuse their arguments refuse on every rank (issue 24): each rank checks
// its own, all agree (Context::agree), and then every rank throws the same error, so a program
// that catches it never leaves a rank waiting in a collective. Also: frozen layers stay frozen
// through convert_sync_batchnorm and DataParallel. Each case ends with a barrier: a rank left
// in a collective would hang it (the test's timeout).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tapegrad/dist/data_parallel.hpp"
#include "tapegrad/dist/sync_batchnorm.hpp"
#include "tapegrad/nn/batchnorm_utils.hpp"
#include "tapegrad/nn/nn.hpp"
#include "tapegrad/ops/elementwise.hpp"
#include "tapegrad/ops/reduce.hpp"
#include "tapegrad/optim/sgd.hpp"
#include "tapegrad/tape.hpp"
#include "testing_dist.hpp"

using tg::Array;
using tg::Tensor;

TEST_CASE("all_reduce_sum with another count on one rank is refused on every rank") {
    const auto& ctx = test_ctx();
    if (ctx.world_size() < 2) return;
    std::vector<double> d(ctx.rank() == 1 ? 3 : 2, 1.0);
    CHECK_THROWS_WITH_AS(ctx.all_reduce_sum(d.data(), d.size()),
                         doctest::Contains("all_reduce_sum: refused on every rank: the ranks' "
                                           "values differ (rank 0 has 2, rank 1 has 3"),
                         std::invalid_argument);
    std::vector<double> g(2, 1.0);
    CHECK_THROWS_AS(ctx.all_gather(ctx.rank() == 1 ? std::vector<double>(3) : g),
                    std::invalid_argument);
    ctx.barrier();
}

TEST_CASE("SyncBatchNorm: a weight of another shape on one rank is an error on every rank") {
    const auto& ctx = test_ctx();
    if (ctx.world_size() < 2) return;
    tg::nn::SyncBatchNorm bn(ctx, 3);
    if (ctx.rank() == 1) bn.weight.value() = Array{1, 1, 1, 1};  // [4] for 3 channels
    const Tensor x = Tensor::ones({2, 3});
    CHECK_THROWS_WITH_AS(bn(x),
                         doctest::Contains("sync_batch_norm: refused on every rank: rank 1: "
                                           "weight has shape [4], expected [3]"),
                         std::invalid_argument);
    ctx.barrier();  // nobody is left in the statistics' all-gather
}

TEST_CASE("convert_sync_batchnorm keeps a frozen BatchNorm frozen after train()") {
    const auto& ctx = test_ctx();
    tg::nn::Sequential model;
    model.push_back(tg::nn::BatchNorm1d(3));
    CHECK(tg::nn::freeze_batchnorm(model) == 1);
    CHECK(tg::nn::convert_sync_batchnorm(model, ctx) == 1);
    model.train();
    auto& sync = model.at<tg::nn::SyncBatchNorm>(0);
    CHECK(sync.frozen);
    CHECK_FALSE(sync.is_training());
    CHECK_FALSE(sync.weight.requires_grad());
}

TEST_CASE("DataParallel: a gradient of another shape on one rank is refused on every rank") {
    const auto& ctx = test_ctx();
    tg::nn::Sequential model;
    model.push_back(tg::nn::Linear(2, 3));
    tg::dist::DataParallel dp(ctx, model);
    Tensor& w = model.at<tg::nn::Linear>(0).weight;
    w.accumulate_grad(Tensor::zeros(w.shape()).value());
    if (ctx.rank() == ctx.world_size() - 1) w.grad() = Array::from_shape({7});  // not [3, 2]
    const std::string last = std::to_string(ctx.world_size() - 1);
    CHECK_THROWS_WITH_AS(dp.all_reduce_gradients(),
                         doctest::Contains(("rank " + last + ": the gradient of parameter 0 " +
                                            "'0.weight' has shape [7], its parameter [3, 2]")
                                               .c_str()),
                         std::invalid_argument);
    ctx.barrier();
}

TEST_CASE("DataParallel: a parameter frozen after construction gets no gradient, decay spares it") {
    const auto& ctx = test_ctx();
    tg::nn::Sequential model;
    model.push_back(tg::nn::Linear(2, 2));
    model.push_back(tg::nn::BatchNorm1d(2));
    tg::dist::DataParallel dp(ctx, model);
    tg::nn::freeze_batchnorm(model);  // γ, β: requires_grad off, grads released
    auto& bn = model.at<tg::nn::BatchNorm1d>(1);
    const Array gamma = bn.weight.value();
    tg::optim::SGD opt(model.parameters(), {.lr = 0.1, .weight_decay = 0.5});
    {
        tg::Tape tape;
        const Tensor x(Array{{1, 2}, {3, 4}});
        tape.backward(tg::sum(model(x)));
    }
    dp.all_reduce_gradients();
    CHECK_FALSE(bn.weight.has_grad());  // was given a zero gradient
    CHECK(model.at<tg::nn::Linear>(0).weight.has_grad());
    opt.step();
    CHECK(bn.weight.value() == gamma);  // weight decay would have moved it by 5%
    ctx.barrier();
}
