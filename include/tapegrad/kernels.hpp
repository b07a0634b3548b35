// tapegrad/kernels.hpp — which of an op's two kernels run: the reference ones or the fast ones.
//
// Every op with a tuned implementation computes through one of two kernels with the same
// signature (src/ops/kernels/):
//   reference  the chapter's equations as plain loops over raw arrays, one thread — what the
//              debug build runs and what a reader steps into;
//   fast       the same numbers (within float round-off) with every speed trick: lanes,
//              blocks, fused passes, threads.
// Every op calls its kernels through the table of the set in use, `kernels::in_use->name(...)`
// (src/ops/kernels/kernel_set.hpp; set_kernels points it at reference_set or fast_set): one
// indirect call, so the reference path costs no extra frame. tg::dist's sync_batch_norm has a
// table of its own, and the fused ops and nn::Sequential test kernels_in_use() to choose
// between compositions; docs/architecture.md lists them.
//
// The default is chosen when the library is built (CMake option TAPEGRAD_KERNELS: the debug
// preset builds `reference`, release/ci/asan build `fast`); the environment variable
// TAPEGRAD_KERNELS=reference|fast overrides it when a program starts, set_kernels at any time.
#pragma once

#include <string>

namespace tg {

enum class Kernels { reference, fast };

namespace detail {
/// The kernels in use (read it through tg::kernels_in_use()).
extern Kernels selected_kernels;
}  // namespace detail

/// The kernels in use. (Not named `kernels()`: tg::kernels is the namespace of the kernels
/// themselves, tg::kernels::reference and tg::kernels::fast.)
inline Kernels kernels_in_use() {
    return detail::selected_kernels;
}

/// Selects the kernels every op uses from now on.
void set_kernels(Kernels k);

/// "reference" or "fast".
const char* kernels_name(Kernels k);
/// The name of the kernels in use.
inline const char* kernels_name() {
    return kernels_name(kernels_in_use());
}

/// Parses "reference" or "fast" (what --kernels and TAPEGRAD_KERNELS accept); throws
/// std::invalid_argument naming the accepted values otherwise.
Kernels parse_kernels(const std::string& name);

/// One line saying how this program computes, printed by the programs once their flags are
/// applied (examples/common/cli.cpp), e.g.
/// "tapegrad: fast kernels, 2 threads, float32, OpenBLAS core Haswell".
std::string runtime_summary();

}  // namespace tg
