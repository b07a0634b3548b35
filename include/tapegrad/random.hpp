// tapegrad/random.hpp — a seedable generator, so the same seed gives the same numbers.
#pragma once

#include <cstdint>
#include <random>

#include "tapegrad/config.hpp"

namespace tg {

/// Mersenne Twister with our own uniform/normal transforms (std:: distributions differ
/// between standard libraries; these do not).
///
/// A Generator is not thread-safe, except the default one: every draw from
/// default_generator() (and every array filled from it by uniform/normal) holds one
/// process-wide lock, so threads sharing it never corrupt its state. Which thread gets which
/// numbers then depends on timing: for reproducible results give each thread its own.
class Generator {
  public:
    explicit Generator(std::uint64_t seed = 0) : engine_(seed) {}
    /// Copies the state (under the lock when `other` is the default generator); the copy is
    /// an ordinary, unlocked generator, and assigning to the default one keeps it locked.
    Generator(const Generator& other);
    Generator& operator=(const Generator& other);

    void seed(std::uint64_t s);
    std::uint64_t next();
    /// U[0, 1) with 53 random bits.
    double uniform01();
    /// U[lo, hi).
    double uniform(double lo, double hi) { return lo + (hi - lo) * uniform01(); }
    /// N(mean, std^2) by the Box–Muller transform.
    double normal(double mean = 0.0, double std = 1.0);
    /// An integer in [0, n).
    std::uint64_t randint(std::uint64_t n);

    /// True for the process-wide default generator (its draws are locked).
    bool is_default() const { return is_default_; }

  private:
    friend Generator& default_generator();
    struct DefaultTag {};
    explicit Generator(DefaultTag) : engine_(0), is_default_(true) {}

    std::mt19937_64 engine_;
    bool has_spare_ = false;
    double spare_ = 0.0;
    bool is_default_ = false;
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
