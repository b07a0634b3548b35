// The tape itself: recording, the reverse walk, accumulation, errors, printing.
#include <sstream>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

#include <xtensor/xbuilder.hpp>

#include "tapegrad/ops/catalog.hpp"
#include "tapegrad/ops/fused.hpp"
#include "tapegrad/tapegrad.hpp"
#include "testing.hpp"

using tg::Array;
using tg::Tape;
using tg::Tensor;

TEST_CASE("no active tape: nothing is recorded and outputs do not require grad") {
    Tensor a(Array{1, 2, 3}, true);
    Tensor b = tg::mul(a, a);
    CHECK_FALSE(b.requires_grad());
    CHECK(b.is_leaf());
    CHECK(Tape::active() == nullptr);
}

TEST_CASE("an op records one entry only when an input requires grad") {
    Tape tape;
    CHECK(Tape::active() == &tape);
    Tensor x(Array{1, 2}, false), w(Array{3, 4}, true);
    Tensor y = tg::mul(x, x);  // no input requires grad
    CHECK(tape.size() == 0);
    CHECK_FALSE(y.requires_grad());
    Tensor z = tg::mul(x, w);
    CHECK(tape.size() == 1);
    CHECK(z.requires_grad());
    CHECK_FALSE(z.is_leaf());
    CHECK(std::string(tape.entries()[0].op) == "mul");
}

TEST_CASE("a tensor used twice gets both contributions: b = a + a, c = b * b") {
    // c = (2a)^2, dc/da = 8a
    Tensor a(Array{1, -2, 3}, true);
    Tape tape;
    Tensor b = tg::add(a, a);
    Tensor c = tg::mul(b, b);
    tape.backward(c, Array{1, 1, 1});
    CHECK(a.grad() == Array{8, -16, 24});
}

namespace {
// An op's backward written as a named struct (as BatchNormBackward is): y = 3x.
struct TripleBackward final : tg::BackwardClosure {
    explicit TripleBackward(const Tensor& input) : x(input) {}
    void operator()(const Array& grad_output) override {
        ++calls;
        x.accumulate_grad(Array(3 * grad_output));
    }
    Tensor x;
    int calls = 0;
};
}  // namespace

TEST_CASE("a named backward struct is kept as it is: the tape calls it with no wrapper") {
    Tensor x(Array{1, -2}, true);
    Tape tape;
    Tensor y(Array(3 * x.value()));
    tape.record("triple", {x}, y, TripleBackward(x));
    auto* named = dynamic_cast<TripleBackward*>(&tape.entries()[0].backward.closure());
    REQUIRE(named != nullptr);  // the recorded closure is the struct itself
    tape.backward(y, Array{1, 10});
    CHECK(named->calls == 1);
    CHECK(x.grad() == Array{3, 30});
    // A lambda recorded by hand is wrapped (BackwardClosureOf), and the tape still calls it.
    Tensor z(Array{1, -2}, true);
    Tape other;
    Tensor w(Array(2 * z.value()));
    other.record("double", {z}, w, [z](const Array& g) { z.accumulate_grad(Array(2 * g)); });
    // (The closure named first: clang warns when typeid's operand is a call, evaluated here.)
    const auto& closure = other.entries()[0].backward.closure();
    const std::string type = typeid(closure).name();
    CHECK(type.find("BackwardClosureOf") != std::string::npos);
    other.backward(w, Array{1, 10});
    CHECK(z.grad() == Array{2, 20});
}

