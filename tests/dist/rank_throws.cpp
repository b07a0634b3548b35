// A job in which rank 1 throws while the others wait for it in a collective: run by
// expect_abort.sh, which checks that the job ends (no hang) with a message naming rank 1.
#include <stdexcept>

#include "tapegrad/dist/context.hpp"

int main(int argc, char** argv) {
    tg::dist::Context ctx(argc, argv);
    if (ctx.rank() == 1) throw std::runtime_error("deliberate failure in the test");
    ctx.barrier();  // without the abort, the other ranks would wait here forever
    return 0;
}
