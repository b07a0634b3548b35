// A seeded wrong solution (the grader must diagnose it as `break_at_unused`): ends the walk at
// the first entry that does not lead to the output.
//
// Exercise tape_backward: the reverse loop of Tape::backward, reverse-mode differentiation.
// Check it:  bash scripts/exercise.sh check tape_backward            (docs/exercises.md)
// Solution:  src/core/tape_backward.cpp (read it after you pass, not before).
//
// The forward pass recorded one entry per op on the tape, in the order the ops ran: entry i
// holds the op's inputs, its output and its backward. Reverse mode computes ∂L/∂v for every
// value v on the way from the leaves (parameters, inputs) to the output L, by the chain rule,
// from L back:
//
//     ∂L/∂L = 1                                       the seed (backward(output, g) seeds g)
//     ∂L/∂input += ∂L/∂output · ∂output/∂input        one entry's backward, for each input
//
// A value used by several later entries (fan-out, or one op using it twice, x·x) gets a
// gradient from each of them, and its ∂L/∂v is their sum: the entry that produced it may run
// its backward only after every entry that used it has run. The tape is in execution order,
// so walking it from the last entry to the first gives exactly that order. An entry whose
// output got no gradient does not lead to L (a value only printed or logged): skip it, and go
// on to the entries before it.
//
// `tape` (src/core/tape_backward.hpp) gives you:
//     tape.size()                the number of entries, 0 … size() − 1
//     tape.seed()                ∂L/∂output = the seed; once, before any backward runs
//     tape.leads_to_output(i)    whether entry i's output has a gradient
//     tape.run_backward(i)       entry i's backward: adds into its inputs' gradients, then
//                                frees entry i's own (only leaves keep theirs); it throws if
//                                entry i has no gradient (so: once per entry, where it leads)
// The adding (+=) is done for you inside each op's backward; your loop decides which entries
// run, and in which order. Mind the index type: std::size_t is never < 0.
#include <cstddef>

#include "src/core/tape_backward.hpp"
#include "tapegrad/exercise.hpp"

namespace tg::exercises {

void tape_backward(const TapeWalk& tape) {
    tape.seed();
    for (std::size_t i = tape.size(); i-- > 0;) {
        if (!tape.leads_to_output(i)) break;
        tape.run_backward(i);
    }
}

}  // namespace tg::exercises
