// tapegrad/random.hpp — a seedable generator, so the same seed gives the same numbers.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <vector>

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
    friend class GeneratorStates;
    struct DefaultTag {};
    explicit Generator(DefaultTag) : engine_(0), is_default_(true) {}

    // Called before every draw (and re-seeding): saves this generator's state into the
    // GeneratorStates recording on this thread, the first time only.
    void note_draw();

    std::mt19937_64 engine_;
    // Expires when this generator is destroyed, so a saved state is never written back into a
    // generator that no longer exists (each Generator, copies too, has its own).
    std::shared_ptr<const char> alive_ = std::make_shared<const char>();
    bool has_spare_ = false;
    double spare_ = 0.0;
    bool is_default_ = false;
};

/// The states of the generators a piece of code draws from, to replay its random numbers
/// (tg::checkpoint's preserve_rng_state, as torch.utils.checkpoint: the recomputed forward
/// draws the same dropout masks as the first).
///
///     tg::GeneratorStates states;
///     { tg::GeneratorStates::Recording r(states); fn(); }  // saves each state before its first
///     draw tg::GeneratorStates now = states.current();           // where they are at this moment
///     states.restore();  fn();  now.restore();              // fn draws the same numbers again
///
/// Only draws made on the recording thread are seen (tapegrad's ops draw on the calling
/// thread). A generator destroyed since is skipped by restore().
class GeneratorStates {
  public:
    /// RAII: while alive, the first draw on this thread from each generator saves its state
    /// into `states`. Nests: every Recording alive on the thread sees the draw.
    class Recording {
      public:
        explicit Recording(GeneratorStates& states);
        ~Recording();
        Recording(const Recording&) = delete;
        Recording& operator=(const Recording&) = delete;

      private:
        friend class Generator;
        GeneratorStates& states_;
        Recording* outer_;
    };

    /// Every saved generator (still alive) set back to its saved state.
    void restore() const;
    /// The same generators, with the states they have now.
    GeneratorStates current() const;
    /// How many generators were saved.
    std::size_t size() const { return saved_.size(); }

  private:
    friend class Generator;
    struct Saved {
        Generator* generator;
        std::weak_ptr<const char> alive;
        Generator state;
    };
    void save_once(Generator& gen);
    std::vector<Saved> saved_;
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
