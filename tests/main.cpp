// The test binaries' main: doctest's, after fixing the kernels' thread count.
#define DOCTEST_CONFIG_IMPLEMENT
#include <cstdlib>

#include <doctest/doctest.h>

#include "tapegrad/parallel.hpp"

int main(int argc, char** argv) {
    // Two kernel threads on any runner, one CPU or sixty-four (the default would be every
    // hardware thread), unless TAPEGRAD_NUM_THREADS asks for another count. Tests that
    // exercise threads set their own count as well (tests/thread_count.hpp).
    if (std::getenv("TAPEGRAD_NUM_THREADS") == nullptr) tg::set_num_threads(2);
    doctest::Context context;
    context.applyCommandLine(argc, argv);
    return context.run();
}
