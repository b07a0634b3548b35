# tapegrad-skip.gdb — where `step` does not stop, so that it goes from the tape's reverse loop
# into each op's backward, and from a module's forward into the op, and not into the C++
# library, xtensor or tapegrad's one-line accessors. Sourced by tapegrad.py (next to i9's
# skip.gdb, the kernels' rules). `info skip` lists them; `skip delete N` removes one.
#
# The patterns are extended regular expressions (gdb drops a backslash before ( and |).
# Caution, how gdb skips: a skipped function is run to its return as a whole, so `step` never
# stops in anything it calls either. Nothing on the way from Tape::backward to an op's
# backward may be skipped: the tape calls the op's closure without std::function in between.

# The C++ standard library, xtensor, xtl and OpenBLAS-facing headers: by file and by name.
skip -gfi /usr/include/*
skip -gfi /usr/include/*/*
skip -gfi /usr/include/*/*/*
skip -gfi /usr/include/*/*/*/*
skip -rfu ^std::
skip -rfu ^__gnu_cxx::
skip -rfu ^xt::
skip -rfu ^xtl::

# tapegrad bookkeeping a reader does not need to step through: Tensor handles and accessors,
# shapes, the tape's lookup of the active tape, the anomaly guard's checks.
skip -rfu ^tg::Tensor::(Tensor|~Tensor|operator=|node|value|grad|shape|defined|name|requires_grad|has_grad|numel|dim|size|is_leaf|is|item)($|[(])
skip -rfu ^tg::Node::(Node|~Node)($|[(])
skip -rfu ^tg::shape_str<
skip -rfu ^tg::recording_tape<
skip -rfu ^tg::Tape::active($|[(])
# Tape::backward's loop (kernels::reference::tape_backward, over the tape's Walk): the checks
# and the seed, moving to the next entry (the anomaly check, freeing grads), the seed of
# backward(loss), the Walk's bookkeeping. `step` on the loop's body enters Walk::run_backward,
# whose middle line calls the entry's op.
skip -rfu ^tg::Tape::(start_backward|next_entry|previous_entry)[(]
skip -rfu ^(tg::Tape::backward[(].*[)]::)?Walk::(Walk|size|seed|leads_to_output|at|with_grad)($|[(])
skip -rfu ^tg::[(]anonymous.namespace[)]::ones_like[(]
skip -rfu ^tg::BackwardFn::(closure|operator.bool)($|[(])

# The op/kernel seam's plumbing (also in skip.gdb): which kernels run, argument checks,
# optional pointers. Parentheses that are part of a name are written [(] and [)], and a
# space as . (gdb splits the command's arguments at spaces).
skip -rfu ^tg::kernels_in_use[(]
skip -rfu ^tg::[(]anonymous.namespace[)]::check_
skip -rfu ^tg::[(]anonymous.namespace[)]::data_or_null[(]
skip -rfu ^tg::[(]anonymous.namespace[)]::fixed_stat[(]
skip -rfu ^tg::[(]anonymous.namespace[)]::tape_for[(]
skip -rfu ^tg::[(]anonymous.namespace[)]::InputGrads::
