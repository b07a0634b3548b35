// Which kernels run (tapegrad/kernels.hpp): the build's default, the TAPEGRAD_KERNELS
// environment variable, set_kernels; and the two kernel sets the ops call through
// (kernel_set.hpp).
#include "tapegrad/kernels.hpp"

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "kernel_set.hpp"
#include "tapegrad/config.hpp"
#include "tapegrad/ops/gemm.hpp"
#include "tapegrad/parallel.hpp"

namespace tg {

namespace kernels {

constinit const KernelSet reference_set = {
    reference::batch_norm_kernels(), reference::normalize_sets_kernels(),
    reference::conv2d_kernels(),     reference::pool_kernels(),
    reference::relu_kernels(),       reference::cross_entropy_kernels(),
    reference::activation_kernels(),
};

constinit const KernelSet fast_set = {
    fast::batch_norm_kernels(), fast::normalize_sets_kernels(), fast::conv2d_kernels(),
    fast::pool_kernels(),       fast::relu_kernels(),           fast::cross_entropy_kernels(),
    fast::activation_kernels(),
};

// Constant-initialised to the set that matches selected_kernels before its initialiser runs
// (zero: Kernels::reference); set_kernels, which that initialiser calls, keeps the two in step.
const KernelSet* in_use = &reference_set;

}  // namespace kernels

namespace {

/// The build's default (CMake TAPEGRAD_KERNELS), unless TAPEGRAD_KERNELS is set when the
/// program starts. A bad value in the environment is reported once on stderr and ignored: a
/// program cannot catch an exception thrown before main.
Kernels initial_kernels() {
#ifdef TAPEGRAD_DEFAULT_KERNELS_REFERENCE
    Kernels k = Kernels::reference;
#else
    Kernels k = Kernels::fast;
#endif
    if (const char* env = std::getenv("TAPEGRAD_KERNELS")) {
        try {
            k = parse_kernels(env);
        } catch (const std::invalid_argument& e) {
            std::fprintf(stderr, "tapegrad: ignoring TAPEGRAD_KERNELS: %s\n", e.what());
        }
    }
    set_kernels(k);
    return k;
}

}  // namespace

namespace detail {
Kernels selected_kernels = initial_kernels();
}  // namespace detail

void set_kernels(Kernels k) {
    detail::selected_kernels = k;
    kernels::in_use = k == Kernels::reference ? &kernels::reference_set : &kernels::fast_set;
}

const char* kernels_name(Kernels k) {
    return k == Kernels::reference ? "reference" : "fast";
}

Kernels parse_kernels(const std::string& name) {
    if (name == "reference") return Kernels::reference;
    if (name == "fast") return Kernels::fast;
    throw std::invalid_argument("kernels: '" + name +
                                "' is not a kernel set, expected 'reference' or 'fast'");
}

std::string runtime_summary() {
    const std::size_t threads = num_threads();
    return std::string("tapegrad: ") + kernels_name() + " kernels, " + std::to_string(threads) +
           (threads == 1 ? " thread" : " threads") + ", " + (is_double ? "float64" : "float32") +
           ", OpenBLAS core " + detail::blas_core();
}

}  // namespace tg
