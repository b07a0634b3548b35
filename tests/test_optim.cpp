// SGD and Adam: three steps on given parameters and gradients, against torch.optim (1.13).
#include "tapegrad/optim/adam.hpp"
#include "tapegrad/optim/sgd.hpp"
#include "testing.hpp"

using tg::Array;
using tg::Tensor;

namespace {

const tgtest::Reference& ref() {
    return tgtest::reference("nn");
}

// Runs three steps of `opt` on the reference parameters p0, p1 (whose handles it was built
// from) with the reference gradients, checking both parameters after every step.
// With skip_first_p1, p1 has no gradient in step 1.
template <class Opt>
void check_steps(const std::string& name, Opt& opt, Tensor& p0, Tensor& p1, bool skip_first_p1) {
    for (int s = 1; s <= 3; ++s) {
        const std::string step = std::to_string(s);
        CAPTURE(name);
        CAPTURE(s);
        p0.zero_grad(/*set_to_none=*/true);
        p1.zero_grad(/*set_to_none=*/true);
        p0.accumulate_grad(ref().at("optim/grad" + step + "_p0"));
        if (!(skip_first_p1 && s == 1)) p1.accumulate_grad(ref().at("optim/grad" + step + "_p1"));
        opt.step();
        CHECK_MATCHES(p0.value(), ref().at(name + "/step" + step + "_p0"));
        CHECK_MATCHES(p1.value(), ref().at(name + "/step" + step + "_p1"));
    }
}

void run_sgd(const std::string& name, tg::optim::SGDOptions options, bool skip = false) {
    Tensor p0(ref().at("optim/p0"), true), p1(ref().at("optim/p1"), true);
    tg::optim::SGD opt({p0, p1}, options);
    check_steps(name, opt, p0, p1, skip);
}

void run_adam(const std::string& name, tg::optim::AdamOptions options, bool skip = false) {
    Tensor p0(ref().at("optim/p0"), true), p1(ref().at("optim/p1"), true);
    tg::optim::Adam opt({p0, p1}, options);
    check_steps(name, opt, p0, p1, skip);
}

}  // namespace

TEST_CASE("SGD matches torch.optim.SGD over three steps") {
    run_sgd("sgd_plain", {.lr = 0.1});
    run_sgd("sgd_momentum", {.lr = 0.1, .momentum = 0.9});
    run_sgd("sgd_dampening", {.lr = 0.1, .momentum = 0.9, .dampening = 0.3});
    run_sgd("sgd_nesterov", {.lr = 0.1, .momentum = 0.9, .nesterov = true});
    run_sgd("sgd_weight_decay", {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.1});
    // A parameter without a gradient is skipped; its momentum buffer starts at its first step.
    run_sgd("sgd_skip", {.lr = 0.1, .momentum = 0.9}, /*skip=*/true);
}

TEST_CASE("Adam matches torch.optim.Adam over three steps") {
    run_adam("adam", {.lr = 0.01});
    run_adam("adam_weight_decay",
             {.lr = 0.01, .betas = {0.8, 0.99}, .eps = 1e-6, .weight_decay = 0.1});
    // A parameter without a gradient is skipped; its step count t starts at its first update.
    run_adam("adam_skip", {.lr = 0.01}, /*skip=*/true);
}

TEST_CASE("optimiser state: the first momentum buffer is the first gradient; Adam counts steps") {
    Tensor p(Array{1, 2}, true), q(Array{3}, true);
    tg::optim::SGD sgd({p, q}, {.lr = 0.5, .momentum = 0.9});
    p.accumulate_grad(Array{0.25, -1});
    sgd.step();
    REQUIRE(sgd.momentum_buffer(0).has_value());
    CHECK(*sgd.momentum_buffer(0) == Array{0.25, -1});
    CHECK_FALSE(sgd.momentum_buffer(1).has_value());  // q had no gradient
    CHECK(q.value() == Array{3});
    CHECK(p.value() == Array{0.875, 2.5});

    tg::optim::Adam adam({p, q});
    adam.step();
    CHECK(adam.state(0).step == 1);
    CHECK(adam.state(1).step == 0);
    // zero_grad zero-fills by default (PyTorch 1.13), or releases.
    adam.zero_grad();
    CHECK(p.grad() == Array{0, 0});
    adam.zero_grad(/*set_to_none=*/true);
    CHECK_FALSE(p.has_grad());
}

TEST_CASE("invalid optimiser options are rejected as PyTorch does") {
    Tensor p(Array{1}, true);
    CHECK_THROWS_WITH_AS(tg::optim::SGD({p}, {}), doctest::Contains("options.lr is required"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::optim::SGD({p}, {.lr = -1}),
                         doctest::Contains("invalid learning rate"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::optim::SGD({p}, {.lr = 0.1, .nesterov = true}),
                         "SGD: Nesterov momentum requires a momentum and zero dampening",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::optim::SGD({}, {.lr = 0.1}), "SGD: got an empty parameter list",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::optim::Adam({p}, {.betas = {1.0, 0.999}}),
                         doctest::Contains("invalid beta parameter at index 0"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::optim::Adam({p}, {.eps = -1}),
                         doctest::Contains("invalid epsilon value"), std::invalid_argument);
}
