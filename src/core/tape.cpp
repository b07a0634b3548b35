#include "tapegrad/tape.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "tape_backward.hpp"
#include "tapegrad/anomaly.hpp"

namespace tg {

namespace {
// The top of the thread's scope stack (see detail::ScopeLink); trivially destructible, so a
// Tape outliving the thread's thread_local objects still unlinks safely.
thread_local detail::ScopeLink* top_scope = nullptr;

void push_scope(detail::ScopeLink& link, Tape* tape) {
    link.tape = tape;
    link.below = top_scope;
    link.above = nullptr;
    if (top_scope != nullptr) top_scope->above = &link;
    top_scope = &link;
}

// Unlinks `link` wherever it is: the scopes above and below it are joined, and the active
// tape is whatever is on top afterwards (never a destroyed one).
void pop_scope(detail::ScopeLink& link) {
    if (link.below != nullptr) link.below->above = link.above;
    if (link.above != nullptr) {
        link.above->below = link.below;
    } else if (top_scope == &link) {
        top_scope = link.below;
    }
    link.below = link.above = nullptr;
}
std::atomic<std::uint64_t> next_tape_id{1};

}  // namespace

Tape::Tape() : id_(next_tape_id++) {
    push_scope(link_, this);
}

Tape::~Tape() {
    pop_scope(link_);
    // The backward closures die with the tape: a tensor it produced can no longer pass a
    // gradient back. Mark it, so backward on a later tape reports that instead of treating
    // it as a leaf and losing the gradient (Tape::backward checks the mark).
    for (auto& e : entries_)
        e.output.node().tape_id = detail::kDestroyedTape;
}

Tape* Tape::active() {
    return top_scope == nullptr ? nullptr : top_scope->tape;
}

void Tape::record(const char* op, std::vector<Tensor> inputs, Tensor& output, BackwardFn backward) {
    Node& out = output.node();
    out.requires_grad = true;
    out.tape_id = id_;
    entries_.push_back(TapeEntry{op, std::move(inputs), output, std::move(backward)});
    if (profiling_) {
        const auto now = std::chrono::steady_clock::now();
        entries_.back().forward_seconds = std::chrono::duration<double>(now - last_mark_).count();
        last_mark_ = now;
    }
    if (detail::anomaly_guards != 0) detail::check_forward(entries_, entries_.size() - 1);
}

void Tape::enable_profiling() {
    profiling_ = true;
    last_mark_ = std::chrono::steady_clock::now();
}

namespace {
// d loss / d loss = 1: the seed of backward(loss), for a loss with one element.
Array ones_like(const Tensor& loss) {
    if (loss.numel() != 1) {
        throw std::logic_error("Tape::backward: the loss must have one element, got shape " +
                               shape_str(loss.value().shape()) +
                               "; pass a grad_output to backward a non-scalar tensor");
    }
    Array one = new_array(loss.value().shape());
    one.fill(real(1));
    return one;
}
}  // namespace

void Tape::backward(const Tensor& loss) {
    // In gdb, `step` here passes over ones_like (a skip rule) into the overload below.
    backward(loss, ones_like(loss));
}

void Tape::check_no_destroyed_tape_inputs(const Tensor& output) const {
    // Walk back from `output` over the entries that lead to it (the same reverse order as
    // backward), before anything is changed: an input that needs a gradient but was produced
    // on a tape that is gone would otherwise act as a leaf and swallow it.
    std::unordered_set<const Node*> leads_to_output{&output.node()};
    for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
        if (!leads_to_output.count(&it->output.node())) continue;
        for (std::size_t k = 0; k < it->inputs.size(); ++k) {
            const Node& in = it->inputs[k].node();
            if (in.tape_id == detail::kDestroyedTape) {
                throw std::logic_error(
                    std::string("Tape::backward: input ") + std::to_string(k) + " of '" + it->op +
                    "' " + (in.name.empty() ? "" : "('" + in.name + "') ") +
                    shape_str(in.value.shape()) +
                    " was computed on a tape that has been destroyed, so no gradient can flow "
                    "back through it; compute it on this tape, or detach() it to use it as a "
                    "constant");
            }
            leads_to_output.insert(&in);
        }
    }
}

