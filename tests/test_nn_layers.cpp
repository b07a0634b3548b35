// The layers: initialisation statistics, the normalisation modules against torch.nn (running
// statistics, eval outputs, options, errors), wiring of the thin layers, losses, printing; and
// every layer of the layer catalog (tapegrad/nn/catalog.hpp), each by its entry beside it.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <set>
#include <sstream>

#include <xtensor/xview.hpp>

#include "catalog_checks.hpp"
#include "tapegrad/nn/catalog.hpp"
#include "tapegrad/nn/nn.hpp"
#include "tapegrad/ops/activation.hpp"
#include "tapegrad/tape.hpp"
#include "testing.hpp"

using tg::Array;
using tg::Tensor;
namespace nn = tg::nn;

namespace {

const tgtest::Reference& ref() {
    return tgtest::reference("nn");
}

// Max |v|, mean and (population) variance of the values of t.
struct Stats {
    double max_abs = 0, mean = 0, var = 0;
};
Stats stats(const Tensor& t) {
    Stats s;
    for (auto v : t.value()) {
        s.max_abs = std::max(s.max_abs, std::abs(double(v)));
        s.mean += v;
    }
    s.mean /= double(t.numel());
    for (auto v : t.value())
        s.var += (v - s.mean) * (v - s.mean);
    s.var /= double(t.numel());
    return s;
}

// U(-b, b): every |v| <= b, the largest close to b, mean 0 and variance b²/3.
void check_uniform(const Tensor& t, double bound) {
    const Stats s = stats(t);
    const double n = double(t.numel());
    CAPTURE(bound);
    CHECK(s.max_abs <= bound * (1 + 1e-6));
    CHECK(s.max_abs >= bound * (1 - 20 / n));                 // P(all |v| < b(1 - 20/n)) ~ e^-20
    CHECK(std::abs(s.mean) <= 6 * bound / std::sqrt(3 * n));  // 6 standard errors
    CHECK(s.var == doctest::Approx(bound * bound / 3).epsilon(0.05));
}

// A module's state dict from the reference: "<case>/<prefix><name>" for each of its names.
// Fails (ref().at throws) if our names differ from PyTorch's.
nn::NamedTensors reference_state(const nn::Module& m, const std::string& key_prefix) {
    nn::NamedTensors state;
    for (const auto& [name, t] : m.state_dict()) {
        state.emplace_back(name, Tensor(ref().at(key_prefix + name)));
    }
    return state;
}

// Three training steps, then eval on x_eval, each output and the final state against PyTorch.
void check_norm_case(nn::Module& m, const std::string& name) {
    CAPTURE(name);
    m.load_state_dict(reference_state(m, name + "/init_"));
    m.train();
    for (int s = 1; s <= 3; ++s) {
        const std::string step = std::to_string(s);
        CAPTURE(s);
        CHECK_MATCHES(m(Tensor(ref().at(name + "/x" + step))).value(),
                      ref().at(name + "/y" + step));
    }
    for (const auto& entry : m.state_dict()) {
        // (Not a structured binding: clang 14 cannot capture one in CAPTURE's lambda.)
        const auto& key = entry.first;
        const auto& t = entry.second;
        CAPTURE(key);
        CHECK_MATCHES(t.value(), ref().at(name + "/after3_" + key));
    }
    m.eval();
    CHECK_MATCHES(m(Tensor(ref().at(name + "/x_eval"))).value(), ref().at(name + "/y_eval"));
}

std::vector<std::string> buffer_names(const nn::Module& m) {
    std::vector<std::string> out;
    for (const auto& [name, t] : m.named_buffers())
        out.push_back(name);
    return out;
}

}  // namespace

// ---- initialisation ------------------------------------------------------------------------

