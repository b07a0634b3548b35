#include "tapegrad/nn/module.hpp"

#include <algorithm>
#include <atomic>
#include <ostream>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "tapegrad/nn/state_file.hpp"

namespace tg::nn {

namespace {

std::atomic<std::uint64_t> next_hook_id{1};

// "features" + "1" -> "features.1"; "" + "fc" -> "fc".
std::string join(const std::string& prefix, const std::string& name) {
    return prefix.empty() ? name : prefix + "." + name;
}

std::string describe(const Module& m) {
    return m.type_name() + (m.name().empty() ? "" : " '" + m.name() + "'");
}

}  // namespace

// ---- hooks ---------------------------------------------------------------------------------

void HookHandle::remove() {
    for (auto& [weak_list, id] : hooks_) {
        if (auto list = weak_list.lock()) {
            std::erase_if(list->hooks, [id = id](const auto& h) { return h.first == id; });
        }
    }
    hooks_.clear();
}

HookHandle Module::register_forward_hook(ForwardHook hook) {
    const std::uint64_t id = next_hook_id++;
    hooks_->hooks.emplace_back(id, std::move(hook));
    HookHandle handle;
    handle.hooks_.emplace_back(hooks_, id);
    return handle;
}

HookHandle Module::register_forward_hook_all(ForwardHook hook) {
    HookHandle all;
    for (auto& [name, module] : named_modules()) {
        HookHandle one = module->register_forward_hook(hook);
        all.hooks_.insert(all.hooks_.end(), one.hooks_.begin(), one.hooks_.end());
    }
    return all;
}

// ---- forward -------------------------------------------------------------------------------

Tensor Module::forward(const Tensor&) {
    throw std::logic_error(describe(*this) +
                           ": this module has no one-input forward(); call it with the arguments "
                           "its own forward takes");
}

namespace {

/// Notes m.extra_repr() in `slot` (Module::debug_extra_repr_, what the debuggers' printers
/// show). Also called while a constructor registers its tensors, when a layer's extra_repr may
/// read a member not assigned yet: if it throws, the previous note stays.
void note_repr_of(const Module& m, std::string& slot) {
    try {
        slot = m.extra_repr();
    } catch (const std::exception&) {
    }
}

}  // namespace

Tensor Module::operator()(const Tensor& input) {
    Tensor output = forward(input);
    call_forward_hooks(input, output);
    return output;
}

void Module::call_forward_hooks(const Tensor& input, const Tensor& output) const {
    // For the debuggers' printers: the options this call ran with.
    note_repr_of(*this, debug_extra_repr_);
    // A copy, so a hook may remove itself (or others) while we iterate.
    const auto hooks = hooks_->hooks;
    for (const auto& [id, hook] : hooks)
        hook(name_, input, output);
}

// ---- registration --------------------------------------------------------------------------

void Module::check_new_name(const std::string& kind, const std::string& name) const {
    const auto fail = [&](const std::string& why) {
        throw std::invalid_argument(describe(*this) + ": cannot register " + kind + " '" + name +
                                    "': " + why);
    };
    if (name.empty()) fail("the name is empty");
    if (name.find('.') != std::string::npos) fail("a name cannot contain '.'");
    const auto taken = [&](const auto& list) {
        return std::any_of(list.begin(), list.end(),
                           [&](const auto& e) { return e.first == name; });
    };
    if (taken(parameters_)) fail("there is already a parameter of that name");
    if (taken(buffers_)) fail("there is already a buffer of that name");
    if (taken(children_)) fail("there is already a child module of that name");
}

Tensor Module::register_parameter(const std::string& name, Tensor parameter) {
    check_new_name("parameter", name);
    if (!parameter.is_leaf()) {
        throw std::invalid_argument(describe(*this) + ": parameter '" + name +
                                    "' must be a leaf tensor (detach() it first)");
    }
    parameter.requires_grad_(true);
    parameter.set_name(join(name_, name));
    parameters_.emplace_back(name, parameter);
    note_repr_of(*this, debug_extra_repr_);
    return parameter;
}

bool Module::has_parameter(const std::string& name) const {
    for (const auto& [n, t] : parameters_)
        if (n == name) return true;
    return false;
}

Tensor Module::register_buffer(const std::string& name, Tensor buffer) {
    check_new_name("buffer", name);
    buffer.set_name(join(name_, name));
    buffers_.emplace_back(name, buffer);
    note_repr_of(*this, debug_extra_repr_);
    return buffer;
}

std::shared_ptr<Module> Module::register_module(const std::string& name,
                                                std::shared_ptr<Module> child) {
    check_new_name("module", name);
    if (!child) throw std::invalid_argument(describe(*this) + ": module '" + name + "' is null");
    child->set_qualified_name(join(name_, name));
    note_repr_of(*child, child->debug_extra_repr_);
    children_.emplace_back(name, child);
    note_repr_of(*this, debug_extra_repr_);  // a container has no tensors of its own to note at
    return child;
}

std::shared_ptr<Module> Module::replace_module(const std::string& name,
                                               std::shared_ptr<Module> child) {
    if (!child) throw std::invalid_argument(describe(*this) + ": module '" + name + "' is null");
    for (auto& [n, c] : children_) {
        if (n != name) continue;
        child->set_qualified_name(join(name_, name));
        note_repr_of(*child, child->debug_extra_repr_);
        std::swap(c, child);
        return child;
    }
    throw std::invalid_argument(describe(*this) + ": cannot replace module '" + name +
                                "': there is no child module of that name");
}

void Module::set_qualified_name(const std::string& qualified) {
    name_ = qualified;
    for (auto& [name, t] : parameters_)
        t.set_name(join(name_, name));
    for (auto& [name, t] : buffers_)
        t.set_name(join(name_, name));
    for (auto& [name, child] : children_)
        child->set_qualified_name(join(name_, name));
}

// ---- traversal -----------------------------------------------------------------------------

void Module::collect_modules(const std::string& prefix,
                             std::vector<std::pair<std::string, const Module*>>& out) const {
    // A module shared by two parents is listed once, under its first name (as PyTorch).
    for (const auto& [name, m] : out) {
        if (m == this) return;
    }
    out.emplace_back(prefix, this);
    for (const auto& [name, child] : children_)
        child->collect_modules(join(prefix, name), out);
}

std::vector<std::pair<std::string, const Module*>> Module::all_modules() const {
    std::vector<std::pair<std::string, const Module*>> out;
    collect_modules("", out);
    return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() {
    std::vector<std::pair<std::string, Module*>> out;
    // const_cast is safe: every module reached from a non-const *this is ours to modify.
    for (const auto& [name, m] : all_modules())
        out.emplace_back(name, const_cast<Module*>(m));
    return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_children() const {
    std::vector<std::pair<std::string, Module*>> out;
    for (const auto& [name, child] : children_)
        out.emplace_back(name, child.get());
    return out;
}

namespace {

// The tensors of `modules` selected by `pick` (parameters or buffers), each tensor once.
template <class Pick>
NamedTensors collect_tensors(const std::vector<std::pair<std::string, const Module*>>& modules,
                             Pick pick) {
    NamedTensors out;
    std::unordered_set<const Node*> seen;
    for (const auto& [prefix, m] : modules) {
        for (const auto& [name, t] : pick(*m)) {
            if (seen.insert(&t.node()).second) out.emplace_back(join(prefix, name), t);
        }
    }
    return out;
}

std::vector<Tensor> only_tensors(const NamedTensors& named) {
    std::vector<Tensor> out;
    out.reserve(named.size());
    for (const auto& [name, t] : named)
        out.push_back(t);
    return out;
}

}  // namespace

NamedTensors Module::named_parameters() const {
    return collect_tensors(all_modules(),
                           [](const Module& m) -> const NamedTensors& { return m.parameters_; });
}

NamedTensors Module::named_buffers() const {
    return collect_tensors(all_modules(),
                           [](const Module& m) -> const NamedTensors& { return m.buffers_; });
}

std::vector<Tensor> Module::parameters() const {
    return only_tensors(named_parameters());
}

std::vector<Tensor> Module::buffers() const {
    return only_tensors(named_buffers());
}

// ---- modes and gradients -------------------------------------------------------------------

Module& Module::train(bool on) {
    training_ = on;
    for (auto& [name, child] : children_)
        child->train(on);
    return *this;
}

void Module::freeze() {
    for (auto& p : parameters())
        p.requires_grad_(false);
}

void Module::unfreeze() {
    for (auto& p : parameters())
        p.requires_grad_(true);
}

void Module::zero_grad(bool set_to_none) {
    for (auto& p : parameters())
        p.zero_grad(set_to_none);
}

EvalGuard::EvalGuard(Module& model) {
    for (auto& [name, m] : model.named_modules())
        saved_.emplace_back(m, m->training_);
    model.eval();
}

EvalGuard::~EvalGuard() {
    // Restore each module's own flag (not train(), which would overwrite the children).
    for (auto& [m, training] : saved_)
        m->training_ = training;
}

// ---- state ---------------------------------------------------------------------------------

NamedTensors Module::state_dict() const {
    NamedTensors out;
    for (const auto& [prefix, m] : all_modules()) {
        for (const auto& [name, t] : m->parameters_)
            out.emplace_back(join(prefix, name), t);
        for (const auto& [name, t] : m->buffers_)
            out.emplace_back(join(prefix, name), t);
    }
    return out;
}

void Module::load_state_dict(const NamedTensors& state) {
    // Validate everything first, assign afterwards: a failed load changes nothing.
    std::unordered_map<std::string, const Tensor*> given;
    for (const auto& [name, t] : state) {
        if (!given.emplace(name, &t).second) {
            throw std::invalid_argument("load_state_dict: the state has '" + printable(name) +
                                        "' twice");
        }
    }
    const NamedTensors own = state_dict();
    for (const auto& [name, t] : own) {
        auto it = given.find(name);
        if (it == given.end()) {
            throw std::invalid_argument("load_state_dict: missing '" + name + "' " +
                                        shape_str(t.shape()) +
                                        " (the model has it, the state does not)");
        }
        if (it->second->shape() != t.shape()) {
            throw std::invalid_argument("load_state_dict: '" + name + "' has shape " +
                                        shape_str(it->second->shape()) +
                                        " in the state, the model expects " + shape_str(t.shape()));
        }
    }
    if (given.size() != own.size()) {
        std::unordered_set<std::string> own_names;
        for (const auto& [name, t] : own)
            own_names.insert(name);
        for (const auto& [name, t] : state) {
            if (!own_names.count(name)) {
                throw std::invalid_argument("load_state_dict: unexpected '" + printable(name) +
                                            "' " + shape_str(t.shape()) +
                                            " (the state has it, the model does not)");
            }
        }
    }
    for (auto [name, t] : own)
        t.value() = given.at(name)->value();
}

void Module::save_state(const std::string& path) const {
    write_state_file(path, state_dict());
}

void Module::load_state(const std::string& path) {
    const NamedTensors state = read_state_file(path);
    try {
        load_state_dict(state);
    } catch (const std::invalid_argument& e) {
        throw std::invalid_argument("load_state(" + path + "): " + e.what());
    }
}

// ---- printing ------------------------------------------------------------------------------

void Module::print(std::ostream& out, int indent) const {
    note_repr_of(*this, debug_extra_repr_);
    out << type_name() << '(' << extra_repr();
    if (!children_.empty()) {
        const std::string pad(static_cast<std::size_t>(indent + 2), ' ');
        out << '\n';
        for (const auto& [name, child] : children_) {
            out << pad << '(' << name << "): ";
            child->print(out, indent + 2);
            out << '\n';
        }
        out << std::string(static_cast<std::size_t>(indent), ' ');
    }
    out << ')';
}

std::ostream& operator<<(std::ostream& out, const Module& module) {
    module.print(out);
    return out << '\n';  // as Python's print(model): the text of str(model), then a newline
}

}  // namespace tg::nn
