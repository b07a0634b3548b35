// tapegrad/dist/moments.hpp — the merge of per-rank statistics that SyncBatchNorm's forward does.
//
// Each of P ranks has, per channel c, its count n_r (values per channel, the same for every
// channel), its mean μ_r[c] and M2_r[c] = Σ (x − μ_r[c])². Merged in rank order (Chan, Golub &
// LeVeque), pairwise:
//     n = n_a + n_b,   δ = μ_b − μ_a,   μ = μ_a + δ·n_b/n,   M2 = M2_a + M2_b + δ²·n_a·n_b/n
// A rank with n_r = 0 is skipped (its mean and M2 are not read). The result is the count, mean
// and M2 of the concatenation of every rank's values; σ² = M2/n (biased), M2/(n − 1) unbiased.
//
// Header-only and free of MPI, so the unit tests check it in every build (tests/test_moments.cpp,
// against the statistics of the concatenated batch) and tg::dist::sync_batch_norm
// (src/dist/sync_batchnorm.cpp) calls the same function on what MPI_Allgather gathered.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

namespace tg::dist {

struct MergedMoments {
    double count = 0.0;        // Σ n_r: values per channel over all ranks
    std::vector<double> mean;  // [C]
    std::vector<double> m2;    // [C]: Σ (x − mean)² over all ranks' values
};

/// Merges `ranks` records laid out one after the other, each [n_r, μ_r[0..C), M2_r[0..C)]
/// (1 + 2C doubles, the layout sync_batch_norm gathers), in rank order. Throws
/// std::invalid_argument if `gathered` does not hold exactly `ranks` records of `channels`
/// channels, or a count is negative or not finite.
inline MergedMoments merge_moments(const std::vector<double>& gathered, std::size_t ranks,
                                   std::size_t channels) {
    const std::size_t stride = 1 + 2 * channels;
    if (gathered.size() != ranks * stride) {
        throw std::invalid_argument("merge_moments: expected " + std::to_string(ranks) +
                                    " records of 1 + 2·" + std::to_string(channels) + " values (" +
                                    std::to_string(ranks * stride) + "), got " +
                                    std::to_string(gathered.size()));
    }
    MergedMoments merged{0.0, std::vector<double>(channels, 0.0),
                         std::vector<double>(channels, 0.0)};
    for (std::size_t r = 0; r < ranks; ++r) {
        const double* theirs = gathered.data() + r * stride;
        const double nb = theirs[0];
        if (!(nb >= 0.0) || nb > 1e300) {
            throw std::invalid_argument("merge_moments: rank " + std::to_string(r) + " has count " +
                                        std::to_string(nb) + ", expected a finite count >= 0");
        }
        if (nb == 0.0) continue;
        const double na = merged.count;
        const double n = na + nb;
        for (std::size_t c = 0; c < channels; ++c) {
            const double delta = theirs[1 + c] - merged.mean[c];
            merged.mean[c] += delta * nb / n;
            merged.m2[c] += theirs[1 + channels + c] + delta * delta * na * nb / n;
        }
        merged.count = n;
    }
    return merged;
}

}  // namespace tg::dist
