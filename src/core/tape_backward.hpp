// The reverse loop of Tape::backward (tape_backward.cpp; exercises/tape_backward.cpp is the
// exercise of writing it), and the tape as that loop sees it.
#pragma once

#include <cstddef>

namespace tg {

/// The recorded tape as its reverse loop sees it: entries 0 … size() − 1 in the order the
/// forward pass ran their ops. Tape::backward hands one to kernels::reference::tape_backward
/// (a handle: its functions are const, though what they walk changes).
class TapeWalk {
  public:
    /// The number of entries.
    virtual std::size_t size() const = 0;
    /// Seeds ∂L/∂output: 1 for backward(loss), grad_output for backward(output, grad_output).
    /// Once per walk, before anything runs (a second call throws: a tape is walked once).
    virtual void seed() const = 0;
    /// Whether entry i's output has received a gradient, i.e. leads to the output so far.
    virtual bool leads_to_output(std::size_t i) const = 0;
    /// Runs entry i's backward: adds ∂L/∂input = ∂L/∂output · ∂output/∂input into each of its
    /// inputs' gradients, then frees entry i's own gradient (only leaves keep theirs). Throws
    /// if entry i has no gradient (it does not lead to the output, or it already ran).
    virtual void run_backward(std::size_t i) const = 0;

  protected:
    ~TapeWalk() = default;
};

namespace kernels::reference {

/// Reverse-mode differentiation: seeds the output's gradient, then runs the backward of every
/// entry that leads to the output, from the last entry to the first, each exactly once.
void tape_backward(const TapeWalk& tape);

}  // namespace kernels::reference
}  // namespace tg
