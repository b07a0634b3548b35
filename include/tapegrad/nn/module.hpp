// tapegrad/nn/module.hpp — Module: the base of every layer and model.
//
// A Module owns named parameters (tensors the optimiser trains), named buffers (state that is
// saved but not trained, like BatchNorm's running_mean) and named child modules. Names nest
// with dots, as in PyTorch: parameter "running_mean" of child "1" of child "features" is
// "features.1.running_mean". Layers are thin: they register their tensors in the constructor
// and call the functional ops (tapegrad/ops/) in forward().
//
// Tensors are handles (tensor.hpp), so a layer's member `weight` and the registry entry
// "weight" are the same tensor. Change a parameter by writing its value
// (`layer.weight.value() = ...`), never by assigning a new Tensor to the member.
#pragma once

#include <concepts>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tapegrad/tensor.hpp"

namespace tg::nn {

/// Called after a module's forward with the module's qualified name in its model ("features.1";
/// "" for the model itself), the input and the output. This is how activations are recorded.
using ForwardHook =
    std::function<void(const std::string& name, const Tensor& input, const Tensor& output)>;

/// (qualified name, tensor) pairs in registration order: parameters, buffers, a state dict.
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

namespace detail {
/// The forward hooks of one module, each with an id a HookHandle can remove it by. Shared so a
/// handle stays safe when its module is moved or destroyed.
struct HookList {
    std::vector<std::pair<std::uint64_t, ForwardHook>> hooks;
};
}  // namespace detail

/// Returned by register_forward_hook(_all); remove() unregisters the hook(s). Destroying the
/// handle does not remove them (as PyTorch's RemovableHandle).
class HookHandle {
  public:
    /// Unregisters every hook this handle was returned for; calling it again does nothing.
    void remove();

  private:
    friend class Module;
    std::vector<std::pair<std::weak_ptr<detail::HookList>, std::uint64_t>> hooks_;
};

class Module {
  public:
    Module() = default;
    virtual ~Module() = default;
    // A module owns tensors through handles: a copy would silently share them. Move instead.
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;
    Module(Module&&) = default;
    Module& operator=(Module&&) = default;

    /// y = f(x), the layer's computation. Layers override it; the base throws, for modules
    /// whose forward takes other arguments (losses) or that have none.
    virtual Tensor forward(const Tensor& input);
    /// y = forward(x), then every forward hook of this module is called with (name(), x, y).
    Tensor operator()(const Tensor& input);

    /// The class name, "BatchNorm2d"; shown by print().
    virtual std::string type_name() const { return "Module"; }
    /// The settings shown inside the parentheses by print(), "4, eps=1e-05, momentum=0.1".
    virtual std::string extra_repr() const { return {}; }

    /// This module's qualified name in its model ("features.1"), "" for a model's root.
    const std::string& name() const { return name_; }

    /// Registers a trainable tensor under `name` (no dots) and marks it requires_grad.
    Tensor register_parameter(const std::string& name, Tensor parameter);
    /// Registers a non-trained tensor (running statistics, counters) under `name`.
    Tensor register_buffer(const std::string& name, Tensor buffer);
    /// Registers `child` under `name` (no dots); its tensors become "<name>.<tensor>".
    std::shared_ptr<Module> register_module(const std::string& name, std::shared_ptr<Module> child);
    /// Same, keeping the child's type:
    ///     fc = register_module("fc", std::make_shared<Linear>(4, 2));
    template <std::derived_from<Module> M>
    std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> child) {
        register_module(name, std::static_pointer_cast<Module>(child));
        return child;
    }
    /// Same, moving a module in: `register_module("fc", Linear(4, 2))`.
    template <std::derived_from<Module> M>
    std::shared_ptr<M> register_module(const std::string& name, M&& child) {
        return register_module(name, std::make_shared<M>(std::move(child)));
    }

    /// Puts `child` in the place of the direct child `name` (same name and position; its
    /// tensors are renamed to match) and returns the old one. Throws std::invalid_argument if
    /// there is no child of that name or `child` is null. How convert_sync_batchnorm swaps
    /// layers.
    std::shared_ptr<Module> replace_module(const std::string& name, std::shared_ptr<Module> child);

    /// Every parameter of this module and its descendants, each once, in registration order.
    std::vector<Tensor> parameters() const;
    /// The same with qualified names relative to this module: "features.0.weight".
    NamedTensors named_parameters() const;
    /// Every buffer of this module and its descendants, each once.
    std::vector<Tensor> buffers() const;
    /// The same with qualified names: "features.1.running_mean".
    NamedTensors named_buffers() const;
    /// The direct children with their names, in registration order.
    std::vector<std::pair<std::string, Module*>> named_children() const;
    /// This module ("") and every descendant, depth first in registration order, each once.
    std::vector<std::pair<std::string, Module*>> named_modules();

