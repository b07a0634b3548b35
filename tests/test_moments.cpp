// SyncBatchNorm's merge of per-rank statistics (tg::dist::merge_moments, tapegrad/dist/moments.hpp)
// without MPI, in every build (issue 24: it was caught only by the MPI tests with >= 2 ranks).
// Per-rank (count, mean, M2) computed here in float64 from values split unevenly over "ranks",
// some with no values at all, merged, and compared with the mean and M2 of the concatenated
// batch computed directly from the definition (two passes in float64).
#include <cmath>
#include <cstddef>
#include <random>
#include <stdexcept>
#include <vector>

#include "tapegrad/dist/moments.hpp"
#include "testing.hpp"

namespace {

// values[c] of one rank: its x[n, c, *] flattened, n_r values per channel.
using RankValues = std::vector<std::vector<double>>;

struct Direct {
    double count = 0.0;
    std::vector<double> mean, m2;
};

// Two passes, by the definition: μ = Σx / n, M2 = Σ (x − μ)².
Direct direct(const std::vector<RankValues>& ranks, std::size_t channels) {
    Direct d{0.0, std::vector<double>(channels, 0.0), std::vector<double>(channels, 0.0)};
    for (std::size_t c = 0; c < channels; ++c) {
        std::vector<double> all;
        for (const RankValues& r : ranks)
            all.insert(all.end(), r[c].begin(), r[c].end());
        d.count = static_cast<double>(all.size());
        if (all.empty()) continue;
        double sum = 0.0;
        for (const double x : all)
            sum += x;
        d.mean[c] = sum / d.count;
        for (const double x : all)
            d.m2[c] += (x - d.mean[c]) * (x - d.mean[c]);
    }
    return d;
}

// What each rank contributes to the all-gather: [n_r, μ_r[0..C), M2_r[0..C)], one after the
// other (a rank with no values sends zeros, as local_moments leaves them).
std::vector<double> gathered(const std::vector<RankValues>& ranks, std::size_t channels) {
    std::vector<double> all;
    for (const RankValues& r : ranks) {
        const std::size_t n = r[0].size();
        std::vector<double> rec(1 + 2 * channels, 0.0);
        rec[0] = static_cast<double>(n);
        for (std::size_t c = 0; c < channels && n > 0; ++c) {
            double sum = 0.0;
            for (const double x : r[c])
                sum += x;
            const double mu = sum / static_cast<double>(n);
            double m2 = 0.0;
            for (const double x : r[c])
                m2 += (x - mu) * (x - mu);
            rec[1 + c] = mu;
            rec[1 + channels + c] = m2;
        }
        all.insert(all.end(), rec.begin(), rec.end());
    }
    return all;
}

// Ranks with the given counts; rank r's channel c drawn from N(offset_r + 3c, scale_r²), so the
// ranks' means differ (the δ² term matters) and channels differ.
std::vector<RankValues> make_ranks(const std::vector<std::size_t>& counts, std::size_t channels,
                                   unsigned seed) {
    std::mt19937_64 gen(seed);
    std::vector<RankValues> ranks;
    for (std::size_t r = 0; r < counts.size(); ++r) {
        std::normal_distribution<double> normal(0.0, 1.0);
        const double offset = 10.0 * static_cast<double>(r) - 7.0;
        const double scale = 0.5 + static_cast<double>(r);
        RankValues v(channels);
        for (std::size_t c = 0; c < channels; ++c) {
            for (std::size_t i = 0; i < counts[r]; ++i)
                v[c].push_back(offset + 3.0 * static_cast<double>(c) + scale * normal(gen));
        }
        ranks.push_back(std::move(v));
    }
    return ranks;
}

void check_merge(const std::vector<std::size_t>& counts, std::size_t channels) {
    const std::vector<RankValues> ranks = make_ranks(counts, channels, 24);
    const Direct want = direct(ranks, channels);
    const tg::dist::MergedMoments got =
        tg::dist::merge_moments(gathered(ranks, channels), counts.size(), channels);
    CHECK(got.count == want.count);
    REQUIRE(got.mean.size() == channels);
    REQUIRE(got.m2.size() == channels);
    for (std::size_t c = 0; c < channels; ++c) {
        INFO("channel " << c);
        CHECK(got.mean[c] == doctest::Approx(want.mean[c]).epsilon(1e-12));
        CHECK(got.m2[c] == doctest::Approx(want.m2[c]).epsilon(1e-12));
        // σ² = M2/n, what SyncBatchNorm normalises with.
        if (want.count > 0) {
            CHECK(got.m2[c] / got.count == doctest::Approx(want.m2[c] / want.count).epsilon(1e-12));
        }
    }
}

}  // namespace

TEST_CASE(
    "SyncBatchNorm's merge of per-rank (count, mean, M2) gives the concatenated batch's "
    "statistics (uneven counts, ranks with 0 samples)") {
    SUBCASE("uneven counts, a rank in the middle with 0 samples") {
        check_merge({5, 0, 17, 1, 9}, 3);
    }
    SUBCASE("rank 0 has no samples") {
        check_merge({0, 4, 2}, 2);
    }
    SUBCASE("the last rank has no samples") {
        check_merge({3, 8, 0}, 4);
    }
    SUBCASE("one rank: its own statistics") {
        check_merge({12}, 5);
    }
    SUBCASE("two ranks of one sample each") {
        check_merge({1, 1}, 1);
    }
    SUBCASE("many ranks, one sample each but one") {
        check_merge({1, 1, 1, 1, 1, 1, 1, 30}, 2);
    }
}

TEST_CASE("merge_moments: no samples on any rank gives count 0 and zero statistics") {
    const std::vector<double> none(3 * (1 + 2 * 2), 0.0);
    const tg::dist::MergedMoments got = tg::dist::merge_moments(none, 3, 2);
    CHECK(got.count == 0.0);
    CHECK(got.mean == std::vector<double>{0.0, 0.0});
    CHECK(got.m2 == std::vector<double>{0.0, 0.0});
}

TEST_CASE("merge_moments: a rank with no samples is skipped whatever its mean and M2 hold") {
    // Rank 1 reports n = 0 with garbage statistics: they must not be read.
    const std::vector<double> all = {2.0, 1.0,  0.5,           // rank 0: n 2, mean 1, M2 0.5
                                     0.0, 1e30, std::nan(""),  // rank 1: nothing
                                     2.0, 3.0,  0.5};          // rank 2: n 2, mean 3, M2 0.5
    const tg::dist::MergedMoments got = tg::dist::merge_moments(all, 3, 1);
    CHECK(got.count == 4.0);
    CHECK(got.mean[0] == doctest::Approx(2.0).epsilon(1e-15));
    // values {0.5, 1.5} and {2.5, 3.5}: M2 = 0.5 + 0.5 + δ²·n_a·n_b/n = 1 + 4·2·2/4 = 5.
    CHECK(got.m2[0] == doctest::Approx(5.0).epsilon(1e-15));
}

TEST_CASE("merge_moments refuses a gathered buffer of the wrong size or a bad count") {
    CHECK_THROWS_WITH_AS(tg::dist::merge_moments(std::vector<double>(5, 0.0), 2, 1),
                         doctest::Contains("expected 2 records"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::dist::merge_moments({-1.0, 0.0, 0.0}, 1, 1),
                         doctest::Contains("rank 0 has count"), std::invalid_argument);
}
