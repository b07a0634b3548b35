#include "tapegrad/tensor.hpp"

#include <ostream>
#include <sstream>
#include <stdexcept>
#include <utility>

#include <xtensor/xbuilder.hpp>
#include <xtensor/xio.hpp>

#include "tapegrad/print.hpp"

namespace tg {

Tensor::Tensor(Array value, bool requires_grad, std::string name)
    : node_(std::make_shared<Node>()) {
    const auto& s = value.shape();  // too late to prevent a bad array, not to pass one on
    checked_numel(s.data(), s.size());
    node_->value = std::move(value);
    node_->requires_grad = requires_grad;
    node_->name = std::move(name);
}

Tensor Tensor::zeros(const Shape& shape, bool requires_grad) {
    Array a = new_array(shape);
    a.fill(real(0));
    return Tensor(std::move(a), requires_grad);
}

Tensor Tensor::ones(const Shape& shape, bool requires_grad) {
    Array a = new_array(shape);
    a.fill(real(1));
    return Tensor(std::move(a), requires_grad);
}

Tensor Tensor::full(const Shape& shape, real fill, bool requires_grad) {
    Array a = new_array(shape);
    a.fill(fill);
    return Tensor(std::move(a), requires_grad);
}

Tensor Tensor::scalar(real v, bool requires_grad) {
    return Tensor(Array(v), requires_grad);
}

Node& Tensor::node() const {
    if (!node_) throw std::logic_error("Tensor: use of an undefined (default-constructed) tensor");
    return *node_;
}

const Array& Tensor::grad() const {
    const Node& n = node();
    if (!n.has_grad) {
        throw std::logic_error("Tensor::grad: tensor " +
                               (n.name.empty() ? "" : "'" + n.name + "' ") +
                               shape_str(n.value.shape()) +
                               " has no gradient (backward has not reached it; a non-leaf keeps "
                               "its grad only after retain_grad())");
    }
    return n.grad;
}

Array& Tensor::grad() {
    return const_cast<Array&>(static_cast<const Tensor*>(this)->grad());
}

Tensor& Tensor::requires_grad_(bool on) {
    if (!on && !is_leaf()) {
        throw std::logic_error(
            "Tensor::requires_grad_: cannot turn off requires_grad of a non-leaf; use detach()");
    }
    node().requires_grad = on;
    return *this;
}

Tensor& Tensor::set_name(std::string name) {
    node().name = std::move(name);
    return *this;
}

Shape Tensor::shape() const {
    const auto& s = node().value.shape();
    return Shape(s.begin(), s.end());
}

std::size_t Tensor::size(int axis) const {
    const auto d = static_cast<int>(dim());
    const int a = axis < 0 ? axis + d : axis;
    if (a < 0 || a >= d) {
        throw std::out_of_range("Tensor::size: axis " + std::to_string(axis) +
                                " out of range for shape " + shape_str(node().value.shape()));
    }
    return node().value.shape()[static_cast<std::size_t>(a)];
}

real Tensor::item() const {
    if (numel() != 1) {
        throw std::logic_error("Tensor::item: expected a one-element tensor, got shape " +
                               shape_str(node().value.shape()));
    }
    return *node().value.data();
}

void Tensor::zero_grad(bool set_to_none) {
    Node& n = node();
    if (set_to_none) {
        n.grad = Array();
        n.has_grad = false;
    } else if (n.has_grad) {
        n.grad.fill(real(0));
    }
}

void Tensor::accumulate_grad(const Array& g) const {
    Node& n = node();
    if (n.has_grad) {
        n.grad += g;
    } else {
        n.grad = g;
        n.has_grad = true;
    }
}

void Tensor::accumulate_grad(Array&& g) const {
    Node& n = node();
    if (n.has_grad) {
        n.grad += g;
    } else {
        n.grad = std::move(g);
        n.has_grad = true;
    }
}

Tensor Tensor::detach() const {
    return Tensor(node().value, false, node().name);
}

std::ostream& operator<<(std::ostream& out, const Tensor& t) {
    if (!t.defined()) return out << "Tensor(undefined)";
    out << "Tensor(";
    if (!t.name().empty()) out << t.name() << ", ";
    out << shape_str(t.value().shape());
    if (t.requires_grad()) out << ", requires_grad";
    out << ")\n" << t.value();
    return out;
}

}  // namespace tg

std::ostream& xt::operator<<(std::ostream& out, const tg::Array& a) {
    return out << static_cast<const xt::xexpression<tg::Array>&>(a);  // xio.hpp's printer
}
