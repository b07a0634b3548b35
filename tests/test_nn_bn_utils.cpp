// tg::nn::update_bn, freeze_batchnorm/unfreeze_batchnorm and tg::checkpoint: against PyTorch
// (tests/reference/gen_bn_utils.py, group bn_utils), against statistics computed here from the
// raw numbers, and against finite differences (float64 build).
#include <cmath>
#include <optional>
#include <stdexcept>
#include <vector>

#include "tapegrad/checkpoint.hpp"
#include "tapegrad/nn/nn.hpp"
#include "tapegrad/ops/activation.hpp"
#include "tapegrad/ops/elementwise.hpp"
#include "tapegrad/ops/reduce.hpp"
#include "tapegrad/optim/sgd.hpp"
#include "tapegrad/random.hpp"
#include "tapegrad/tape.hpp"
#include "testing.hpp"

using tg::Array;
using tg::Tensor;
namespace nn = tg::nn;

namespace {

Array random_array(const tg::Shape& shape, tg::Generator& gen, double mean = 0.0,
                   double std = 1.0) {
    Array a = Array::from_shape(shape);
    for (auto& v : a)
        v = static_cast<tg::real>(gen.normal(mean, std));
    return a;
}

// The reference model of gen_bn_utils.py, with its initial state from `prefix`.
nn::Sequential reference_model(const tgtest::Reference& ref, const std::string& prefix) {
    nn::Sequential model(nn::Conv2d(2, 3, 3), nn::BatchNorm2d(3, {.momentum = 0.3}), nn::ReLU(),
                         nn::Conv2d(3, 2, 1), nn::BatchNorm2d(2, {.momentum = std::nullopt}));
    nn::NamedTensors init;
    for (const auto& [name, t] : model.state_dict())
        init.emplace_back(name, Tensor(ref.at(prefix + name)));
    model.load_state_dict(init);
    return model;
}

// The checkpoint case's block: Conv2d(2, 3, 3) -> BatchNorm2d(3) -> ReLU.
nn::Sequential reference_block(const tgtest::Reference& ref) {
    nn::Sequential block(nn::Conv2d(2, 3, 3), nn::BatchNorm2d(3), nn::ReLU());
    nn::NamedTensors init;
    for (const auto& [name, t] : block.state_dict())
        init.emplace_back(name, Tensor(ref.at("checkpoint/init/" + name)));
    block.load_state_dict(init);
    return block;
}

}  // namespace

TEST_CASE("update_bn gives PyTorch's swa_utils.update_bn statistics and restores momenta, mode") {
    const tgtest::Reference& ref = tgtest::reference("bn_utils");
    nn::Sequential model = reference_model(ref, "update_bn/init/");
    model.eval();
    std::vector<Tensor> batches;
    for (int k = 0; k < 4; ++k)
        batches.emplace_back(ref.at("update_bn/batch" + std::to_string(k)));

    nn::update_bn(model, batches);

    auto& bn1 = model.at<nn::BatchNorm2d>(1);
    auto& bn4 = model.at<nn::BatchNorm2d>(4);
    CHECK_MATCHES(bn1.running_mean.value(), ref.at("update_bn/after/1.running_mean"));
    CHECK_MATCHES(bn1.running_var.value(), ref.at("update_bn/after/1.running_var"));
    CHECK_MATCHES(bn4.running_mean.value(), ref.at("update_bn/after/4.running_mean"));
    CHECK_MATCHES(bn4.running_var.value(), ref.at("update_bn/after/4.running_var"));
    CHECK(bn1.num_batches_tracked.item() == ref.at("update_bn/after/1.num_batches_tracked")());
    CHECK(bn4.num_batches_tracked.item() == 4);
    // Momenta and the mode as before.
    REQUIRE(bn1.options.momentum.has_value());
    CHECK(*bn1.options.momentum == 0.3);
    CHECK_FALSE(bn4.options.momentum.has_value());
    // (Not a structured binding: doctest's message is a lambda, and clang 14 cannot capture one.)
    for (const auto& named : model.named_modules())
        CHECK_MESSAGE(!named.second->is_training(), named.first);
    // The eval output with the recalibrated statistics.
    tg::NoGradGuard no_grad;
    CHECK_MATCHES(model(Tensor(ref.at("update_bn/x_eval"))).value(), ref.at("update_bn/y_eval"));
}

