// Which kernels run (tapegrad/kernels.hpp): the build's default, the TAPEGRAD_KERNELS
// environment variable, set_kernels.
#include "tapegrad/kernels.hpp"

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "tapegrad/config.hpp"
#include "tapegrad/ops/gemm.hpp"
#include "tapegrad/parallel.hpp"

namespace tg {

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
    return k;
}

}  // namespace

namespace detail {
Kernels selected_kernels = initial_kernels();
}  // namespace detail

void set_kernels(Kernels k) {
    detail::selected_kernels = k;
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