TEST_CASE("Linear and Conv2d initialise as PyTorch: kaiming uniform (a = sqrt 5) and bias bounds") {
    tg::Generator gen(123);
    // Linear: fan_in = in = 1000, so weight and bias ~ U(-1/sqrt(1000), 1/sqrt(1000)).
    nn::Linear fc(1000, 600, {.generator = &gen});
    CHECK(fc.weight.shape() == tg::Shape{600, 1000});
    check_uniform(fc.weight, 1 / std::sqrt(1000.0));
    check_uniform(fc.bias, 1 / std::sqrt(1000.0));
    // Conv2d: fan_in = C k² = 64·9 = 576, so bound = 1/24 (not 1/sqrt(64)).
    nn::Conv2d conv(64, 256, 3, {.generator = &gen});
    CHECK(conv.weight.shape() == tg::Shape{256, 64, 3, 3});
    check_uniform(conv.weight, 1.0 / 24);
    // The bias has only 256 values: check the bound strictly and the spread loosely.
    CHECK(stats(conv.bias).max_abs <= 1.0 / 24 * (1 + 1e-6));
    CHECK(stats(conv.bias).max_abs >= 1.0 / 24 * 0.9);
    // kaiming_uniform_ with a = 0 (ReLU gain sqrt 2): bound = sqrt(6 / fan_in).
    Tensor w = Tensor::zeros({300, 50, 2, 2});
    nn::init::kaiming_uniform_(w, 0.0, gen);
    check_uniform(w, std::sqrt(6.0 / 200));
    CHECK(nn::init::leaky_relu_gain(std::sqrt(5.0)) == doctest::Approx(std::sqrt(1.0 / 3)));
    CHECK_THROWS_WITH_AS(nn::init::kaiming_uniform_(fc.bias), doctest::Contains("fewer than 2"),
                         std::invalid_argument);
}

TEST_CASE("initialisation is reproducible from a seed and from tg::manual_seed") {
    tg::Generator g1(7), g2(7), g3(8);
    nn::Linear a(5, 3, {.generator = &g1}), b(5, 3, {.generator = &g2}),
        c(5, 3, {.generator = &g3});
    CHECK(a.weight.value() == b.weight.value());
    CHECK(a.bias.value() == b.bias.value());
    CHECK(a.weight.value() != c.weight.value());
    tg::manual_seed(11);
    nn::Conv2d d(2, 3, 3);
    tg::manual_seed(11);
    nn::Conv2d e(2, 3, 3);
    CHECK(d.weight.value() == e.weight.value());
}

TEST_CASE("normalisation layers start with gamma = 1, beta = 0, running mean 0 and var 1") {
    nn::BatchNorm2d bn(3);
    CHECK(bn.weight.value() == Array{1, 1, 1});
    CHECK(bn.bias.value() == Array{0, 0, 0});
    CHECK(bn.running_mean.value() == Array{0, 0, 0});
    CHECK(bn.running_var.value() == Array{1, 1, 1});
    CHECK(bn.num_batches_tracked.item() == 0);
    CHECK(buffer_names(bn) ==
          std::vector<std::string>{"running_mean", "running_var", "num_batches_tracked"});
    nn::InstanceNorm2d in(3);  // PyTorch's defaults: no affine, no running statistics
    CHECK(in.parameters().empty());
    CHECK(in.buffers().empty());
    nn::LayerNorm ln({2, 3});
    CHECK(ln.weight.value() == xt::ones<tg::real>({2, 3}));
    CHECK(ln.bias.value() == xt::zeros<tg::real>({2, 3}));
}

// ---- normalisation modules against torch.nn ------------------------------------------------

TEST_CASE("BatchNorm2d: running statistics over three steps and the eval output match PyTorch") {
    nn::BatchNorm2d momentum(3);
    check_norm_case(momentum, "bn2d");
    CHECK(momentum.num_batches_tracked.item() == 3);
    // momentum unset: cumulative average with factor 1/num_batches_tracked
    nn::BatchNorm2d cumulative(3, {.momentum = std::nullopt});
    check_norm_case(cumulative, "bn2d_cumulative");
    nn::BatchNorm2d eps(3, {.eps = 1e-2, .momentum = 0.3});
    check_norm_case(eps, "bn2d_eps");
}

