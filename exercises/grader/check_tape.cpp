// Checks and diagnoses of tape_backward, the reverse loop of Tape::backward
// (src/core/tape_backward.cpp).
//
// The student's loop walks a small tape of float64 vector ops (add, mul, sin, exp, sum) through
// the same TapeWalk interface Tape::backward gives it, with the same rules: seed() once,
// run_backward(i) only on an entry with a gradient, which it then frees. The leaves' gradients
// are checked against the reference loop and against central finite differences of the
// forward pass; the order the entries ran in, whether it seeded and whether the walk threw
// are checked against the reference loop. The mistakes are wrong loops run on the same tapes.
#include <cmath>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "exercises.hpp"
#include "grader.hpp"
#include "tapegrad/exercise.hpp"

namespace tg::grader {
namespace {

enum class Kind { add, mul, sin, exp, sum };

struct Op {
    Kind kind;
    std::size_t a,
        b;  // input node ids (b only for add, mul); leaves are 0 … L − 1, entry i is L + i
};

struct Graph {
    std::string name;
    std::vector<std::string> leaf_names;
    std::vector<std::vector<double>> leaves;
    std::vector<Op> ops;
    std::size_t output;               // the node backward starts from
    std::vector<double> grad_output;  // its seed
};

using Values = std::vector<std::vector<double>>;

Values forward(const Graph& g, const Values& leaves) {
    Values v = leaves;
    for (const Op& op : g.ops) {
        const std::vector<double>& x = v[op.a];
        std::vector<double> y(op.kind == Kind::sum ? 1 : x.size());
        for (std::size_t k = 0; k < x.size(); ++k) {
            switch (op.kind) {
                case Kind::add:
                    y[k] = x[k] + v[op.b][k];
                    break;
                case Kind::mul:
                    y[k] = x[k] * v[op.b][k];
                    break;
                case Kind::sin:
                    y[k] = std::sin(x[k]);
                    break;
                case Kind::exp:
                    y[k] = std::exp(x[k]);
                    break;
                case Kind::sum:
                    y[0] += x[k];
                    break;
            }
        }
        v.push_back(y);
    }
    return v;
}

/// Why a walk threw (the "error" output): 0 none.
enum Error : int { none = 0, seeded_twice = 1, no_gradient = 2, out_of_range = 3, other = 4 };

/// The tape as Tape::backward's Walk presents it, on a Graph.
class MockWalk final : public TapeWalk {
  public:
    explicit MockWalk(const Graph& g) : g_(g), value_(forward(g, g.leaves)), grad_(value_.size()) {}

    std::size_t size() const override { return g_.ops.size(); }
    void seed() const override {
        if (seeded_) {
            error_ = seeded_twice;
            throw std::logic_error(
                "Tape::backward: this tape was already walked backward; gradients are computed "
                "once per tape (seed() is called once, before the walk)");
        }
        seeded_ = true;
        add_grad(g_.output, g_.grad_output);
    }
    bool leads_to_output(std::size_t i) const override { return grad_[node(i)].has_value(); }
    void run_backward(std::size_t i) const override {
        const std::size_t out = node(i);
        if (!grad_[out]) {
            error_ = no_gradient;
            throw std::logic_error("Tape::backward: entry %" + std::to_string(i) +
                                   " has no gradient: it does not lead to the output, or its "
                                   "backward already ran");
        }
        order_.push_back(static_cast<double>(i));
        const Op& op = g_.ops[i];
        const std::vector<double> dy = *grad_[out];
        const std::vector<double>& x = value_[op.a];
        std::vector<double> da(x.size()), db;
        for (std::size_t k = 0; k < x.size(); ++k) {
            switch (op.kind) {
                case Kind::add:
                    da[k] = dy[k];
                    break;
                case Kind::mul:
                    da[k] = dy[k] * value_[op.b][k];
                    break;
                case Kind::sin:
                    da[k] = dy[k] * std::cos(x[k]);
                    break;
                case Kind::exp:
                    da[k] = dy[k] * value_[out][k];
                    break;
                case Kind::sum:
                    da[k] = dy[0];
                    break;
            }
        }
        if (op.kind == Kind::add) db = dy;
        if (op.kind == Kind::mul) {
            db.resize(x.size());
            for (std::size_t k = 0; k < x.size(); ++k)
                db[k] = dy[k] * x[k];
        }
        add_grad(op.a, da);
        if (!db.empty()) add_grad(op.b, db);
        grad_[out].reset();  // only leaves keep their gradients
    }