    /// Sets training mode (true) or evaluation mode (false) here and in every descendant.
    /// Virtual so a layer can refuse: a BatchNorm frozen by freeze_batchnorm stays in eval.
    virtual Module& train(bool on = true);
    /// Evaluation mode: train(false). BatchNorm then uses its running statistics, Dropout
    /// passes its input through.
    Module& eval() { return train(false); }
    /// True in training mode (the default), false after eval().
    bool is_training() const { return training_; }

    /// Every parameter stops requiring grad: the tape computes no gradient for it. As in
    /// PyTorch a gradient it already has is kept (zero_grad(true) releases it), and optimisers
    /// update every parameter that has a gradient.
    void freeze();
    /// Every parameter requires grad again.
    void unfreeze();
    /// Clears the gradient of every parameter: zero-filled, or released when set_to_none.
    void zero_grad(bool set_to_none = false);

    /// Calls `hook(name(), input, output)` after every forward of this module (via operator()).
    HookHandle register_forward_hook(ForwardHook hook);
    /// Registers `hook` on this module and every descendant (containers included, the root's
    /// name is ""): one call records every layer's output. The handle removes them all.
    HookHandle register_forward_hook_all(ForwardHook hook);
    /// True if a forward hook is registered on this module itself (not counting descendants).
    bool has_forward_hooks() const { return !hooks_->hooks.empty(); }

    /// Parameters and buffers with qualified names, module by module (a module's parameters,
    /// then its buffers, then its children's): what save_state writes. The tensors are the
    /// module's own handles, not copies.
    NamedTensors state_dict() const;
    /// Copies the values of `state` into this module's parameters and buffers. Every name and
    /// shape is checked first: on a missing or unexpected name or a shape mismatch it throws
    /// std::invalid_argument naming the first mismatch and nothing is changed.
    void load_state_dict(const NamedTensors& state);
    /// Writes state_dict() to `path` (format: tapegrad/nn/state_file.hpp). The file is written
    /// under a temporary name in the same directory and renamed, so `path` is either the old
    /// file or the complete new one, never half-written.
    void save_state(const std::string& path) const;
    /// Reads a file written by save_state and load_state_dict()s it; a truncated or corrupt
    /// file throws std::runtime_error naming the file and the byte offset, and nothing changes.
    void load_state(const std::string& path);

    /// Prints the module tree as PyTorch does: "Sequential(\n  (0): Linear(in_features=4, ...".
    void print(std::ostream& out, int indent = 0) const;

  protected:
    /// True if this module itself registered a parameter called `name`. For extra_repr(),
    /// which the debuggers' text is noted from while a constructor registers its tensors
    /// (`bias = register_parameter("bias", ...)` assigns `bias` only after the note).
    bool has_parameter(const std::string& name) const;
    /// Calls every forward hook with (name(), input, output): for modules whose forward takes
    /// other arguments and that define their own operator() (the losses).
    void call_forward_hooks(const Tensor& input, const Tensor& output) const;
    /// The children in registration order (Sequential runs them in this order).
    const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const {
        return children_;
    }

  private:
    friend class EvalGuard;

    void check_new_name(const std::string& kind, const std::string& name) const;
    // Sets this module's qualified name and renames its tensors and descendants to match.
    void set_qualified_name(const std::string& qualified);
    // Appends (prefix, this) and every descendant not yet in `out`, depth first.
    void collect_modules(const std::string& prefix,
                         std::vector<std::pair<std::string, const Module*>>& out) const;
    std::vector<std::pair<std::string, const Module*>> all_modules() const;

    std::string name_;
    bool training_ = true;
    NamedTensors parameters_;
    NamedTensors buffers_;
    std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
    std::shared_ptr<detail::HookList> hooks_ = std::make_shared<detail::HookList>();
    // extra_repr() as of this module's last registration of a tensor, registration as a child,
    // call (operator()) or print(): what the debuggers' printers show inside the parentheses
    // (scripts/gdb/tapegrad.py, scripts/lldb/tapegrad_lldb.py), read from memory, so also in a
    // core file, with no second copy of each layer's extra_repr in Python.
    mutable std::string debug_extra_repr_ = "<not yet described: register, call or print it>";
    void note_extra_repr() const { debug_extra_repr_ = extra_repr(); }
};

/// Prints module.print(out) and a newline, as Python's print(model) does (`std::cout << model`
/// ends its line; print() alone writes the text of str(model), without one).
std::ostream& operator<<(std::ostream& out, const Module& module);

/// RAII: switches `model` to evaluation mode and, when destroyed (also during exception
/// unwinding), restores the mode every module of the model had before.
class EvalGuard {
  public:
    explicit EvalGuard(Module& model);
    ~EvalGuard();
    EvalGuard(const EvalGuard&) = delete;
    EvalGuard& operator=(const EvalGuard&) = delete;

  private:
    std::vector<std::pair<Module*, bool>> saved_;
};

}  // namespace tg::nn
