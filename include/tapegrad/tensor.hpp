// tapegrad/tensor.hpp — Tensor: a cheap, shared handle to a value and its gradient.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>

#include "tapegrad/config.hpp"

namespace tg {

/// What a Tensor handle points to. Copies of a Tensor share one Node.
struct Node {
    Array value;            // the forward value
    Array grad;             // d loss / d value, meaningful only when has_grad
    bool has_grad = false;  // false until backward reaches this tensor (or after zero_grad(true))
    bool requires_grad = false;  // leaves: set by the user; op outputs: set when recorded
    bool retain_grad = false;  // keep the grad of a non-leaf after backward (PyTorch's retain_grad)
    std::string name;          // optional, e.g. "conv1.weight"; shown by Tape::print and to_dot
    std::uint64_t tape_id = 0;  // id of the tape whose op produced it; 0 for a leaf
};

/// A handle to a tensor: a value, its gradient, whether it requires grad, and a name.
/// Copying a Tensor copies the handle, not the data (like a PyTorch tensor variable).
class Tensor {
  public:
    /// An undefined tensor (no node); using it throws.
    Tensor() = default;
    /// A leaf tensor holding `value`.
    explicit Tensor(Array value, bool requires_grad = false, std::string name = {});

    static Tensor zeros(const Shape& shape, bool requires_grad = false);
    static Tensor ones(const Shape& shape, bool requires_grad = false);
    static Tensor full(const Shape& shape, real fill, bool requires_grad = false);
    /// A 0-dimensional tensor holding one number.
    static Tensor scalar(real v, bool requires_grad = false);

    bool defined() const { return node_ != nullptr; }

    const Array& value() const { return node().value; }
    /// Mutable access, for optimisers and initialisers. Changing the value of a tensor that a
    /// recorded op still needs gives wrong gradients, exactly as in-place edits do in PyTorch.
    Array& value() { return node().value; }

    /// The gradient; throws if backward has not reached this tensor (see has_grad()).
    const Array& grad() const;
    Array& grad();
    bool has_grad() const { return node().has_grad; }

    bool requires_grad() const { return node().requires_grad; }
    /// Marks a leaf as a parameter (or not). Like PyTorch's `requires_grad_()`.
    Tensor& requires_grad_(bool on = true);

    const std::string& name() const { return node().name; }
    Tensor& set_name(std::string name);

    Shape shape() const;
    std::size_t dim() const { return node().value.dimension(); }
    std::size_t numel() const { return node().value.size(); }
    /// The size of one axis; negative axes count from the end.
    std::size_t size(int axis) const;
    /// The single number of a one-element tensor.
    real item() const;

    /// True for a tensor not produced by a recorded op (inputs, parameters, detached tensors).
    bool is_leaf() const { return node().tape_id == 0; }

    /// Clears the gradient: zero-filled (the default, PyTorch's zero_grad(set_to_none=False))
    /// or released entirely.
    void zero_grad(bool set_to_none = false);
    /// grad += g (the first call allocates grad). Backward closures use this for inputs; it is
    /// const because a Tensor is a handle: the gradient lives in the shared node.
    void accumulate_grad(const Array& g) const;
    void accumulate_grad(Array&& g) const;
    /// Keeps this non-leaf tensor's grad after Tape::backward, so it can be inspected.
    void retain_grad() { node().retain_grad = true; }

    /// A new leaf with a copy of the value, cut from the tape (no gradient flows through it).
    Tensor detach() const;

    /// True when both handles point to the same tensor.
    bool is(const Tensor& other) const { return node_ == other.node_; }

    Node& node() const;

  private:
    std::shared_ptr<Node> node_;
};

/// Prints "Tensor(name, [2, 3], requires_grad) {{...}}".
std::ostream& operator<<(std::ostream& out, const Tensor& t);

}  // namespace tg
