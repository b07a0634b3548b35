// The tg::dist test runner: one doctest run per rank, inside one tg::dist::Context.
// Started by CTest as `mpiexec --oversubscribe -np P tests_dist_f32` (P = 1, 2, 3, 4). Every
// rank runs every test case in the same order (their collectives must match); a rank's exit
// code is its doctest result, and mpiexec fails if any rank does.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "testing_dist.hpp"

namespace {
tg::dist::Context* g_ctx = nullptr;
}

const tg::dist::Context& test_ctx() {
    return *g_ctx;
}

int main(int argc, char** argv) {
    tg::dist::Context ctx(argc, argv);
    g_ctx = &ctx;
    doctest::Context runner(argc, argv);
    // Only rank 0 prints the summary; every rank prints its failures (with its rank in the
    // test case's messages).
    if (ctx.rank() != 0) runner.setOption("minimal", true);
    const int failed = runner.run();
    // A failing rank must not leave the others waiting in a later collective forever: agree
    // on the outcome before MPI_Finalize.
    double any = failed != 0 ? 1.0 : 0.0;
    ctx.all_reduce_sum(&any, 1);
    g_ctx = nullptr;
    return failed != 0 ? failed : (any != 0.0 ? 1 : 0);
}