TEST_CASE("every op records a named backward struct, none a lambda behind the wrapper") {
    // In gdb, `bt` then names the op's backward (tg::(anonymous namespace)::MulBackward::...)
    // and `step` from the tape's loop lands in it (docs/debugging.md). The dynamic type's
    // (mangled) name says which struct the tape holds. Every op of the catalog
    // (tapegrad/ops/catalog.hpp), with the fast kernels (with the reference ones,
    // relu_max_pool2d records relu and max_pool2d).
    tgtest::KernelsGuard fast(tg::Kernels::fast);
    for (const tg::OpExample& example : tg::op_catalog()) {
        INFO(std::string(example.name));
        std::vector<Tensor> inputs;
        for (std::size_t i = 0; i < example.inputs.size(); ++i) {
            Array v = Array::from_shape(example.inputs[i]);
            for (std::size_t j = 0; j < v.size(); ++j)  // positive: log, sqrt, pow take them
                v.data()[j] = static_cast<tg::real>(0.25 + 0.3 * static_cast<double>(i) +
                                                    0.1 * static_cast<double>(j % 7));
            inputs.emplace_back(std::move(v), true);
        }
        Tape tape;
        const Tensor out = example.call(inputs);
        const tg::TapeEntry* entry = nullptr;
        for (const auto& e : tape.entries())
            if (&e.output.node() == &out.node()) entry = &e;
        REQUIRE(entry != nullptr);
        const auto& closure = entry->backward.closure();  // (see above: not a call in typeid)
        const std::string type = typeid(closure).name();
        INFO(std::string(entry->op), " records ", type);
        CHECK(type.find(example.backward) != std::string::npos);
        CHECK(type.find("BackwardClosureOf") == std::string::npos);
    }
}

TEST_CASE("gradients accumulate into leaves across tapes until zero_grad") {
    Tensor a(Array{2}, true);
    for (int i = 0; i < 2; ++i) {
        Tape tape;
        tape.backward(tg::mul(a, a));  // d(a^2)/da = 2a = 4
    }
    CHECK(a.grad() == Array{8});
    a.zero_grad();
    CHECK(a.grad() == Array{0});
    a.zero_grad(/*set_to_none=*/true);
    CHECK_FALSE(a.has_grad());
}

TEST_CASE("non-leaf grads are released after backward unless retained") {
    Tensor a(Array{3}, true);
    Tape tape;
    Tensor b = tg::mul(a, a);
    Tensor c = tg::mul(b, a);
    Tensor d = tg::mul(c, a);  // d = a^4
    b.retain_grad();
    tape.backward(d);
    CHECK(b.has_grad());
    CHECK(b.grad() == Array{9});  // dd/db = a^2
    CHECK_FALSE(c.has_grad());
    CHECK(a.grad() == Array{4 * 27});
}

TEST_CASE("detach cuts a tensor from the tape") {
    Tensor a(Array{3}, true);
    Tape tape;
    Tensor b = tg::mul(a, a);
    Tensor c = tg::mul(b.detach(), a);  // only the direct use of a counts: dc/da = b = 9
    tape.backward(c);
    CHECK(a.grad() == Array{9});
}

TEST_CASE("backward twice on one tape is an error") {
    Tensor a(Array{3}, true);
    Tape tape;
    Tensor b = tg::mul(a, a);
    tape.backward(b);
    CHECK_THROWS_WITH_AS(tape.backward(b), doctest::Contains("already walked backward"),
                         std::logic_error);
}

TEST_CASE("backward on a tensor that is not on this tape is an error") {
    Tensor a(Array{3}, true);
    Tensor outside = tg::mul(a, a);  // no tape: a plain value
    Tape tape;
    CHECK_THROWS_WITH_AS(tape.backward(outside), doctest::Contains("not produced by an op"),
                         std::logic_error);
    Tensor other;
    {
        Tape inner;
        other = tg::mul(a, a);
    }
    CHECK_THROWS_WITH_AS(tape.backward(other), doctest::Contains("not produced by an op"),
                         std::logic_error);
    CHECK_THROWS_WITH_AS(tape.backward(tg::mul(Tensor(Array{1, 2}, true), a)),
                         doctest::Contains("must have one element"), std::logic_error);
}

TEST_CASE("nested tapes and NoGradGuard restore the previous active tape") {
    Tape outer;
    {
        Tape inner;
        CHECK(Tape::active() == &inner);
        {
            tg::NoGradGuard no_grad;
            CHECK(Tape::active() == nullptr);
        }
        CHECK(Tape::active() == &inner);
    }
    CHECK(Tape::active() == &outer);
}

TEST_CASE("print and to_dot show ops, names and shapes") {
    Tensor x(Array{{1, 2, 3}, {4, 5, 6}}, false, "x");
    Tensor w(Array{1, 2, 3}, true, "w");
    Tape tape;
    Tensor y = tg::mul(x, w);
    Tensor z = tg::add(y, y);
    std::ostringstream out;
    tape.print(out);
    const std::string text = out.str();
    CHECK(text.find("Tape with 2 entries") != std::string::npos);
    CHECK(text.find("%0 = mul(x[2, 3], w[3]) -> [2, 3]") != std::string::npos);
    CHECK(text.find("%1 = add(%0[2, 3], %0[2, 3]) -> [2, 3]") != std::string::npos);
    const std::string dot = tape.to_dot();
    CHECK(dot.find("digraph tape") != std::string::npos);
    CHECK(dot.find("op0 -> op1") != std::string::npos);
    CHECK(dot.find("w\\n[3]") != std::string::npos);
}

