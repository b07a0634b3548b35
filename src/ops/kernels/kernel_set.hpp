// The one way an op picks between its two kernels: a kernel set is a table with a pointer to
// each kernel of the pairs declared beside this file (batch_norm.hpp, conv2d.hpp, ...); there
// are two tables, reference_set and fast_set (kernels.cpp), and `in_use` points at the one
// tg::set_kernels selected (tapegrad/kernels.hpp). An op calls
//
//     kernels::in_use->batch_norm_forward(y, mean, var, invstd, x, ...);
//
// which, at -O0 too, is one indirect call and no frame in between: in gdb `step` on that line
// lands in the kernel itself (the debug build's: the reference one).
//
// Adding a kernel to a pair: its function type, a pointer in the pair's row (struct
// <Pair>Kernels), and its declaration and its name in the row function in the pair's macro
// (TG_KERNELS_<PAIR>, expanded in both namespaces), all in the pair's header; its two bodies
// under reference/ and fast/. Nothing here or in kernels.cpp changes.
// Adding a new pair: the same header, and its row below and in the two tables of kernels.cpp.
// A pair's rows are constexpr functions (reference::relu_kernels(), ...), evaluated when
// kernels.cpp builds the two tables: a file that only includes the header (a reference body
// alone, as the exercise grader compiles it) refers to no kernel of the other set.
#pragma once

#include "activation.hpp"
#include "batch_norm.hpp"
#include "conv2d.hpp"
#include "cross_entropy.hpp"
#include "normalize_sets.hpp"
#include "pool.hpp"
#include "relu.hpp"

namespace tg::kernels {

/// One kernel set: every kernel that has a reference and a fast version, one row per pair
/// header (its struct of pointers; the members are the kernels' names, so an op writes
/// `kernels::in_use->relu_forward(...)`).
struct KernelSet : BatchNormKernels,
                   NormalizeSetsKernels,
                   Conv2dKernels,
                   PoolKernels,
                   ReluKernels,
                   CrossEntropyKernels,
                   ActivationKernels {};

/// The reference kernels (the chapter's equations as plain loops, one thread) and the fast ones.
extern const KernelSet reference_set;
extern const KernelSet fast_set;

/// The set in use: &reference_set or &fast_set, as tg::set_kernels (or the build's default, or
/// TAPEGRAD_KERNELS at start-up) selected.
extern const KernelSet* in_use;

}  // namespace tg::kernels