TEST_CASE("update_bn equals the cumulative average of the batches' means and unbiased variances") {
    // A lone BatchNorm2d sees the raw batches, so its statistics can be computed here, in
    // double, straight from the numbers: (1/K) Σ_k μ_k and (1/K) Σ_k σ²_k B_k/(B_k − 1).
    tg::Generator gen(5);
    const std::size_t C = 3, H = 4, W = 5;
    std::vector<Tensor> batches;
    for (std::size_t n : {5, 2, 7, 3})
        batches.emplace_back(random_array({n, C, H, W}, gen, 2.0, 3.0));

    std::vector<double> mean(C, 0.0), var(C, 0.0);
    for (const Tensor& b : batches) {
        const std::size_t N = b.size(0), B = N * H * W;
        for (std::size_t c = 0; c < C; ++c) {
            double s = 0.0, ss = 0.0;
            for (std::size_t n = 0; n < N; ++n)
                for (std::size_t i = 0; i < H * W; ++i)
                    s += b.value().data()[(n * C + c) * H * W + i];
            const double mu = s / static_cast<double>(B);
            for (std::size_t n = 0; n < N; ++n)
                for (std::size_t i = 0; i < H * W; ++i) {
                    const double d = b.value().data()[(n * C + c) * H * W + i] - mu;
                    ss += d * d;
                }
            mean[c] += mu / static_cast<double>(batches.size());
            var[c] += ss / static_cast<double>(B - 1) / static_cast<double>(batches.size());
        }
    }

    nn::BatchNorm2d bn(C, {.momentum = 0.1});
    bn.running_mean.value().fill(42);  // thrown away by the reset
    bn.num_batches_tracked.value().fill(9);
    nn::update_bn(bn, batches);
    const double tol = tg::is_double ? 1e-12 : 1e-5;
    for (std::size_t c = 0; c < C; ++c) {
        CAPTURE(c);
        CHECK(std::abs(bn.running_mean.value()(c) - mean[c]) <= tol * (1 + std::abs(mean[c])));
        CHECK(std::abs(bn.running_var.value()(c) - var[c]) <= tol * (1 + std::abs(var[c])));
    }
    CHECK(bn.num_batches_tracked.item() == 4);
    CHECK(*bn.options.momentum == 0.1);
    CHECK(bn.is_training());
}

TEST_CASE("update_bn recalibrates frozen layers, restores each module's mode, survives a throw") {
    nn::Sequential model(nn::Linear(4, 3), nn::BatchNorm1d(3), nn::ReLU(), nn::BatchNorm1d(3));
    nn::freeze_batchnorm(model);
    model.train();  // the BatchNorms stay in eval
    tg::Generator gen(1);
    const std::vector<Tensor> batches{Tensor(random_array({6, 4}, gen, 1.0)),
                                      Tensor(random_array({4, 4}, gen, 1.0))};
    nn::update_bn(model, batches);
    auto& bn = model.at<nn::BatchNorm1d>(1);
    CHECK(bn.num_batches_tracked.item() == 2);
    CHECK(bn.frozen);
    CHECK_FALSE(bn.is_training());
    CHECK(model.is_training());
    CHECK(model[0].is_training());

    // A batch of one example throws inside the pass: momenta and modes are still restored.
    const std::vector<Tensor> bad{Tensor(random_array({1, 4}, gen))};
    CHECK_THROWS_WITH_AS(nn::update_bn(model, bad),
                         doctest::Contains("expected more than 1 value per channel when training"),
                         std::invalid_argument);
    CHECK(*bn.options.momentum == 0.1);
    CHECK(bn.frozen);
    CHECK_FALSE(bn.is_training());
    CHECK(model.is_training());

    // Without BatchNorm nothing happens (not even a mode change).
    nn::Sequential plain(nn::Linear(4, 3));
    plain.eval();
    nn::update_bn(plain, batches);
    CHECK_FALSE(plain.is_training());
}