    /// The walk's outputs: the leaves' gradients (empty: none), the order, seeded, error.
    Outputs outputs() const {
        Outputs o;
        for (std::size_t l = 0; l < g_.leaves.size(); ++l)
            o["grad " + g_.leaf_names[l]] = grad_[l] ? *grad_[l] : std::vector<double>{};
        o["order"] = order_;
        o["seeded"] = {seeded_ ? 1.0 : 0.0};
        o["error"] = {static_cast<double>(error_)};
        return o;
    }
    Error error() const { return error_; }
    void set_error(Error e) const { error_ = e; }

  private:
    std::size_t node(std::size_t i) const {
        if (i >= size()) {
            error_ = out_of_range;
            throw std::out_of_range("Tape::backward: entry " + std::to_string(i) +
                                    " does not exist; the tape has " + std::to_string(size()) +
                                    " entries");
        }
        return g_.leaves.size() + i;
    }
    void add_grad(std::size_t n, const std::vector<double>& d) const {
        if (!grad_[n]) grad_[n] = std::vector<double>(d.size(), 0.0);
        for (std::size_t k = 0; k < d.size(); ++k)
            (*grad_[n])[k] += d[k];
    }

    const Graph& g_;
    Values value_;
    mutable std::vector<std::optional<std::vector<double>>> grad_;
    mutable std::vector<double> order_;
    mutable bool seeded_ = false;
    mutable Error error_ = none;
};

const std::vector<Graph>& graphs() {
    static const std::vector<Graph> all = [] {
        using K = Kind;
        std::vector<Graph> v;
        // leaves x (0), w (1), b (2) where a graph uses them
        v.push_back({"one entry: sum(x)", {"x"}, {normal(4)}, {{K::sum, 0, 0}}, 1, {1.0}});
        v.push_back({"a chain: sum(exp(sin(x)))",
                     {"x"},
                     {normal(5)},
                     {{K::sin, 0, 0}, {K::exp, 1, 0}, {K::sum, 2, 0}},
                     3,
                     {1.0}});
        v.push_back({"x used twice by one op: sum(x·x)",
                     {"x"},
                     {normal(3)},
                     {{K::mul, 0, 0}, {K::sum, 1, 0}},
                     2,
                     {1.0}});
        // %0 = x·w, %1 = sin(%0), %2 = %0·%1 (%0 used twice), %3 = %2 + x (x used twice), %4 = sum
        v.push_back(
            {"fan-out: h = x·w; sum(h·sin(h) + x)",
             {"x", "w"},
             {normal(4), normal(4)},
             {{K::mul, 0, 1}, {K::sin, 2, 0}, {K::mul, 2, 3}, {K::add, 4, 0}, {K::sum, 5, 0}},
             6,
             {1.0}});
        // %1 = exp(x) is recorded (a logged value) but does not lead to the loss
        v.push_back({"an entry off the path: h = x·w; log exp(x); sum(sin(h))",
                     {"x", "w"},
                     {normal(4), normal(4)},
                     {{K::mul, 0, 1}, {K::exp, 0, 0}, {K::sin, 2, 0}, {K::sum, 4, 0}},
                     5,
                     {1.0}});
        // backward(output, grad_output) on a non-scalar output, with entries recorded after it
        v.push_back({"backward(y, g) on y = x·w + b, entries recorded after y",
                     {"x", "w", "b"},
                     {normal(5), normal(5), normal(5)},
                     {{K::mul, 0, 1}, {K::add, 3, 2}, {K::exp, 4, 0}, {K::sum, 5, 0}},
                     4,
                     normal(5)});
        // a seeded random tape: 14 entries on 3 leaves, each op on earlier values, some unused
        Graph r{"a random tape of 14 entries",
                {"x", "w", "b"},
                {normal(3), normal(3), normal(3)},
                {},
                0,
                {1.0}};
        std::uint64_t state = 7;
        auto pick = [&state](std::size_t n) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            return static_cast<std::size_t>((state >> 33) % n);
        };
        const Kind kinds[] = {K::add, K::mul, K::sin, K::add, K::mul};
        for (std::size_t i = 0; i < 13; ++i) {
            const std::size_t nodes = 3 + i;
            const Kind k = kinds[pick(5)];
            r.ops.push_back({k, nodes - 1 - pick(std::min<std::size_t>(nodes, 4)), pick(nodes)});
        }
        r.ops.push_back({K::sum, 3 + 11, 0});  // the loss from entry 11: entry 12 is off the path
        r.output = 3 + 13;
        v.push_back(r);
        return v;
    }();
    return all;
}

Outputs run_walk(decltype(&kernels::reference::tape_backward) f, const Graph& g) {
    MockWalk walk(g);
    try {
        f(walk);
    } catch (const exercise_not_done&) {
        throw;
    } catch (const std::exception&) {
        // the error code is set by the MockWalk call that threw; anything else is `other`
        if (walk.error() == none) walk.set_error(other);
    }
    return walk.outputs();
}

/// Which nodes have a path to the output, from the graph alone (not from any walk).
std::vector<bool> leads_to_output(const Graph& g) {
    std::vector<bool> on(g.leaves.size() + g.ops.size(), false);
    on[g.output] = true;
    for (std::size_t i = g.ops.size(); i-- > 0;) {
        if (!on[g.leaves.size() + i]) continue;
        on[g.ops[i].a] = true;
        if (g.ops[i].kind == Kind::add || g.ops[i].kind == Kind::mul) on[g.ops[i].b] = true;
    }
    return on;
}

/// ∂L/∂leaf by central differences of L = Σ grad_output·output in float64, for every leaf.
Outputs finite_differences(const Graph& g) {
    Outputs o;
    const double h = 1e-6;
    for (std::size_t l = 0; l < g.leaves.size(); ++l) {
        std::vector<double> d(g.leaves[l].size());
        for (std::size_t k = 0; k < d.size(); ++k) {
            double sides[2];
            for (int s = 0; s < 2; ++s) {
                Values leaves = g.leaves;
                leaves[l][k] += s == 0 ? h : -h;
                const std::vector<double> y = forward(g, leaves)[g.output];
                sides[s] = 0;
                for (std::size_t j = 0; j < y.size(); ++j)
                    sides[s] += g.grad_output[j] * y[j];
            }
            d[k] = (sides[0] - sides[1]) / (2 * h);
        }
        o["grad " + g.leaf_names[l]] = d;
    }
    return o;
}

// The mistakes, as loops.
void forwards(const TapeWalk& t) {
    t.seed();
    for (std::size_t i = 0; i < t.size(); ++i)
        if (t.leads_to_output(i)) t.run_backward(i);
}
void no_seed(const TapeWalk& t) {
    for (std::size_t i = t.size(); i-- > 0;)
        if (t.leads_to_output(i)) t.run_backward(i);
}
void seed_after_walk(const TapeWalk& t) {
    for (std::size_t i = t.size(); i-- > 0;)
        if (t.leads_to_output(i)) t.run_backward(i);
    t.seed();
}
void seed_in_loop(const TapeWalk& t) {
    for (std::size_t i = t.size(); i-- > 0;) {
        t.seed();
        if (t.leads_to_output(i)) t.run_backward(i);
    }
}
void no_skip(const TapeWalk& t) {
    t.seed();
    for (std::size_t i = t.size(); i-- > 0;)
        t.run_backward(i);
}
void break_at_unused(const TapeWalk& t) {
    t.seed();
    for (std::size_t i = t.size(); i-- > 0;) {
        if (!t.leads_to_output(i)) break;
        t.run_backward(i);
    }
}
void skips_entry0(const TapeWalk& t) {
    t.seed();
    for (std::size_t i = t.size() - 1; i > 0; --i)
        if (t.leads_to_output(i)) t.run_backward(i);
}
void unsigned_countdown(const TapeWalk& t) {
    t.seed();
    for (std::size_t i = t.size() - 1;; --i)  // i >= 0 is always true for std::size_t
        if (t.leads_to_output(i)) t.run_backward(i);
}
void run_twice(const TapeWalk& t) {
    t.seed();
    for (std::size_t i = t.size(); i-- > 0;) {
        if (t.leads_to_output(i)) {
            t.run_backward(i);
            t.run_backward(i);
        }
    }
}

Mistake loop_model(std::string id, std::string message, void (*model)(const TapeWalk&)) {
    return model_mistake(std::move(id), std::move(message), graphs(),
                         [model](const Graph& g) { return run_walk(model, g); });
}

std::size_t tape_failing = 0;

Result check_tape() {
    std::vector<Outputs> student, reference, pytorch(graphs().size()), fd;
    std::vector<std::string> names;
    for (const Graph& g : graphs()) {
        student.push_back(run_walk(&exercises::tape_backward, g));
        reference.push_back(run_walk(&kernels::reference::tape_backward, g));
        fd.push_back(finite_differences(g));
        // A leaf with no path to the output gets no gradient at all (PyTorch: None), which the
        // comparison with the reference checks; finite differences check the others.
        const std::vector<bool> on_path = leads_to_output(g);
        for (std::size_t l = 0; l < g.leaves.size(); ++l)
            if (!on_path[l]) fd.back().erase("grad " + g.leaf_names[l]);
        names.push_back(g.name);
    }
    const std::vector<Mistake> mistakes{
        loop_model("forwards",
                   "you walk the tape forwards: an entry's backward needs the gradient of its "
                   "output complete, i.e. added to by every entry that used it, and those come "
                   "later on the tape. Walk from the last entry to the first",
                   forwards),
        loop_model("no_seed",
                   "you did not seed the output's gradient: with no ∂L/∂L = 1 to start from, no "
                   "entry leads to the output and nothing runs. Call tape.seed() first",
                   no_seed),
        loop_model("seed_after_walk",
                   "you seeded the output's gradient after the walk: the seed ∂L/∂L = 1 is where "
                   "the chain rule starts, so tape.seed() comes before the loop",
                   seed_after_walk),
        loop_model("seed_in_loop",
                   "you seed in the loop: the seed ∂L/∂L = 1 is given once, before the walk (a "
                   "second seed would add a second 1; the tape refuses it)",
                   seed_in_loop),
        loop_model("no_skip",
                   "you run the backward of an entry that does not lead to the output (its "
                   "output has no gradient, e.g. a value only logged): skip it, "
                   "if (tape.leads_to_output(i)) ...",
                   no_skip),
        loop_model("break_at_unused",
                   "you stop the walk at the first entry that does not lead to the output: "
                   "skip that entry and go on, since the entries before it may still lead there",
                   break_at_unused),
        loop_model("skips_entry0",
                   "your loop stops before entry 0: the first op recorded is the last whose "
                   "backward runs (for (std::size_t i = tape.size(); i-- > 0;))",
                   skips_entry0),
        loop_model("unsigned_countdown",
                   "your loop counts down with `i >= 0` on a std::size_t, which is always true: "
                   "after entry 0, i wraps round to 2^64 − 1. Write "
                   "for (std::size_t i = tape.size(); i-- > 0;)",
                   unsigned_countdown),
        loop_model("run_twice",
                   "you run an entry's backward twice: each entry passes its gradient on once "
                   "(it is freed after), as each use of a value added to it once",
                   run_twice),
    };
    auto against_fd = [&fd](const std::vector<Outputs>& s) {
        return compare(s, fd, "float64 finite differences", 1e-6, 1e-6);
    };
    return verdict("tape_backward", names, student, reference, pytorch, mistakes, against_fd,
                   &tape_failing);
}

const Register tape_exercise("tape_backward", check_tape,
                             [] { run_walk(&exercises::tape_backward, graphs()[tape_failing]); });

}  // namespace
}  // namespace tg::grader
