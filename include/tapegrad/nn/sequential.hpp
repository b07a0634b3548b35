// tapegrad/nn/sequential.hpp — Sequential: modules applied one after another.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "tapegrad/nn/module.hpp"

namespace tg::nn {

/// What Sequential accepts as a layer: a module moved in, or a shared_ptr to one (to keep a
/// typed handle to it outside).
template <class T>
concept ModuleArg = (std::derived_from<std::remove_cvref_t<T>, Module> &&
                     std::is_rvalue_reference_v<T&&>) ||
                    std::convertible_to<T, std::shared_ptr<Module>>;

/// y = f_n(... f_1(f_0(x))). The children are named "0", "1", ... unless named explicitly.
///
///     tg::nn::Sequential model{tg::nn::Conv2d(1, 4, 3), tg::nn::BatchNorm2d(4), tg::nn::ReLU()};
class Sequential : public Module {
  public:
    Sequential() = default;
    /// Appends each argument in order: `Sequential{Linear(4, 8), ReLU(), Linear(8, 2)}`.
    /// (A lone Sequential argument is moved, not nested: nest one with push_back.)
    template <ModuleArg... M>
    explicit Sequential(M&&... layers) {
        (push_back(std::forward<M>(layers)), ...);
    }

    /// Appends `layer` under the name "<size()>" and returns it (as its own type).
    template <ModuleArg M>
    auto& push_back(M&& layer) {
        return push_back(std::to_string(size()), std::forward<M>(layer));
    }
    /// Appends `layer` under `name` and returns it (as its own type).
    template <ModuleArg M>
    auto& push_back(const std::string& name, M&& layer) {
        return *register_module(name, std::forward<M>(layer));
    }

    /// x through every layer in order, each via operator() so its hooks run. With the fast
    /// kernels, a ReLU followed by MaxPool2d(2) (stride 2, no padding), neither with a forward
    /// hook, runs as one op, tg::relu_max_pool2d: the same numbers in one pass each way; a
    /// BatchNorm2d (no forward hook) before such a pair joins it, tg::batch_norm_relu_max_pool2d
    /// (the same numbers).
    Tensor forward(const Tensor& input) override;
    std::string type_name() const override { return "Sequential"; }

    /// The number of layers.
    std::size_t size() const { return children().size(); }
    /// The i-th layer.
    Module& operator[](std::size_t i) const;
    /// The i-th layer as its concrete type: `model.at<BatchNorm2d>(1).running_mean`; throws
    /// if it is another type.
    template <class M>
    M& at(std::size_t i) const {
        auto* layer = dynamic_cast<M*>(&(*this)[i]);
        if (layer == nullptr) {
            throw std::invalid_argument("Sequential::at: layer " + std::to_string(i) + " is a " +
                                        (*this)[i].type_name() + ", not the type requested");
        }
        return *layer;
    }
};

}  // namespace tg::nn
