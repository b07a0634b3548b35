// tg::dist::Context: the collectives against sums we can write down (rank r contributes r + 1,
// so Σ_ranks = P(P + 1)/2), and an MPI error coming back as an exception naming the call.
#include <doctest/doctest.h>

#include <cstdint>
#include <stdexcept>
#include <vector>

#include <xtensor/xbuilder.hpp>

#include "tapegrad/dist/context.hpp"
#include "testing_dist.hpp"

TEST_CASE("Context: all-reduce, broadcast, all-gather and barrier give the known values") {
    const auto& ctx = test_ctx();
    const int P = ctx.world_size(), r = ctx.rank();
    REQUIRE(P >= 1);
    REQUIRE(r >= 0);
    REQUIRE(r < P);
    CHECK(ctx.where() == "rank " + std::to_string(r) + " of " + std::to_string(P));
    const double sum = P * (P + 1) / 2.0;  // Σ_{r=0}^{P−1} (r + 1)

    // Sum: rank r gives [r + 1, 2(r + 1), 0.5]; every rank gets [S, 2S, P/2].
    std::vector<double> d{r + 1.0, 2.0 * (r + 1), 0.5};
    ctx.all_reduce_sum(d.data(), d.size());
    CHECK(d == std::vector<double>{sum, 2 * sum, 0.5 * P});
    std::vector<float> f{static_cast<float>(r + 1), -1.0f};
    ctx.all_reduce_sum(f.data(), f.size());
    CHECK(f == std::vector<float>{static_cast<float>(sum), static_cast<float>(-P)});

    // Mean of arrays: (r + 1) · [1, 2, 3] averages to (P + 1)/2 · [1, 2, 3].
    tg::Array a = xt::arange<tg::real>(1, 4) * static_cast<tg::real>(r + 1);
    ctx.all_reduce_mean(a);
    for (std::size_t i = 0; i < 3; ++i)
        CHECK(a(i) == doctest::Approx((P + 1) / 2.0 * static_cast<double>(i + 1)));

    // Broadcast from the last rank: everyone gets its values.
    tg::Array b = xt::full_like(tg::Array::from_shape({4}), static_cast<tg::real>(r));
    ctx.broadcast(b, P - 1);
    for (const tg::real v : b)
        CHECK(v == static_cast<tg::real>(P - 1));
    std::vector<double> bd{static_cast<double>(r) * 10.0};
    ctx.broadcast(bd.data(), 1, 0);
    CHECK(bd[0] == 0.0);

    // All-gather: rank order.
    const auto gathered = ctx.all_gather(std::vector<double>{r * 1.0, -r * 1.0});
    REQUIRE(gathered.size() == 2 * static_cast<std::size_t>(P));
    for (int q = 0; q < P; ++q) {
        CHECK(gathered[2 * static_cast<std::size_t>(q)] == q);
        CHECK(gathered[2 * static_cast<std::size_t>(q) + 1] == -q);
    }
    const auto ids = ctx.all_gather(static_cast<std::uint64_t>(100 + r));
    for (int q = 0; q < P; ++q)
        CHECK(ids[static_cast<std::size_t>(q)] == static_cast<std::uint64_t>(100 + q));
    CHECK_NOTHROW(ctx.barrier());
}

TEST_CASE("Context: a root that is not a rank is refused on every rank; MPI errors name the call") {
    const auto& ctx = test_ctx();
    // A root that is not a rank: every rank sees it in agree() before MPI_Bcast, so every rank
    // throws the same error and none is left in the collective.
    std::vector<double> d{1.0};
    const std::string expected = "tg::dist: broadcast: refused on every rank: rank 0: root " +
                                 std::to_string(ctx.world_size());
    CHECK_THROWS_WITH_AS(ctx.broadcast(d.data(), d.size(), ctx.world_size()),
                         doctest::Contains(expected.c_str()), std::invalid_argument);
    // check_mpi itself: success is silent, any other code names the call.
    CHECK_NOTHROW(tg::dist::check_mpi(MPI_SUCCESS, "MPI_Barrier"));
    CHECK_THROWS_WITH_AS(tg::dist::check_mpi(MPI_ERR_COUNT, "MPI_Allreduce"),
                         doctest::Contains("MPI_Allreduce failed on rank"), std::runtime_error);
    // The job still works afterwards.
    ctx.barrier();
}
