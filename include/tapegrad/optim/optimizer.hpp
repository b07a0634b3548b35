// tapegrad/optim/optimizer.hpp — what every optimiser shares: the parameters it updates.
#pragma once

#include <string>
#include <vector>

#include "tapegrad/tensor.hpp"

namespace tg::optim {

/// Holds the parameters (handles: the optimiser updates the model's own tensors in place).
class Optimizer {
  public:
    virtual ~Optimizer() = default;

    /// One update of every parameter that has a gradient; parameters without one are skipped.
    virtual void step() = 0;
    /// Clears every parameter's gradient: zero-filled, or released when set_to_none.
    void zero_grad(bool set_to_none = false);
    /// The parameters, in the order given.
    const std::vector<Tensor>& parameters() const { return parameters_; }

  protected:
    /// Checks the list as PyTorch does (not empty, leaves only); `name` prefixes the errors.
    Optimizer(const std::string& name, std::vector<Tensor> parameters);

    /// Throws std::logic_error, before any parameter is changed, if a parameter's gradient
    /// does not have the parameter's shape (a step would read past the end of the gradient).
    void check_grad_shapes() const;

    std::string name_;
    std::vector<Tensor> parameters_;
};

}  // namespace tg::optim