TEST_CASE(
    "BatchNorm2d options: affine=false has no parameters; track_running_stats=false no buffers") {
    nn::BatchNorm2d no_affine(3, {.affine = false});
    CHECK(no_affine.parameters().empty());
    CHECK_FALSE(no_affine.weight.defined());
    check_norm_case(no_affine, "bn2d_no_affine");

    nn::BatchNorm2d no_stats(3, {.track_running_stats = false});
    CHECK(no_stats.buffers().empty());
    CHECK_FALSE(no_stats.running_mean.defined());
    // Its eval output uses the batch statistics, as PyTorch's does.
    check_norm_case(no_stats, "bn2d_no_stats");
}

TEST_CASE("BatchNorm1d on [N, C] and on [N, C, L] matches PyTorch") {
    nn::BatchNorm1d flat(6);
    check_norm_case(flat, "bn1d");
    nn::BatchNorm1d sequence(6, {.momentum = std::nullopt});
    check_norm_case(sequence, "bn1d_3d");
}

TEST_CASE("BatchNorm errors: wrong rank names the expected rank; one value per channel") {
    nn::Sequential model(nn::BatchNorm2d(3));
    CHECK_THROWS_WITH_AS(model(Tensor::ones({2, 3, 4})),
                         "BatchNorm2d '0': expected 4D input [N, C, H, W] (got 3D input [2, 3, 4])",
                         std::invalid_argument);
    nn::BatchNorm1d bn1(3);
    CHECK_THROWS_WITH_AS(bn1(Tensor::ones({2, 3, 4, 5})),
                         "BatchNorm1d: expected 2D input [N, C] or 3D input [N, C, L] (got 4D "
                         "input [2, 3, 4, 5])",
                         std::invalid_argument);
    CHECK(bn1.num_batches_tracked.item() == 0);  // the rank is checked before counting
    // One value per channel cannot be normalised in training. As in PyTorch the batch has
    // already been counted when batch_norm rejects it.
    CHECK_THROWS_WITH_AS(bn1(Tensor::ones({1, 3})),
                         doctest::Contains("expected more than 1 value per channel when training"),
                         std::invalid_argument);
    CHECK_MATCHES(bn1.num_batches_tracked.value(), ref().at("bn_one_value/num_batches_tracked"));
    bn1.eval();  // in eval the running statistics are used: one value is fine
    CHECK(bn1(Tensor::ones({1, 3})).shape() == tg::Shape{1, 3});
}

