// The reverse loop of Tape::backward (tape_backward.hpp): reverse-mode differentiation over
// the recorded tape.
#include "tape_backward.hpp"

namespace tg::kernels::reference {

void tape_backward(const TapeWalk& tape) {
    // ∂L/∂L = 1 (or the given grad_output). The tape is in execution order, so when the walk
    // from the last entry reaches entry i, every later entry that used its output has added
    // into its output's gradient: that gradient is complete, and entry i's backward passes it
    // on to its inputs. An entry whose output got no gradient does not lead to the output.
    // The loop's body is one line: in gdb, `next` on it runs one entry's backward and `step`
    // goes into the tape's call of that entry's op (docs/debugging.md).
    tape.seed();
    for (std::size_t i = tape.size(); i-- > 0;)
        if (tape.leads_to_output(i)) tape.run_backward(i);
}

}  // namespace tg::kernels::reference
