// The op catalog (tapegrad/ops/catalog.hpp), the one list of ops the tests walk: here, every op
// with two kernels gives the reference kernels' numbers with the fast ones, on 1 and 2 threads;
// every op's gradients match central finite differences (float64 binary); every example that
// names a PyTorch case gives PyTorch's output and gradients, with each kernel set; every
// example's bad call throws the message it names.
// (tests/test_tape.cpp walks it for the named backward structs, tests/test_reliability_ops.cpp
// for empty batches.)
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "../src/ops/kernels/kernel_set.hpp"
#include "catalog_checks.hpp"
#include "tapegrad/ops/catalog.hpp"
#include "tapegrad/tapegrad.hpp"
#include "testing.hpp"
#include "thread_count.hpp"

namespace {

/// sum(out · r), r fixed: a scalar whose gradient reaches every element of out.
tg::Tensor weighted_sum(const tg::Tensor& out, const tg::Array& r) {
    return tg::sum(tg::mul(out, tg::Tensor(r)));
}

}  // namespace

TEST_CASE("the op catalog names each example once and gives each a call") {
    std::set<std::string> names;
    for (const tg::OpExample& example : tg::op_catalog()) {
        INFO(std::string(example.name));
        CHECK(names.insert(example.name).second);
        CHECK(static_cast<bool>(example.call));
        CHECK_FALSE(example.inputs.empty());
    }
    CHECK(names.count("batch_norm (eval)") == 1);
}

TEST_CASE("set_kernels points the ops' kernel calls at the set it names") {
    // Else the next test would compare a kernel set with itself.
    {
        tgtest::KernelsGuard reference(tg::Kernels::reference);
        CHECK(tg::kernels::in_use == &tg::kernels::reference_set);
    }
    {
        tgtest::KernelsGuard fast(tg::Kernels::fast);
        CHECK(tg::kernels::in_use == &tg::kernels::fast_set);
    }
    // (In double parentheses: doctest cannot print a function pointer.)
    CHECK((tg::kernels::reference_set.batch_norm_backward ==
           &tg::kernels::reference::batch_norm_backward));
    CHECK((tg::kernels::fast_set.batch_norm_backward == &tg::kernels::fast::batch_norm_backward));
}

TEST_CASE("every op with two kernels: the fast ones give the reference ones' numbers") {
    std::size_t walked = 0;
    for (const std::size_t threads : {1, 2}) {
        const tgtest::ThreadCount count(threads);
        for (const tg::OpExample& example : tg::op_catalog()) {
            if (!example.two_kernels) continue;
            INFO(std::string(example.name) << " on " << threads << " threads");
            std::vector<tg::Array> values;
            tg::Generator gen(11);
            for (const tg::Shape& shape : example.inputs)
                values.push_back(tg::normal(shape, 0.0, 1.0, gen));
            const std::string why = tgtest::fast_vs_reference(values, example.call);
            CHECK_MESSAGE(why.empty(), why);
            ++walked;
        }
    }
    CHECK(walked >= 2 * 10);  // relu, pooling, conv2d, losses, the normalisations
}

TEST_CASE("gradcheck float64: every op in the catalog" * doctest::skip(!tg::is_double)) {
    std::size_t walked = 0;
    for (const tg::OpExample& example : tg::op_catalog()) {
        INFO(std::string(example.name));
        // Inputs in [0.5, 1.5]: inside log's, sqrt's and pow's domains, away from relu's kink,
        // without ties for max_pool2d.
        tg::Generator gen(5);
        std::vector<tg::Tensor> inputs;
        for (const tg::Shape& shape : example.inputs)
            inputs.emplace_back(tg::uniform(shape, 0.5, 1.5, gen), true);
        const tg::Array r = tg::normal(example.call(inputs).shape(), 0.0, 1.0, gen);
        CHECK_GRADCHECK(
            [&](const std::vector<tg::Tensor>& in) { return weighted_sum(example.call(in), r); },
            inputs);
        ++walked;
    }
    CHECK(walked == tg::op_catalog().size());
}

TEST_CASE("vs PyTorch: every catalog example that names a PyTorch case, each kernel set") {
    std::size_t walked = 0;
    for (const tg::OpExample& example : tg::op_catalog()) {
        if (example.pytorch_case == nullptr) continue;
        const std::string key = example.pytorch_case;  // "<group>/<case>"
        const auto& ref = tgtest::reference(key.substr(0, key.find('/')));
        const std::string c = key.substr(key.find('/') + 1) + "/";
        for (const tg::Kernels k : tgtest::kBothKernels) {
            if (!example.two_kernels && k != tg::kernels_in_use()) continue;
            tgtest::KernelsGuard guard(k);
            INFO(std::string(example.name)
                 << " vs " << key << " with the " << std::string(tg::kernels_name()) << " kernels");
            std::vector<tg::Tensor> inputs;
            for (std::size_t i = 0; i < example.inputs.size(); ++i) {
                inputs.emplace_back(ref.at(c + "in" + std::to_string(i)), true);
                REQUIRE(inputs.back().shape() == example.inputs[i]);
            }
            tg::Tape tape;
            const tg::Tensor out = example.call(inputs);
            CHECK_MATCHES(out.value(), ref.at(c + "out"));
            tape.backward(out, ref.at(c + "dy"));
            for (std::size_t i = 0; i < inputs.size(); ++i) {
                INFO("grad of input " << i);
                CHECK_MATCHES_SCALED(inputs[i].grad(), ref.at(c + "din" + std::to_string(i)));
            }
        }
        ++walked;
    }
    CHECK(walked >= 1);
}

TEST_CASE("errors: every catalog example's bad call throws the message it names") {
    std::size_t walked = 0;
    for (const tg::OpExample& example : tg::op_catalog()) {
        if (example.bad_message == nullptr) continue;
        INFO(std::string(example.name));
        std::vector<tg::Tensor> inputs;
        for (const tg::Shape& shape : example.bad_inputs)
            inputs.push_back(tg::Tensor::zeros(shape, true));
        const std::string what = tgtest::invalid_argument_of([&] { example.call(inputs); });
        CHECK_MESSAGE(what.rfind(example.bad_message, 0) == 0,
                      what << " does not start with " << example.bad_message);
        ++walked;
    }
    CHECK(walked >= 1);
}
