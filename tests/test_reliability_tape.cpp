// Tape lifetime: scopes destroyed out of order, tensors outliving their tape, gradcheck's
// own correctness (issue 16, defects 2 and 10, and the gradcheck blind spot).
#include <memory>

#include <xtensor/xbuilder.hpp>

#include "tapegrad/tapegrad.hpp"
#include "testing.hpp"

using tg::Array;
using tg::real;
using tg::Tape;
using tg::Tensor;

TEST_CASE("tapes destroyed first-made-first never leave a destroyed tape active") {
    // The reproducer of defect 2: ~Tape restored its predecessor, which may be gone already.
    Tensor w(Array{2}, true);
    auto a = std::make_unique<Tape>();
    auto b = std::make_unique<Tape>();
    CHECK(Tape::active() == b.get());
    a.reset();
    CHECK(Tape::active() == b.get());  // b is still alive and the most recent
    b.reset();
    CHECK(Tape::active() == nullptr);
    Tensor y = w * w;  // was recorded into the freed tape a (ASan: heap-use-after-free)
    CHECK_FALSE(y.requires_grad());
}

TEST_CASE("a NoGradGuard destroyed before a tape made after it restores the right scope") {
    Tape outer;
    auto guard = std::make_unique<tg::NoGradGuard>();
    CHECK(Tape::active() == nullptr);
    auto inner = std::make_unique<Tape>();
    CHECK(Tape::active() == inner.get());
    guard.reset();  // out of order: inner is still alive and stays active
    CHECK(Tape::active() == inner.get());
    inner.reset();
    CHECK(Tape::active() == &outer);
    // And the other way round: a tape destroyed while a guard made after it is alive.
    auto t = std::make_unique<Tape>();
    auto g = std::make_unique<tg::NoGradGuard>();
    t.reset();
    CHECK(Tape::active() == nullptr);  // the guard still rules
    g.reset();
    CHECK(Tape::active() == &outer);
}

TEST_CASE("a tensor made on a destroyed tape cannot silently act as a leaf on a new tape") {
    // The reproducer of defect 10: w's gradient was silently lost.
    Tensor w(Array{3}, true, "w");
    Tensor y;
    {
        Tape t1;
        y = w * w;
    }
    Tape t2;
    const Tensor loss = tg::sum(y * real(3));
    CHECK_THROWS_WITH_AS(
        t2.backward(loss),
        "Tape::backward: input 0 of 'mul_scalar' [1] was computed on a tape that has been "
        "destroyed, so no gradient can flow back through it; compute it on this tape, or "
        "detach() it to use it as a constant",
        std::logic_error);
    CHECK_FALSE(w.has_grad());  // nothing was changed by the failed backward
    // detach() is the documented way to use it as a constant; the gradient to w is then 0.
    Tensor w2(Array{5}, true);
    Tape t3;
    t3.backward(tg::sum(y.detach() * w2));
    CHECK(w2.grad() == Array{9});
}

TEST_CASE("an output of a destroyed tape that does not lead to the loss is no error") {
    Tensor w(Array{2}, true);
    Tensor y;
    {
        Tape t1;
        y = w * w;
    }
    Tape t2;
    Tensor unused = y * real(2);  // recorded, but not on the way to the loss
    t2.backward(tg::sum(w * real(5)));
    CHECK(w.grad() == Array{5});
}

namespace {

// f(x, y) = sum(y * y) with a backward that is wrong only in flat element `bad` of y:
// gradcheck must find it wherever it is.
Tensor square_sum_wrong_at(const Tensor& y, std::size_t bad) {
    Tensor out(Array(real(0)));
    for (std::size_t k = 0; k < y.numel(); ++k)
        out.value()() += y.value().flat(k) * y.value().flat(k);
    if (Tape* tape = tg::recording_tape(y)) {
        tape->record("square_sum_wrong", {y}, out, [y, bad](const Array& g) {
            Array dy = 2 * y.value() * g();
            dy.flat(bad) += 1;  // the planted error
            y.accumulate_grad(std::move(dy));
        });
    }
    return out;
}

}  // namespace

TEST_CASE("gradcheck checks every input after one that needs no grad, and every element") {
    // Inputs: a constant first (a `break` instead of `continue` stops there), then a [2, 3]
    // input whose wrong gradient is in its last element (not the first row or column).
    Tensor c(Array{{1, 2}}, false);
    Tensor y(Array{{0.5, -1, 2}, {1.5, 0.25, -0.75}}, true, "y");
    const auto f = [](const std::vector<Tensor>& in) {
        return tg::add(square_sum_wrong_at(in[1], 5), tg::sum(in[0]));
    };
    const tg::GradcheckResult r = tg::gradcheck(f, {c, y}, 1e-3, 1e-3, 1e-3);
    CHECK_FALSE(r.ok);
    CHECK(tgtest::contains(r.message, "gradcheck: input 1 'y' [2, 3], flat element 5:"));
    // The same function without the planted error passes.
    const auto right = [](const std::vector<Tensor>& in) {
        return tg::add(tg::sum(in[1] * in[1]), tg::sum(in[0]));
    };
    CHECK(tg::gradcheck(right, {c, y}, 1e-3, 1e-2, 1e-2).ok);
}
