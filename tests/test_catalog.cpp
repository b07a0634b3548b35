// The op catalog (tapegrad/ops/catalog.hpp), the one list of ops the tests walk: here, every op
// with two kernels gives the reference kernels' numbers with the fast ones, on 1 and 2 threads.
// (tests/test_tape.cpp walks it for the named backward structs, tests/test_reliability_ops.cpp
// for empty batches.)
#include <set>
#include <string>
#include <vector>

#include "../src/ops/kernels/kernel_set.hpp"
#include "tapegrad/ops/catalog.hpp"
#include "tapegrad/tapegrad.hpp"
#include "testing.hpp"
#include "thread_count.hpp"

TEST_CASE("the op catalog names each example once and gives each a call") {
    std::set<std::string> names;
    for (const tg::OpExample& example : tg::op_catalog()) {
        INFO(example.name);
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
            INFO(example.name << " on " << threads << " threads");
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