TEST_CASE("freeze_batchnorm: eval mode through model.train(), γ/β and statistics fixed") {
    tg::Generator init(3), gen(4);
    nn::Sequential model(nn::Conv2d(1, 2, 3, {.generator = &init}), nn::BatchNorm2d(2), nn::ReLU(),
                         nn::Flatten(), nn::Linear(2 * 4 * 4, 3, {.generator = &init}));
    auto& bn = model.at<nn::BatchNorm2d>(1);
    tg::optim::SGD opt(model.parameters(), {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01});
    auto step = [&] {
        tg::Tape tape;
        const Tensor x(random_array({4, 1, 6, 6}, gen));
        const Tensor loss = tg::sum(tg::mul(model(x), model(x)));
        opt.zero_grad();
        tape.backward(loss);
        opt.step();
    };
    step();  // γ/β have a gradient and a momentum buffer now
    step();

    CHECK(nn::freeze_batchnorm(model) == 1);
    model.train();  // what every training loop does at the start of an epoch
    CHECK_FALSE(bn.is_training());
    CHECK(model.is_training());
    CHECK(model[0].is_training());
    CHECK_FALSE(bn.weight.requires_grad());
    CHECK_FALSE(bn.weight.has_grad());

    const Array gamma = bn.weight.value(), beta = bn.bias.value();
    const Array mean = bn.running_mean.value(), var = bn.running_var.value();
    const Array conv = model.at<nn::Conv2d>(0).weight.value();
    const auto tracked = bn.num_batches_tracked.item();
    step();
    step();
    CHECK(tgtest::mismatch(bn.weight.value(), gamma, 0, 0) == "");
    CHECK(tgtest::mismatch(bn.bias.value(), beta, 0, 0) == "");
    CHECK(tgtest::mismatch(bn.running_mean.value(), mean, 0, 0) == "");
    CHECK(tgtest::mismatch(bn.running_var.value(), var, 0, 0) == "");
    CHECK(bn.num_batches_tracked.item() == tracked);
    CHECK(tgtest::mismatch(model.at<nn::Conv2d>(0).weight.value(), conv, 0, 0) != "");

    CHECK(nn::unfreeze_batchnorm(model) == 1);
    CHECK(bn.is_training());
    CHECK(bn.weight.requires_grad());
    step();
    CHECK(bn.num_batches_tracked.item() == tracked + 2);
    CHECK(tgtest::mismatch(bn.weight.value(), gamma, 0, 0) != "");
    model.eval();
    CHECK_FALSE(bn.is_training());
}

TEST_CASE("checkpoint: PyTorch's gradients; statistics updated twice, or once with the option") {
    const tgtest::Reference& ref = tgtest::reference("bn_utils");
    const Array& g = ref.at("checkpoint/g");
    struct Run {
        const char* name;
        std::optional<tg::CheckpointOptions> options;  // unset: no checkpoint
        const char* expected_stats;                    // the PyTorch run with those statistics
    };
    for (const Run& run :
         {Run{"plain", std::nullopt, "plain"},
          Run{"checkpointed", tg::CheckpointOptions{}, "checkpointed"},
          Run{"fixed", tg::CheckpointOptions{.recompute_updates_running_stats = false}, "plain"}}) {
        const std::string run_name = run.name;
        CAPTURE(run_name);
        nn::Sequential block = reference_block(ref);
        const Tensor x(ref.at("checkpoint/x"), /*requires_grad=*/true);
        tg::Tape tape;
        const Tensor y = run.options
                             ? tg::checkpoint(
                                   *run.options, [&](const Tensor& in) { return block(in); }, x)
                             : block(x);
        CHECK(tape.size() == (run.options ? 1u : 3u));  // one entry for the whole block
        tape.backward(tg::sum(tg::mul(y, Tensor(g))));
        // Gradients are PyTorch's in every run: the recomputation sees the same batch.
        CHECK_MATCHES_SCALED(x.grad(), ref.at("checkpoint/plain/dx"));
        // (The conv bias feeding BatchNorm has gradient 0 exactly; PyTorch's is rounding noise.)
        const double atol = tg::is_double ? 1e-12 : 1e-6;
        for (const auto& named : block.named_parameters()) {
            const std::string& name = named.first;  // CAPTURE is a lambda: no structured binding
            const auto& p = named.second;
            CAPTURE(name);
            CHECK(tgtest::mismatch_scaled(p.grad(), ref.at("checkpoint/plain/d" + name),
                                          tgtest::kRtol, atol) == "");
        }
        const std::string s = std::string("checkpoint/") + run.expected_stats + "/1.";
        auto& bn = block.at<nn::BatchNorm2d>(1);
        CHECK_MATCHES(bn.running_mean.value(), ref.at(s + "running_mean"));
        CHECK_MATCHES(bn.running_var.value(), ref.at(s + "running_var"));
        CHECK(bn.num_batches_tracked.item() == ref.at(s + "num_batches_tracked")());
    }
}

