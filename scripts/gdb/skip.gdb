# scripts/gdb/skip.gdb — what `step` steps over, so that stepping from an op reaches its
# kernel's loops instead of the library plumbing on the way.
#
# Sourced by the project's gdb init file (scripts/gdb/, see docs/debugging.md); by hand:
#     gdb -x scripts/gdb/skip.gdb --args ./build/debug/examples/ch310_train_cnn --quick
# `break` still works in every skipped function, and `info skip` lists these rules
# (`skip disable N` turns one off).

# The C++ standard library and xtensor: headers under /usr/include, at any depth
# (the glob's * does not cross a /).
skip -gfi /usr/include/*
skip -gfi /usr/include/*/*
skip -gfi /usr/include/*/*/*
skip -gfi /usr/include/*/*/*/*
skip -gfi /usr/include/*/*/*/*/*
skip -gfi /usr/include/*/*/*/*/*/*
skip -rfu ^std::
skip -rfu ^xt::

# tapegrad's own plumbing between an op and its kernel: the Tensor handle's accessors
# (value(), shape(), defined(), ...), which kernels run, argument checks (check_*, prepare_*: break on them to read them), optional pointers.
skip -rfu ^tg::Tensor::
skip -rfu ^tg::Node::
# (In these regular expressions a ( opens a group and a space ends the argument: "(anonymous
# namespace)" is written .anonymous.namespace.)
skip -rfu ^tg::kernels_in_use
skip -rfu ^tg::shape_str<
skip -rfu ^tg::.anonymous.namespace.::check_
skip -rfu ^tg::.anonymous.namespace.::prepare_
skip -rfu ^tg::.anonymous.namespace.::data_or_null