void Tape::backward(const Tensor& output, const Array& grad_output) {
    // The reverse loop itself is kernels::reference::tape_backward (tape_backward.cpp, the
    // exercise exercises/tape_backward.cpp); Walk is this tape as it sees it. seed() is
    // start_backward: the checks, then output.grad = grad_output. run_backward(i) runs entry
    // i's backward between previous_entry (the anomaly guard's and the profiler's marks) and
    // next_entry (their checks; frees the entry's grad unless it is kept).
    class Walk final : public TapeWalk {
      public:
        Walk(Tape& t, const Tensor& out, const Array& seed_grad)
            : tape_(t), output_(out), grad_output_(seed_grad) {}
        std::size_t size() const override { return tape_.entries_.size(); }
        void seed() const override { tape_.start_backward(output_, grad_output_); }
        bool leads_to_output(std::size_t i) const override { return at(i).output.node().has_grad; }
        void run_backward(std::size_t i) const override {
            TapeEntry& entry = with_grad(i);
            entry.backward.closure()(entry.output.node().grad);
            tape_.next_entry(entry);
        }

      private:
        TapeEntry& at(std::size_t i) const {
            if (i >= size()) {
                throw std::out_of_range("Tape::backward: entry " + std::to_string(i) +
                                        " does not exist; the tape has " + std::to_string(size()) +
                                        " entries (0 to size() - 1)");
            }
            return tape_.entries_[i];
        }
        TapeEntry& with_grad(std::size_t i) const {
            TapeEntry& e = at(i);
            if (tape_.previous_entry(i + 1) != &e) {
                throw std::logic_error(
                    "Tape::backward: entry %" + std::to_string(i) + " ('" + e.op +
                    "') has no gradient: it does not lead to the output, or its backward already "
                    "ran (run an entry's backward once, and only where leads_to_output(i))");
            }
            return e;
        }
        Tape& tape_;
        const Tensor& output_;
        const Array& grad_output_;
    };
    kernels::reference::tape_backward(Walk(*this, output, grad_output));
}

TapeEntry* Tape::start_backward(const Tensor& output, const Array& grad_output) {
    if (walked_) {
        throw std::logic_error(
            "Tape::backward: this tape was already walked backward; gradients are computed once "
            "per tape (record a new forward pass on a new Tape)");
    }
    if (output.node().tape_id != id_) {
        throw std::logic_error(
            "Tape::backward: the tensor " + shape_str(output.value().shape()) +
            " was not produced by an op recorded on this tape (computed with no active tape, "
            "on another tape, detached, or a leaf)");
    }
    if (grad_output.shape() != output.value().shape()) {
        throw std::invalid_argument("Tape::backward: grad_output has shape " +
                                    shape_str(grad_output.shape()) + ", the output has shape " +
                                    shape_str(output.value().shape()));
    }
    check_no_destroyed_tape_inputs(output);
    walked_ = true;
    Tensor seed = output;
    seed.accumulate_grad(grad_output);
    return previous_entry(entries_.size());
}

TapeEntry* Tape::previous_entry(std::size_t end) {
    while (end-- > 0) {
        TapeEntry& entry = entries_[end];
        if (!entry.output.node().has_grad) continue;  // does not lead to the output
        // Under a DetectAnomaly guard: the NaN/Inf already in its inputs' grads (an input used
        // twice may have some from elsewhere), so that next_entry reports only new ones.
        anomaly_armed_ = detail::anomaly_guards != 0;
        if (anomaly_armed_) anomaly_before_ = detail::count_input_grad_anomalies(entry);
        if (profiling_) last_mark_ = std::chrono::steady_clock::now();
        return &entry;
    }
    return nullptr;
}

TapeEntry* Tape::next_entry(TapeEntry& done) {
    if (profiling_) {
        done.backward_seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - last_mark_).count();
    }
    const auto index = static_cast<std::size_t>(&done - entries_.data());
    if (anomaly_armed_) detail::check_backward(entries_, index, anomaly_before_);
    Node& out = done.output.node();
    if (!out.retain_grad) {  // like PyTorch, only leaves keep their grads
        out.grad = Array();
        out.has_grad = false;
    }
    return previous_entry(index);
}

namespace {

// EntryLabels: the tensor's name if it has one, else "%i" for the output of entry i, else "leaf k".
struct EntryLabels {
    std::unordered_map<const Node*, std::size_t> produced_by;
    std::unordered_map<const Node*, std::size_t> leaf_index;

    explicit EntryLabels(const std::vector<TapeEntry>& entries) {
        for (std::size_t i = 0; i < entries.size(); ++i) {
            produced_by[&entries[i].output.node()] = i;
        }
        for (const auto& e : entries) {
            for (const auto& in : e.inputs) {
                const Node* n = &in.node();
                if (!produced_by.count(n) && !leaf_index.count(n)) {
                    const std::size_t k = leaf_index.size();
                    leaf_index[n] = k;
                }
            }
        }
    }

