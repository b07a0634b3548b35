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
// Adding a kernel pair: its header here (the function types and both namespaces' declarations),
// its two bodies under reference/ and fast/, a pointer below and a line in each table in
// kernels.cpp.
#pragma once

#include "batch_norm.hpp"
#include "conv2d.hpp"
#include "cross_entropy.hpp"
#include "normalize_sets.hpp"
#include "pool.hpp"
#include "relu.hpp"

namespace tg::kernels {

/// One kernel set: every kernel that has a reference and a fast version.
struct KernelSet {
    BatchNormForwardKernel* batch_norm_forward;
    BatchNormBackwardKernel* batch_norm_backward;
    NormalizeSetsForwardKernel* normalize_sets_forward;
    NormalizeSetsBackwardKernel* normalize_sets_backward;
    Conv2dForwardKernel* conv2d_forward;
    Conv2dBackwardKernel* conv2d_backward;
    MaxPool2dForwardKernel* max_pool2d_forward;
    MaxPool2dBackwardKernel* max_pool2d_backward;
    AvgPool2dForwardKernel* avg_pool2d_forward;
    AvgPool2dBackwardKernel* avg_pool2d_backward;
    ReluForwardKernel* relu_forward;
    ReluBackwardKernel* relu_backward;
    LogSoftmaxForwardKernel* log_softmax_forward;
    LogSoftmaxBackwardKernel* log_softmax_backward;
    CrossEntropyForwardKernel* cross_entropy_forward;
    CrossEntropyBackwardKernel* cross_entropy_backward;
};

/// The reference kernels (the chapter's equations as plain loops, one thread) and the fast ones.
extern const KernelSet reference_set;
extern const KernelSet fast_set;

/// The set in use: &reference_set or &fast_set, as tg::set_kernels (or the build's default, or
/// TAPEGRAD_KERNELS at start-up) selected.
extern const KernelSet* in_use;

}  // namespace tg::kernels
