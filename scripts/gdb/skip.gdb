# scripts/gdb/skip.gdb — what `step` steps over, so that stepping from an op reaches its
# kernel's loops instead of the library plumbing on the way.
#
# Sourced by scripts/gdb/tapegrad.py (with tapegrad-skip.gdb) when gdb starts with the
# project's init file:
#     gdb -ix scripts/gdb/gdbinit --args ./build/debug/examples/ch310_train_cnn --quick
# `break` still works in every skipped function, and `info skip` lists these rules
# (`skip disable N` turns one off).

# The C++ standard library, xtensor and the Tensor accessors are skipped by tapegrad-skip.gdb;
# these rules are the op/kernel seam's.

# Between an op function and its kernel: which kernels run, argument checks (check_*,
# prepare_*: `break` on them to read them), optional pointers.
# (In these regular expressions a ( opens a group and a space ends the argument: "(anonymous
# namespace)" is written .anonymous.namespace.)
skip -rfu ^tg::kernels_in_use
skip -rfu ^tg::.anonymous.namespace.::check_
skip -rfu ^tg::.anonymous.namespace.::prepare_
skip -rfu ^tg::.anonymous.namespace.::data_or_null
