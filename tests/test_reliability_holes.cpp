// The holes next to the ones issue 16 closed (issue 24): checkpoint handles and random state,
// empty and overflowing shapes, frozen layers, loss shapes. Each test case names the defect's
// symptom and was seen to fail on the code before its fix. Expectations are PyTorch 1.13's
// answers (checked with /usr/bin/python3) or follow from the definition.
#include <sys/stat.h>  // mkfifo

#include <atomic>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tapegrad/tapegrad.hpp"
#include "testing.hpp"

using tg::Array;
using tg::real;
using tg::Shape;
using tg::Tape;
using tg::Tensor;
namespace nn = tg::nn;

using tgtest::error_of;

namespace {

Array iota(const Shape& shape, real start = 1) {
    Array a = Array::from_shape(shape);
    for (std::size_t i = 0; i < a.size(); ++i)
        a.data()[i] = start + static_cast<real>(i);
    return a;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// High

TEST_CASE("checkpoint: another handle to fn's result keeps its value (was moved out: null)") {
    const Tensor x(Array{{1, -2}, {3, 4}}, /*requires_grad=*/true);
    Tensor kept;  // the caller's own handle to fn's result, as a forward hook would keep it
    Tape tape;
    const Tensor y = tg::checkpoint(
        [&](const Tensor& in) {
            kept = tg::mul(in, in);
            return kept;
        },
        x);
    REQUIRE(kept.shape() == Shape{2, 2});
    REQUIRE(kept.value().storage().size() == 4);  // 0 when the value was moved out
    CHECK(kept.value()(0, 1) == 4);
    CHECK(kept.value()(1, 0) == 9);
    CHECK(y.value()(1, 1) == 16);
    tape.backward(tg::sum(y));
    CHECK(x.grad()(0, 1) == -4);  // d(x^2)/dx = 2x
}

TEST_CASE("Linear(0, k): the output is the bias in every row, the bias gradient sums dy") {
    // PyTorch: F.linear(torch.zeros(4, 0), torch.zeros(3, 0), b) is b broadcast over the
    // batch; b.grad = dy summed over the batch; W.grad has shape [3, 0].
    nn::Linear lin(0, 3);
    lin.bias.value() = Array{10, 20, 30};
    for (const Shape& xs : {Shape{4, 0}, Shape{2, 5, 0}}) {
        CAPTURE(tg::shape_str(xs));
        lin.zero_grad();
        const Tensor x(Array::from_shape(xs), /*requires_grad=*/true);
        Tape tape;
        const Tensor y = lin(x);
        Shape ys = xs;
        ys.back() = 3;
        REQUIRE(y.shape() == ys);
        const std::size_t rows = y.numel() / 3;
        for (std::size_t r = 0; r < rows; ++r) {
            for (std::size_t j = 0; j < 3; ++j)
                CHECK(y.value().data()[r * 3 + j] == real(10 * (j + 1)));
        }
        // dy[r, j] = j + 1, so db[j] = rows * (j + 1)
        const Tensor w(Array{1, 2, 3});
        tape.backward(tg::sum(tg::mul(y, w)));
        for (std::size_t j = 0; j < 3; ++j)
            CHECK(lin.bias.grad()(j) == real(rows * (j + 1)));
        CHECK(lin.weight.grad().shape() == lin.weight.value().shape());
        CHECK(x.grad().size() == 0);
    }
}

TEST_CASE("checkpoint recomputes a block with Dropout with the forward's masks (RNG restored)") {
    // PyTorch's checkpoint restores the random state before the recomputation
    // (preserve_rng_state=True), so the gradients are the plain run's; after backward each
    // generator is where the plain run leaves it.
    const Array x0 = iota({64}, -20);
    auto run = [&](bool checkpointed, std::vector<real>& grad, std::uint64_t& next_layer,
                   std::uint64_t& next_default) {
        tg::manual_seed(5);
        nn::Dropout drop(0.5, {.seed = 11});  // its own generator
        const Tensor x(x0, /*requires_grad=*/true);
        auto block = [&](const Tensor& in) {
            // one mask from the layer's generator, one from the default generator
            return tg::dropout(drop(in), 0.25, /*training=*/true);
        };
        Tape tape;
        const Tensor y = checkpointed ? tg::checkpoint(block, x) : block(x);
        tape.backward(tg::sum(tg::mul(y, y)));
        grad.assign(x.grad().begin(), x.grad().end());
        next_layer = drop.generator.next();
        next_default = tg::default_generator().next();
    };
    std::vector<real> plain, ckpt;
    std::uint64_t plain_layer = 0, plain_default = 0, ckpt_layer = 0, ckpt_default = 0;
    run(false, plain, plain_layer, plain_default);
    run(true, ckpt, ckpt_layer, ckpt_default);
    std::size_t zeros = 0;
    for (real g : plain)
        zeros += g == 0;
    REQUIRE(zeros > 8);  // the masks drop something
    REQUIRE(zeros < 56);
    CHECK(ckpt == plain);
    CHECK(ckpt_layer == plain_layer);
    CHECK(ckpt_default == plain_default);
}

TEST_CASE("checkpoint with preserve_rng_state = false draws new masks in the recomputation") {
    nn::Dropout drop(0.5, {.seed = 3});
    const Tensor x(iota({64}), /*requires_grad=*/true);
    Tape tape;
    const Tensor y = tg::checkpoint(
        tg::CheckpointOptions{.preserve_rng_state = false},
        [&](const Tensor& in) { return drop(in); }, x);
    tape.backward(tg::sum(y));
    std::size_t differ = 0;  // dy/dx is the recomputation's mask; y shows the forward's
    for (std::size_t i = 0; i < 64; ++i)
        differ += (y.value()(i) == 0) != (x.grad()(i) == 0);
    CHECK(differ > 0);
}

// ---------------------------------------------------------------------------------------------
// Medium: one element-count check for every array

TEST_CASE("sizes near 2^63: every op's and layer's shape arithmetic is refused, not wrapped") {
    // Each of these used to build a tensor whose shape claims 2^64 (or more) elements with
    // nothing stored, or wrapped around to a small count (undefined behaviour in xtensor's
    // signed strides). Now each throws std::length_error (std::invalid_argument where the
    // layer reports it) naming the shape, before anything is allocated.
    const std::size_t big = std::size_t{1} << 62, two63 = std::size_t{1} << 63;
    auto refused = [](const std::function<void()>& f, const std::string& expected) {
        const std::string e = error_of(f);
        CAPTURE(e);
        CHECK(e.find(expected) != std::string::npos);
        CHECK(e.find("too large") != std::string::npos);
    };
    refused(
        [&] {
            (void)Tensor::zeros({std::size_t{1} << 33, std::size_t{1} << 31});
        },
        "[8589934592, 2147483648]");
    refused([&] { (void)Tensor::ones({0, big, 4}); }, "[0, 4611686018427387904, 4]");
    refused([&] { (void)Tensor::full({3, big}, 1); }, "[3, 4611686018427387904]");
    refused([&] { (void)nn::Linear(std::size_t{1} << 40, std::size_t{1} << 40); },
            "[1099511627776, 1099511627776]");
    const Tensor six(iota({6}));
    refused([&] { (void)tg::reshape(six, {2, two63 + 3}); }, "[2, 9223372036854775811]");
    refused([&] { (void)tg::reshape(six, {0, two63, 2}); }, "[0, 9223372036854775808, 2]");
    // Broadcasting [2^33, 1] against [1, 2^31]
    const Tensor tall(Array::from_shape({std::size_t{1} << 33, 0}));
    const Tensor wide(Array::from_shape({0, std::size_t{1} << 31}));
    refused(
        [&] {
            (void)tg::add(tg::reshape(tall, {std::size_t{1} << 33, 0, 1}),
                          tg::reshape(wide, {1, 0, std::size_t{1} << 31}));
        },
        "add: broadcasting");
    // conv2d with padding 2^31 - 1: an output [0, 1, 2^32 - 1, 2^32 - 1]
    const Tensor x(Array::from_shape({0, 1, 1, 1}));
    const Tensor w = Tensor::ones({1, 1, 1, 1});
    const std::string conv_error =
        error_of([&] { (void)tg::conv2d(x, w, Tensor{}, 1, (std::size_t{1} << 31) - 1); });
    CAPTURE(conv_error);
    CHECK(conv_error != "(no exception)");
    // A dataset claiming 2^32 x 2^32 pixels per image (rows x cols wraps to 0)
    tg::data::Dataset d;
    d.rows = d.cols = std::size_t{1} << 32;
    d.labels = {1};
    d.classes = {"a", "b"};
    const std::string data_error = error_of([&] { tg::data::DataLoader loader(d); });
    CAPTURE(data_error);
    CHECK(data_error.find("too large") != std::string::npos);
    // The limit itself: max_numel elements are accepted by the check (not allocated here).
    CHECK(tg::checked_numel({tg::max_numel}) == tg::max_numel);
    CHECK(tg::checked_numel({0, tg::max_numel}) == 0);
    CHECK_THROWS_AS(tg::checked_numel({tg::max_numel + 1}), std::length_error);
    CHECK_THROWS_AS(tg::checked_numel({2, tg::max_numel / 2 + 1}), std::length_error);
}

// ---------------------------------------------------------------------------------------------
// Medium: one atomic writer for every file

TEST_CASE("the CSV writer never writes through a symlink planted at its old temporary name") {
    tgtest::TempDir dir("csv_symlink");
    const std::string path = dir.file("h.csv");
    const std::string victim = dir.file("victim");
    { std::ofstream(victim) << "precious"; }
    const std::string planted = path + ".tmp-" + std::to_string(::getpid());
    std::filesystem::create_symlink(victim, planted);
    tg::viz::write_csv(path, {{"v", {1, 2}}});
    CHECK(tgtest::read_file(victim) == "precious");
    CHECK(tgtest::read_file(path) == "v\n1\n2\n");
    CHECK(std::filesystem::is_symlink(planted));
    CHECK_FALSE(std::filesystem::is_symlink(path));
}

TEST_CASE("two threads writing one CSV path: every write succeeds, every file is whole") {
    tgtest::TempDir dir("csv_threads");
    const std::string path = dir.file("shared.csv");
    constexpr int kWrites = 100;
    std::atomic<int> failures{0};
    std::vector<std::string> errors(2);
    auto writer = [&](int who) {
        for (int i = 0; i < kWrites; ++i) {
            try {
                tg::viz::write_text_atomically(path, std::string(1000, who ? 'b' : 'a'));
            } catch (const std::exception& e) {
                ++failures;
                errors[static_cast<std::size_t>(who)] = e.what();
            }
        }
    };
    std::thread a(writer, 0), b(writer, 1);
    a.join();
    b.join();
    CHECK_MESSAGE(failures == 0, errors[0] << " / " << errors[1]);
    const std::string text = tgtest::read_file(path);
    CHECK((text == std::string(1000, 'a') || text == std::string(1000, 'b')));
    CHECK(dir.files() == std::vector<std::string>{"shared.csv"});
}

// ---------------------------------------------------------------------------------------------
// Low

TEST_CASE("a DataLoader batch size near SIZE_MAX serves one batch, not none") {
    tg::data::Dataset d;
    d.rows = d.cols = 2;
    d.classes = {"a", "b"};
    d.labels = {0, 1, 1};
    d.images.assign(12, 0);
    for (const std::size_t b : {std::numeric_limits<std::size_t>::max(),
                                std::numeric_limits<std::size_t>::max() - 1, std::size_t{4}}) {
        CAPTURE(b);
        tg::data::DataLoader loader(d, {.batch_size = b});
        CHECK(loader.num_batches() == 1);
        std::size_t served = 0;
        for (const auto& batch : loader)
            served += batch.labels.size();
        CHECK(served == 3);
    }
}

TEST_CASE("load_state on a FIFO or /dev/zero is refused at once: not a regular file") {
    nn::Linear lin(2, 2);
    tgtest::TempDir dir("fifo");
    const std::string fifo = dir.file("pipe");
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    const std::string e1 = error_of([&] { lin.load_state(fifo); });
    CHECK(e1.find("is not a regular file (a FIFO)") != std::string::npos);
    CHECK(e1.find(fifo) != std::string::npos);
    const std::string e2 = error_of([&] { lin.load_state("/dev/zero"); });
    CHECK(e2.find("is not a regular file (a character device)") != std::string::npos);
}

TEST_CASE("update_bn: an empty loader is refused and keeps the trained statistics") {
    // PyTorch's update_bn resets them to 0/1 first and leaves them so.
    nn::BatchNorm1d bn(2);
    bn.running_mean.value() = Array{3, 4};
    bn.running_var.value() = Array{5, 6};
    for (const std::vector<Tensor>& loader :
         {std::vector<Tensor>{}, std::vector<Tensor>{Tensor::zeros({0, 2})}}) {
        CHECK_THROWS_WITH_AS(nn::update_bn(bn, loader),
                             doctest::Contains("update_bn: the loader gave no examples ("),
                             std::invalid_argument);
        CHECK(bn.running_mean.value() == Array{3, 4});
        CHECK(bn.running_var.value() == Array{5, 6});
        CHECK(bn.is_training());
    }
}

TEST_CASE("update_bn: an empty batch does not halve the average") {
    // An empty batch, then [[0, 0], [2, 2]] (mean 1, unbiased var 2): the average is the one
    // batch's (counted, the empty batch made it 1/2 of it).
    nn::BatchNorm1d bn(2);
    const std::vector<Tensor> loader{Tensor::zeros({0, 2}), Tensor(Array{{0, 0}, {2, 2}})};
    nn::update_bn(bn, loader);
    CHECK(bn.running_mean.value() == Array{1, 1});
    CHECK(bn.running_var.value() == Array{2, 2});
    CHECK(bn.num_batches_tracked.item() == 1);
}

TEST_CASE("mse_loss refuses input and target of different shapes, naming both") {
    const Tensor input = tg::reshape(Tensor(Array{1, 2, 3, 4}), {4, 1});  // [4, 1]
    const Tensor target(Array{1, 2, 3, 4});                               // [4]
    CHECK_THROWS_WITH_AS(tg::mse_loss(input, target),
                         doctest::Contains("mse_loss: input [4, 1] and target [4] have different "
                                           "shapes; expected the same (they would broadcast to "
                                           "[4, 4]"),
                         std::invalid_argument);
    // With the explicit flag: PyTorch's broadcast, 16 differences averaged (sum 40 / 16).
    CHECK(tg::mse_loss(input, target, {.broadcast = true}).item() == doctest::Approx(2.5));
    CHECK(tg::mse_loss(input, tg::reshape(target, {4, 1})).item() == 0);
}

// ---------------------------------------------------------------------------------------------
// Blind spots: tests that would not have noticed

TEST_CASE("state file: tensor names with backslashes, control bytes and non-ASCII round-trip") {
    tgtest::TempDir dir("names");
    const std::string path = dir.file("names.tgs");
    const std::vector<std::string> names = {"a\\b",
                                            std::string("c\x01\x1b\x7f"
                                                        "d"),
                                            "\xc3\xa9\xe5\x90\x8d", std::string("n\0ul", 4),
                                            "\\x41"};
    tg::nn::NamedTensors state;
    for (std::size_t i = 0; i < names.size(); ++i)
        state.emplace_back(names[i], Tensor(Array{static_cast<real>(i)}));
    tg::nn::write_state_file(path, state);
    const tg::nn::NamedTensors back = tg::nn::read_state_file(path);
    REQUIRE(back.size() == names.size());
    for (std::size_t i = 0; i < names.size(); ++i) {
        CHECK(back[i].first == names[i]);  // the bytes themselves, not their escaped form
        CHECK(back[i].second.value()(0) == static_cast<real>(i));
    }
}

TEST_CASE("BatchNorm reset_running_stats() and reset_parameters(): 0, 1, 0 and γ 1, β 0") {
    nn::BatchNorm2d bn(3);
    for (Tensor* t : {&bn.running_mean, &bn.running_var, &bn.weight, &bn.bias})
        t->value() = Array{5, 6, 7};
    bn.num_batches_tracked.value().fill(9);
    bn.reset_running_stats();
    CHECK(bn.running_mean.value() == Array{0, 0, 0});
    CHECK(bn.running_var.value() == Array{1, 1, 1});
    CHECK(bn.num_batches_tracked.item() == 0);
    CHECK(bn.weight.value() == Array{5, 6, 7});  // the affine parameters are not statistics
    bn.running_var.value() = Array{4, 4, 4};
    bn.reset_parameters();
    CHECK(bn.running_var.value() == Array{1, 1, 1});
    CHECK(bn.weight.value() == Array{1, 1, 1});
    CHECK(bn.bias.value() == Array{0, 0, 0});
}

TEST_CASE("unfreeze_batchnorm on a model in eval mode leaves it in eval mode") {
    nn::Sequential model;
    model.push_back(nn::Linear(2, 2));
    model.push_back(nn::BatchNorm1d(2));
    model.eval();
    tg::nn::freeze_batchnorm(model);
    tg::nn::unfreeze_batchnorm(model);
    const auto& bn = model.at<nn::BatchNorm1d>(1);
    CHECK_FALSE(bn.frozen);
    CHECK_FALSE(bn.is_training());  // the model's mode, not training
    CHECK(bn.weight.requires_grad());
    model.train();
    CHECK(bn.is_training());
}

TEST_CASE("Adam puts ε outside the square root, in this build's precision") {
    // One step from p = 1 with g = 1e-6, ε = 1e-6, lr = 1: m̂ = g, v̂ = g², so
    // p = 1 - g / (sqrt(v̂) + ε) = 1 - 0.5. With ε inside the root, g / sqrt(g² + ε) ≈ 1e-3.
    Tensor p(Array{1}, /*requires_grad=*/true);
    tg::optim::Adam opt({p}, {.lr = 1, .eps = 1e-6});
    p.accumulate_grad(Array{static_cast<real>(1e-6)});
    opt.step();
    CHECK(p.value()(0) == doctest::Approx(0.5).epsilon(1e-5));
}

TEST_CASE("the loader's shuffle gives every permutation (Fisher-Yates, not Sattolo)") {
    // Sattolo's variant (j < i instead of j <= i) only makes cyclic permutations: no element
    // stays in place, and of the 6 orders of 3 examples only 2 ever appear.
    tg::data::Dataset d;
    d.rows = d.cols = 1;
    d.classes = {"a", "b", "c"};
    d.labels = {0, 1, 2};
    d.images = {0, 1, 2};
    tg::data::DataLoader loader(d, {.batch_size = 3, .shuffle = true, .seed = 7});
    std::map<std::vector<std::int64_t>, int> seen;
    constexpr int kEpochs = 600;
    for (int e = 0; e < kEpochs; ++e) {
        for (const auto& batch : loader)
            ++seen[batch.labels];
    }
    CHECK(seen.size() == 6);
    for (const auto& entry : seen) {  // (clang 14 cannot capture a structured binding)
        const int count = entry.second;
        CAPTURE(count);
        CHECK(count > kEpochs / 6 / 2);  // each about 100 of 600
    }
}

TEST_CASE("group_norm with C/G != G (6 channels, 2 groups of 3) against the definition") {
    // x [2, 6, 2]: groups are channels {0, 1, 2} and {3, 4, 5} of each example; μ and σ²
    // (biased) over the group's 6 values, y = (x - μ) / sqrt(σ² + eps), computed here in double.
    const Array x0 = iota({2, 6, 2});
    Array xv = x0;
    for (std::size_t i = 0; i < xv.size(); ++i)
        xv.data()[i] = static_cast<real>((static_cast<int>(i) * 7 % 11) - 5);
    const Tensor x(xv);
    const double eps = 1e-5;
    const Tensor y = tg::group_norm(x, 2, {}, {}, eps);
    REQUIRE(y.shape() == Shape{2, 6, 2});
    for (std::size_t n = 0; n < 2; ++n) {
        for (std::size_t g = 0; g < 2; ++g) {
            double mean = 0, var = 0;
            for (std::size_t c = 3 * g; c < 3 * g + 3; ++c)
                for (std::size_t l = 0; l < 2; ++l)
                    mean += xv(n, c, l) / 6.0;
            for (std::size_t c = 3 * g; c < 3 * g + 3; ++c)
                for (std::size_t l = 0; l < 2; ++l)
                    var += (xv(n, c, l) - mean) * (xv(n, c, l) - mean) / 6.0;
            for (std::size_t c = 3 * g; c < 3 * g + 3; ++c) {
                for (std::size_t l = 0; l < 2; ++l) {
                    CAPTURE(n);
                    CAPTURE(c);
                    CHECK(
                        y.value()(n, c, l) ==
                        doctest::Approx((xv(n, c, l) - mean) / std::sqrt(var + eps)).epsilon(1e-5));
                }
            }
        }
    }
}