    std::string of(const Tensor& t) const {
        const Node* n = &t.node();
        if (!n->name.empty()) return n->name;
        if (auto it = produced_by.find(n); it != produced_by.end()) {
            return "%" + std::to_string(it->second);
        }
        return "leaf" + std::to_string(leaf_index.at(n));
    }
};

}  // namespace

void Tape::print(std::ostream& out) const {
    const EntryLabels labels(entries_);
    out << "Tape with " << entries_.size() << " entries\n";
    for (std::size_t i = 0; i < entries_.size(); ++i) {
        const TapeEntry& e = entries_[i];
        out << "  %" << i << " = " << e.op << '(';
        for (std::size_t k = 0; k < e.inputs.size(); ++k) {
            if (k > 0) out << ", ";
            out << labels.of(e.inputs[k]) << shape_str(e.inputs[k].value().shape());
        }
        out << ") -> " << shape_str(e.output.value().shape());
        if (!e.output.name().empty()) out << "  '" << e.output.name() << "'";
        out << '\n';
    }
}

void Tape::print_profile(std::ostream& out) const {
    double fwd = 0.0, bwd = 0.0;
    for (const auto& e : entries_) {
        fwd += e.forward_seconds;
        bwd += e.backward_seconds;
    }
    const double total = fwd + bwd > 0 ? fwd + bwd : 1.0;
    // The op and shape columns as wide as their longest entry (at least 16 and 18), so a long
    // name such as batch_norm_relu_max_pool2d keeps the columns lined up.
    int op_w = 16, shape_w = 18;
    for (const auto& e : entries_) {
        op_w = std::clamp(static_cast<int>(std::string_view(e.op).size()), op_w, 200);
        shape_w =
            std::clamp(static_cast<int>(shape_str(e.output.value().shape()).size()), shape_w, 200);
    }
    char line[512];
    std::snprintf(line, sizeof line, "  %-4s %-*s %-*s %10s %10s %7s\n", "#", op_w, "op", shape_w,
                  "output", "fwd ms", "bwd ms", "share");
    out << line;
    for (std::size_t i = 0; i < entries_.size(); ++i) {
        const TapeEntry& e = entries_[i];
        std::snprintf(line, sizeof line, "  %-4zu %-*.200s %-*.200s %10.4f %10.4f %6.1f%%\n", i,
                      op_w, e.op, shape_w, shape_str(e.output.value().shape()).c_str(),
                      1e3 * e.forward_seconds, 1e3 * e.backward_seconds,
                      100.0 * (e.forward_seconds + e.backward_seconds) / total);
        out << line;
    }
    std::snprintf(line, sizeof line, "  %-4s %-*s %-*s %10.4f %10.4f %6.1f%%\n", "", op_w, "total",
                  shape_w, "", 1e3 * fwd, 1e3 * bwd, 100.0);
    out << line;
}

std::string Tape::to_dot() const {
    const EntryLabels labels(entries_);
    std::ostringstream dot;
    dot << "digraph tape {\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n";
    // The leaves in the order the tape first uses them (leaf0, leaf1, ...), not in the hash
    // map's order, which follows their addresses: the same run writes the same file.
    std::vector<const Node*> leaves(labels.leaf_index.size());
    for (const auto& [node, k] : labels.leaf_index)
        leaves[k] = node;
    for (std::size_t k = 0; k < leaves.size(); ++k) {
        const Node* node = leaves[k];
        dot << "  leaf" << k << " [shape=box, label=\""
            << (node->name.empty() ? "leaf" + std::to_string(k) : node->name) << "\\n"
            << shape_str(node->value.shape()) << "\""
            << (node->requires_grad ? ", style=filled, fillcolor=\"#cde4ff\"" : "") << "];\n";
    }
    for (std::size_t i = 0; i < entries_.size(); ++i) {
        const TapeEntry& e = entries_[i];
        dot << "  op" << i << " [shape=ellipse, label=\"%" << i << " " << e.op << "\\n"
            << shape_str(e.output.value().shape()) << "\"];\n";
        for (const auto& in : e.inputs) {
            const Node* n = &in.node();
            if (auto it = labels.produced_by.find(n); it != labels.produced_by.end()) {
                dot << "  op" << it->second << " -> op" << i << ";\n";
            } else {
                dot << "  leaf" << labels.leaf_index.at(n) << " -> op" << i << ";\n";
            }
        }
    }
    dot << "}\n";
    return dot.str();
}

NoGradGuard::NoGradGuard() {
    push_scope(link_, nullptr);
}

NoGradGuard::~NoGradGuard() {
    pop_scope(link_);
}

}  // namespace tg