TEST_CASE("checkpoint: gradients bit-identical to the plain run's, through several segments") {
    // Two blocks checkpointed separately, the input not requiring grad: the parameters are
    // found by the scratch forward, so they still get their gradients.
    auto make = [] {
        tg::Generator init(8);
        return nn::Sequential(nn::Conv2d(2, 4, 3, {.padding = 1, .generator = &init}),
                              nn::BatchNorm2d(4), nn::ReLU(),
                              nn::Conv2d(4, 4, 3, {.padding = 1, .generator = &init}),
                              nn::BatchNorm2d(4), nn::ReLU());
    };
    tg::Generator gen(9);
    const Array input = random_array({3, 2, 5, 5}, gen);
    nn::Sequential plain = make(), ckpt = make();
    {
        tg::Tape tape;
        tape.backward(tg::sum(tg::mul(plain(Tensor(input)), plain(Tensor(input)))));
    }
    {
        tg::Tape tape;
        auto segment = [&](std::size_t first) {
            return [&ckpt, first](const Tensor& in) {
                return ckpt[first + 2](ckpt[first + 1](ckpt[first](in)));
            };
        };
        const tg::CheckpointOptions fixed{.recompute_updates_running_stats = false};
        const auto run = [&] {
            return tg::checkpoint(fixed, segment(3),
                                  tg::checkpoint(fixed, segment(0), Tensor(input)));
        };
        tape.backward(tg::sum(tg::mul(run(), run())));
        CHECK(tape.size() == 2 * 2 + 2);  // 2 checkpoints per run, then mul and sum
    }
    const auto p = plain.named_parameters(), c = ckpt.named_parameters();
    REQUIRE(p.size() == c.size());
    for (std::size_t i = 0; i < p.size(); ++i) {
        CAPTURE(p[i].first);
        REQUIRE(c[i].second.has_grad());
        CHECK(tgtest::mismatch(c[i].second.grad(), p[i].second.grad(), 0, 0) == "");
    }
    for (std::size_t i : {1u, 4u}) {
        CHECK(tgtest::mismatch(ckpt.at<nn::BatchNorm2d>(i).running_mean.value(),
                               plain.at<nn::BatchNorm2d>(i).running_mean.value(), 0, 0) == "");
        CHECK(ckpt.at<nn::BatchNorm2d>(i).num_batches_tracked.item() == 2);
    }
}

TEST_CASE("checkpoint: no tape, identity, undefined input, recomputing flag") {
    nn::BatchNorm1d bn(2);
    tg::Generator gen(2);
    const Tensor x(random_array({4, 2}, gen), true);
    // No active tape: a plain call, nothing recorded.
    const Tensor y = tg::checkpoint([&](const Tensor& in) { return bn(in); }, x);
    CHECK_FALSE(y.requires_grad());
    CHECK(bn.num_batches_tracked.item() == 1);
    // fn returning its input: the gradient passes straight through.
    {
        tg::Tape tape;
        const Tensor same = tg::checkpoint([](const Tensor& in) { return in; }, x);
        tape.backward(tg::sum(same));
        CHECK(x.grad()(0, 0) == 1);
    }
    CHECK_THROWS_WITH_AS(tg::checkpoint([](const Tensor& in) { return in; }, Tensor{}),
                         doctest::Contains("checkpoint: input 0 is an undefined tensor"),
                         std::invalid_argument);
    // is_recomputing() is true only inside the recomputation.
    std::vector<bool> seen;
    {
        tg::Tape tape;
        const Tensor out = tg::checkpoint(
            [&](const Tensor& in) {
                seen.push_back(tg::is_recomputing());
                return tg::relu(in);
            },
            x);
        tape.backward(tg::sum(out));
    }
    CHECK(seen == std::vector<bool>{false, true});
    CHECK_FALSE(tg::is_recomputing());
}

TEST_CASE("NoStatsUpdateGuard: the same training-mode output, statistics untouched") {
    tg::Generator gen(6);
    const Tensor x(random_array({5, 3, 2, 2}, gen, 1.0, 2.0));
    nn::BatchNorm2d a(3), b(3);
    const Tensor ya = a(x);
    Tensor yb;
    {
        const tg::NoStatsUpdateGuard frozen;
        CHECK_FALSE(tg::running_stats_update_enabled());
        yb = b(x);
    }
    CHECK(tg::running_stats_update_enabled());
    CHECK(tgtest::mismatch(yb.value(), ya.value(), 0, 0) == "");
    CHECK(b.num_batches_tracked.item() == 0);
    CHECK(b.running_mean.value()(0) == 0);
    CHECK(a.num_batches_tracked.item() == 1);
}

TEST_CASE("checkpoint passes the finite-difference gradient check" *
          doctest::skip(!tg::is_double)) {
    tg::Generator gen(11);
    nn::BatchNorm1d bn(3);
    const Tensor x(random_array({4, 3}, gen), true);
    const Tensor w(random_array({4, 3}, gen), true);
    CHECK_GRADCHECK(
        [&](const std::vector<Tensor>& in) {
            const Tensor h = tg::checkpoint(
                [&](const Tensor& a, const Tensor& b) { return tg::relu(bn(tg::mul(a, b))); },
                in[0], in[1]);
            return tg::sum(tg::mul(h, h));
        },
        {x, w});
}
