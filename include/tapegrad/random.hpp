// tapegrad/random.hpp — a seedable generator, so the same seed gives the same numbers.
#pragma once

#include <cstdint>
#include <random>

#include "tapegrad/config.hpp"

namespace tg {

/// Mersenne Twister with our own uniform/normal transforms (std:: distributions differ
/// between standard libraries; these do not).
class Generator {
  public:
    explicit Generator(std::uint64_t seed = 0) : engine_(seed) {}
    void seed(std::uint64_t s) { engine_.seed(s); }
    std::uint64_t next() { return engine_(); }
    /// U[0, 1) with 53 random bits.
    double uniform01() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
    /// U[lo, hi).
    double uniform(double lo, double hi) { return lo + (hi - lo) * uniform01(); }
    /// N(mean, std^2) by the Box–Muller transform.
    double normal(double mean = 0.0, double std = 1.0);
    /// An integer in [0, n).
    std::uint64_t randint(std::uint64_t n);

  private:
    std::mt19937_64 engine_;
    bool has_spare_ = false;
    double spare_ = 0.0;
};

/// The process-wide generator used when none is passed.
Generator& default_generator();
/// Re-seeds the default generator (like torch.manual_seed).
void manual_seed(std::uint64_t seed);

/// An array of U[lo, hi) samples.
Array uniform(const Shape& shape, double lo, double hi, Generator& gen = default_generator());
/// An array of N(mean, std^2) samples.
Array normal(const Shape& shape, double mean = 0.0, double std = 1.0,
             Generator& gen = default_generator());

}  // namespace tg