TEST_CASE("InstanceNorm2d, LayerNorm and GroupNorm modules match PyTorch") {
    nn::InstanceNorm2d in(3);
    check_norm_case(in, "in2d");
    nn::InstanceNorm2d in_stats(3, {.affine = true, .track_running_stats = true});
    check_norm_case(in_stats, "in2d_stats");
    CHECK(in_stats.num_batches_tracked.item() == 0);  // registered but never counted (PyTorch)
    nn::LayerNorm ln({4, 4});
    check_norm_case(ln, "ln");
    nn::GroupNorm gn(2, 4);
    check_norm_case(gn, "gn");

    // An unbatched image [C, H, W] is normalised like a batch of one.
    const Array x = ref().at("in2d/x1");
    const Tensor one(Array(xt::view(x, 1)));
    in.train();
    const Array batched = in(Tensor(Array(xt::view(x, xt::range(1, 2))))).value();
    CHECK_MATCHES(in(one).value(), Array(xt::view(batched, 0)));

    CHECK_THROWS_WITH_AS(in_stats(Tensor::ones({2, 4, 3, 3})),
                         doctest::Contains("expected input's size at dim=1 to match num_features "
                                           "(3), but got: 4"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(in(Tensor::ones({2, 3})), doctest::Contains("expected 3D input"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(nn::GroupNorm(3, 4), doctest::Contains("divisible by num_groups"),
                         std::invalid_argument);
}

TEST_CASE("a CNN's state (with BatchNorm's 0-d counter) survives save_state / load_state") {
    const auto make = [] {
        return nn::Sequential(nn::Conv2d(1, 2, 3), nn::BatchNorm2d(2), nn::ReLU(), nn::Flatten(),
                              nn::Linear(2 * 4 * 4, 3));
    };
    nn::Sequential a = make();
    const Tensor x(tg::normal({4, 1, 6, 6}));
    for (int i = 0; i < 3; ++i)
        a(x);  // moves the running statistics, counts 3 batches
    const std::string path = (std::filesystem::temp_directory_path() /
                              ("tapegrad_cnn_state_" + std::to_string(::getpid()) + ".tgs"))
                                 .string();
    a.save_state(path);
    tg::manual_seed(99);  // other initial weights
    nn::Sequential b = make();
    b.load_state(path);
    std::filesystem::remove(path);
    CHECK(b.at<nn::BatchNorm2d>(1).num_batches_tracked.item() == 3);
    CHECK(b.at<nn::BatchNorm2d>(1).running_var.value() ==
          a.at<nn::BatchNorm2d>(1).running_var.value());
    a.eval();
    b.eval();
    CHECK(b(x).value() == a(x).value());
}

// ---- the thin layers: wiring of their settings into the ops --------------------------------

TEST_CASE("Linear computes x W^T + b with its own parameters") {
    nn::Linear fc(3, 2);
    fc.weight.value() = Array{{1, 2, 3}, {-1, 0, 1}};
    fc.bias.value() = Array{0.5, -0.5};
    CHECK(fc(Tensor(Array{{1, 1, 1}, {1, 0, -1}})).value() == Array{{6.5, -0.5}, {-1.5, -2.5}});
    nn::Linear no_bias(3, 2, {.bias = false});
    CHECK_FALSE(no_bias.bias.defined());
    CHECK(no_bias.parameters().size() == 1);
}

TEST_CASE("Conv2d and the pools pass stride and padding on") {
    nn::Conv2d conv(2, 5, 3, {.stride = 2, .padding = 1, .bias = false});
    // OH = floor((7 + 2 - 3) / 2) + 1 = 4
    CHECK(conv(Tensor::ones({1, 2, 7, 7})).shape() == tg::Shape{1, 5, 4, 4});
    CHECK(conv.parameters().size() == 1);
    nn::Conv2d one(1, 1, 2);
    one.weight.value() = Array{{{{1, 2}, {3, 4}}}};
    one.bias.value() = Array{10};
    CHECK(one(Tensor(Array{{{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}}})).value() ==
          Array{{{{15, 13}, {12, 15}}}});

    nn::MaxPool2d pool(2);  // stride defaults to the kernel
    CHECK(pool.stride == 2);
    const Tensor x(Array{{{{1, 2, 3, 4}, {5, 6, 7, 8}, {9, 10, 11, 12}, {13, 14, 15, 16}}}});
    CHECK(pool(x).value() == Array{{{{6, 8}, {14, 16}}}});
    nn::MaxPool2d overlap(3, {.stride = 1});
    CHECK(overlap(x).value() == Array{{{{11, 12}, {15, 16}}}});
    nn::AvgPool2d avg(2);
    CHECK(avg(x).value() == Array{{{{3.5, 5.5}, {11.5, 13.5}}}});
    nn::AvgPool2d padded(2, {.stride = 2, .padding = 1});  // zeros count (count_include_pad)
    CHECK(padded(x).value()(0, 0, 0, 0) == doctest::Approx(0.25));
}

TEST_CASE("ReLU and Flatten") {
    nn::ReLU relu;
    CHECK(relu(Tensor(Array{-1, 0, 2})).value() == Array{0, 0, 2});
    nn::Flatten flatten;
    CHECK(flatten(Tensor::ones({2, 3, 4, 5})).shape() == tg::Shape{2, 60});
    nn::Flatten inner(1, 2);
    CHECK(inner(Tensor::ones({2, 3, 4, 5})).shape() == tg::Shape{2, 12, 5});
}

TEST_CASE("Tanh, Sigmoid, LeakyReLU and GELU modules call their ops with their options") {
    const Tensor x(Array{-2, -0.5, 0, 0.5, 2});
    CHECK(nn::Tanh()(x).value() == tg::tanh(x).value());
    CHECK(nn::Sigmoid()(x).value() == tg::sigmoid(x).value());
    CHECK(nn::LeakyReLU()(x).value() == tg::leaky_relu(x, 0.01).value());
    CHECK(nn::LeakyReLU(0.2)(x).value() == tg::leaky_relu(x, 0.2).value());
    CHECK(nn::LeakyReLU(0.2)(x).value() != tg::leaky_relu(x, 0.01).value());
    CHECK(nn::GELU()(x).value() == tg::gelu(x, "none").value());
    CHECK(nn::GELU("tanh")(x).value() == tg::gelu(x, "tanh").value());
    CHECK(nn::GELU("tanh")(x).value() != tg::gelu(x, "none").value());
    CHECK_THROWS_WITH_AS(nn::GELU("erf"),
                         "GELU: approximate 'erf', expected 'none' or 'tanh' (as torch.nn.GELU)",
                         std::invalid_argument);
}

TEST_CASE("activation modules print as PyTorch 1.13 prints them") {
    nn::Sequential model(nn::Linear(4, 3), nn::Tanh(), nn::Sigmoid(), nn::LeakyReLU(),
                         nn::LeakyReLU(0.2), nn::GELU(), nn::GELU("tanh"), nn::ReLU(),
                         nn::Dropout(0.5), nn::MaxPool2d(3, {.stride = 1, .padding = 1}));
    std::ostringstream out;
    out << model;
    // print(nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Sigmoid(), nn.LeakyReLU(),
    //     nn.LeakyReLU(0.2), nn.GELU(), nn.GELU(approximate='tanh'), nn.ReLU(), nn.Dropout(0.5),
    //     nn.MaxPool2d(3, 1, 1))) in PyTorch 1.13, less the options this library does not have
    // (Dropout's ", inplace=False", MaxPool2d's ", dilation=1, ceil_mode=False"), which PyTorch
    // prints at their defaults. Ends with a newline, as print(model) does.
    CHECK(out.str() ==
          "Sequential(\n"
          "  (0): Linear(in_features=4, out_features=3, bias=True)\n"
          "  (1): Tanh()\n"
          "  (2): Sigmoid()\n"
          "  (3): LeakyReLU(negative_slope=0.01)\n"
          "  (4): LeakyReLU(negative_slope=0.2)\n"
          "  (5): GELU(approximate='none')\n"
          "  (6): GELU(approximate='tanh')\n"
          "  (7): ReLU()\n"
          "  (8): Dropout(p=0.5)\n"
          "  (9): MaxPool2d(kernel_size=3, stride=1, padding=1)\n"
          ")\n");
}

TEST_CASE("Dropout: inverted scaling in training, identity in eval, its own seeded generator") {
    nn::Dropout drop(0.25, {.seed = 5});
    const Tensor x = Tensor::ones({100000});
    const Array y = drop(x).value();
    const auto zeros = std::count(y.begin(), y.end(), tg::real(0));
    CHECK(double(zeros) / 100000 == doctest::Approx(0.25).epsilon(0.02));
    // Every survivor is scaled by 1 / (1 - p).
    const auto scaled = std::count_if(
        y.begin(), y.end(), [](tg::real v) { return std::abs(double(v) - 1 / 0.75) < 1e-6; });
    CHECK(zeros + scaled == 100000);
    nn::Dropout same(0.25, {.seed = 5});
    CHECK(same(x).value() == y);
    drop.eval();
    CHECK(drop(x).value() == x.value());
    CHECK_THROWS_WITH_AS(nn::Dropout(1.5), doctest::Contains("between 0 and 1, but got 1.5"),
                         std::invalid_argument);
}

TEST_CASE("CrossEntropyLoss and MSELoss modules take two arguments and run hooks") {
    nn::CrossEntropyLoss ce;
    std::vector<tg::real> seen;
    ce.register_forward_hook(
        [&](const std::string&, const Tensor&, const Tensor& out) { seen.push_back(out.item()); });
    // Two equal logits: log 2. A confident right answer: log(1 + e^-4).
    const Tensor loss = ce(Tensor(Array{{0, 0}, {4, 0}}), tg::Labels{1, 0});
    const double expected = (std::log(2.0) + std::log1p(std::exp(-4.0))) / 2;
    CHECK(loss.item() == doctest::Approx(expected).epsilon(1e-6));
    CHECK(seen == std::vector<tg::real>{loss.item()});
    nn::MSELoss mse;
    CHECK(mse(Tensor(Array{1, 2, 3}), Tensor(Array{1, 0, 0})).item() == doctest::Approx(13.0 / 3));
    CHECK_THROWS_WITH_AS(static_cast<nn::Module&>(mse)(Tensor(Array{1})),
                         doctest::Contains("no one-input forward"), std::logic_error);
}

TEST_CASE("a CNN prints exactly as PyTorch prints the same nn.Sequential") {
    nn::Sequential model(nn::Conv2d(1, 4, 3), nn::BatchNorm2d(4), nn::ReLU(), nn::MaxPool2d(2),
                         nn::Flatten(), nn::Linear(4 * 13 * 13, 10), nn::Dropout(0.25),
                         nn::AvgPool2d(2),
                         nn::Conv2d(2, 3, 3, {.stride = 2, .padding = 1, .bias = false}),
                         nn::BatchNorm1d(3, {.momentum = std::nullopt, .affine = false}),
                         nn::InstanceNorm2d(3), nn::LayerNorm({4, 4}), nn::LayerNorm({4}),
                         nn::GroupNorm(2, 4), nn::CrossEntropyLoss(), nn::MSELoss());
    std::ostringstream out, repr;
    out << model;
    model.print(repr);
    // print() writes the text of str(model); << ends the line as Python's print(model) does.
    CHECK(out.str() == repr.str() + "\n");
    // The text of print(model) in PyTorch 1.13.
    CHECK(repr.str() ==
          "Sequential(\n"
          "  (0): Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1))\n"
          "  (1): BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n"
          "  (2): ReLU()\n"
          "  (3): MaxPool2d(kernel_size=2, stride=2, padding=0)\n"
          "  (4): Flatten(start_dim=1, end_dim=-1)\n"
          "  (5): Linear(in_features=676, out_features=10, bias=True)\n"
          "  (6): Dropout(p=0.25)\n"
          "  (7): AvgPool2d(kernel_size=2, stride=2, padding=0)\n"
          "  (8): Conv2d(2, 3, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), bias=False)\n"
          "  (9): BatchNorm1d(3, eps=1e-05, momentum=None, affine=False, "
          "track_running_stats=True)\n"
          "  (10): InstanceNorm2d(3, eps=1e-05, momentum=0.1, affine=False, "
          "track_running_stats=False)\n"
          "  (11): LayerNorm((4, 4), eps=1e-05, elementwise_affine=True)\n"
          "  (12): LayerNorm((4,), eps=1e-05, elementwise_affine=True)\n"
          "  (13): GroupNorm(2, 4, eps=1e-05, affine=True)\n"
          "  (14): CrossEntropyLoss()\n"
          "  (15): MSELoss()\n"
          ")");
    // And its state dict has PyTorch's names.
    std::vector<std::string> names;
    for (const auto& [name, t] : model.state_dict())
        names.push_back(name);
    CHECK(names == std::vector<std::string>{
                       "0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                       "1.running_var", "1.num_batches_tracked", "5.weight", "5.bias", "8.weight",
                       "9.running_mean", "9.running_var", "9.num_batches_tracked", "11.weight",
                       "11.bias", "12.weight", "12.bias", "13.weight", "13.bias"});
}

// ---- the layer catalog (tapegrad/nn/catalog.hpp): every layer, by its entry beside it ----------

TEST_CASE("every catalog layer prints as PyTorch prints it, with PyTorch's state_dict names") {
    std::set<std::string> seen;
    for (const nn::LayerExample& example : nn::layer_catalog()) {
        INFO(std::string(example.repr));
        CHECK(seen.insert(example.repr).second);
        const std::unique_ptr<nn::Module> m = example.make();
        std::ostringstream out;
        m->print(out);
        CHECK(out.str() == example.repr);
        std::vector<std::string> names;
        for (const auto& [name, t] : m->state_dict())
            names.push_back(name);
        CHECK(names == example.state);
        for (const Tensor& p : m->parameters())
            CHECK(p.requires_grad());
    }
    CHECK(seen.size() >= 20);
}

TEST_CASE("every catalog layer runs forward in training and eval, and backward to each tensor") {
    for (const nn::LayerExample& example : nn::layer_catalog()) {
        INFO(std::string(example.repr));
        const std::unique_ptr<nn::Module> m = example.make();
        tg::Generator gen(3);
        const Tensor x(tg::normal(example.input, 0.0, 1.0, gen), true);
        tg::Shape out_shape;
        {
            tg::Tape tape;
            const Tensor y = (*m)(x);
            out_shape = y.shape();
            tape.backward(y, tg::normal(y.shape(), 0.0, 1.0, gen));
        }
        REQUIRE(x.has_grad());
        CHECK(x.grad().shape() == x.shape());
        for (const auto& named : m->named_parameters()) {
            const auto& p = named.second;
            INFO(named.first);  // not a structured binding: clang 14 cannot capture one (INFO)
            REQUIRE(p.has_grad());
            CHECK(p.grad().shape() == p.shape());
        }
        m->eval();
        CHECK((*m)(x).shape() == out_shape);
    }
}

TEST_CASE("every catalog layer that names a PyTorch case gives PyTorch's output") {
    std::size_t walked = 0;
    for (const nn::LayerExample& example : nn::layer_catalog()) {
        if (example.pytorch_case == nullptr) continue;
        const std::string key = example.pytorch_case;  // "<group>/<case>"
        const tgtest::Reference& r = tgtest::reference(key.substr(0, key.find('/')));
        const std::string c = key.substr(key.find('/') + 1) + "/";
        INFO(std::string(example.repr) << " vs " << key);
        const std::unique_ptr<nn::Module> m = example.make();
        std::size_t i = 1;  // in1, in2, ...: the parameters, in order
        for (Tensor p : m->parameters()) {
            const Array& value = r.at(c + "in" + std::to_string(i++));
            REQUIRE(p.shape() == tg::Shape(value.shape().begin(), value.shape().end()));
            p.value() = value;
        }
        const Tensor x(r.at(c + "in0"));
        REQUIRE(x.shape() == example.input);
        CHECK_MATCHES((*m)(x).value(), r.at(c + "out"));
        ++walked;
    }
    CHECK(walked >= 1);
}

TEST_CASE("every catalog layer's bad input throws the message it names") {
    std::size_t walked = 0;
    for (const nn::LayerExample& example : nn::layer_catalog()) {
        if (example.bad_message == nullptr) continue;
        INFO(std::string(example.repr));
        const std::unique_ptr<nn::Module> m = example.make();
        const std::string what =
            tgtest::invalid_argument_of([&] { (*m)(Tensor::zeros(example.bad_input)); });
        CHECK_MESSAGE(what.rfind(example.bad_message, 0) == 0,
                      what << " does not start with " << example.bad_message);
        ++walked;
    }
    CHECK(walked >= 1);
}