TEST_CASE("a shape mismatch names the op and both shapes") {
    Tensor a(Array{{1, 2, 3}}, true), b(Array{1, 2}, true);
    CHECK_THROWS_WITH_AS(tg::add(a, b),
                         "add: shapes [1, 3] and [2] cannot be broadcast (axis 1: 3 vs 2)",
                         std::invalid_argument);
}

TEST_CASE("gradcheck fails for a wrong gradient") {
    // An op whose backward is deliberately wrong by a factor of 2.
    auto wrong = [](const std::vector<Tensor>& in) {
        Tensor x = in[0];
        Tensor out(x.value() * x.value());
        if (Tape* tape = tg::recording_tape(x)) {
            tape->record("wrong_square", {x}, out, [x](const Array& g) {
                x.accumulate_grad(4 * g * x.value());  // should be 2 g x
            });
        }
        return out;
    };
    Tensor x(Array{0.5}, true);
    const auto r = tg::gradcheck(wrong, {x}, 1e-3, 1e-4, 1e-3);
    CHECK_FALSE(r.ok);
    CHECK(r.message.find("analytic") != std::string::npos);
}

TEST_CASE("profiling times each entry's forward and backward") {
    Tensor a(tg::normal({200, 200}), true);
    Tape tape;
    tape.enable_profiling();
    Tensor b = tg::mul(a, a);
    Tensor c = tg::add(b, a);
    tape.backward(c, xt::ones<tg::real>({200, 200}));
    REQUIRE(tape.size() == 2);
    for (const auto& e : tape.entries()) {
        CHECK(e.forward_seconds > 0.0);
        CHECK(e.backward_seconds > 0.0);
    }
    std::ostringstream out;
    tape.print_profile(out);
    CHECK(out.str().find("mul") != std::string::npos);
    CHECK(out.str().find("total") != std::string::npos);
}

TEST_CASE("the profile's columns stay lined up with an op name longer than 16 characters") {
    Tensor x(tg::normal({2, 3, 4, 4}), true);
    const Tensor mean(tg::Array(xt::zeros<tg::real>({3}))), var(tg::Array(xt::ones<tg::real>({3})));
    const Tensor w(tg::Array(xt::ones<tg::real>({3})), true),
        b(tg::Array(xt::zeros<tg::real>({3})), true);
    Tape tape;
    tape.enable_profiling();
    const Tensor y = tg::batch_norm_relu_max_pool2d(x, mean, var, w, b, true, 0.1, 1e-5);
    tape.backward(tg::sum(y));
    std::ostringstream out;
    tape.print_profile(out);
    const std::string text = out.str();
    INFO(text);
    REQUIRE(text.find("batch_norm_relu_max_pool2d") != std::string::npos);
    // Every line (header, entries, total) is as long as the header: no column pushed right.
    std::istringstream lines(text);
    std::string line, header;
    std::getline(lines, header);
    std::size_t n = 1;
    while (std::getline(lines, line)) {
        CHECK(line.size() == header.size());
        ++n;
    }
    CHECK(n == 4);  // header, the fused op, sum, total
}

// (Was in test_ops_errors.cpp: a property of every op, which the tape decides.)
TEST_CASE("ops record nothing without a tape, and only ops whose inputs require grad") {
    const Tensor x(tg::Array{{1, -2}, {3, 4}}, true);
    CHECK_FALSE(tg::relu(tg::matmul(x, x)).requires_grad());
    tg::Tape tape;
    const Tensor c = Tensor::ones({2, 2});
    CHECK_FALSE(tg::exp(c).requires_grad());
    CHECK(tape.size() == 0);
    const Tensor y = tg::sum(tg::relu(x) * 2.0);
    CHECK(y.requires_grad());
    CHECK(tape.size() == 3);  // relu, mul_scalar, sum
    tape.backward(y);
    CHECK(x.grad() == tg::Array{{2, 0}, {2, 2}});
}
