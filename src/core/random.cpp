#include "tapegrad/random.hpp"

#include <cmath>
#include <limits>
#include <mutex>

namespace tg {

namespace {

// The default generator's lock. Recursive: uniform()/normal() hold it for a whole array
// while each draw takes it again.
std::recursive_mutex& default_lock() {
    static std::recursive_mutex m;
    return m;
}

// Locks the default generator's mutex when `gen` is the default generator, else nothing.
std::unique_lock<std::recursive_mutex> lock_if_default(const Generator& gen) {
    return gen.is_default() ? std::unique_lock(default_lock())
                            : std::unique_lock<std::recursive_mutex>();
}

// The innermost GeneratorStates::Recording alive on this thread, or null.
thread_local GeneratorStates::Recording* recording = nullptr;

}  // namespace

void Generator::note_draw() {
    for (GeneratorStates::Recording* r = recording; r != nullptr; r = r->outer_)
        r->states_.save_once(*this);
}

GeneratorStates::Recording::Recording(GeneratorStates& states)
    : states_(states), outer_(recording) {
    recording = this;
}

GeneratorStates::Recording::~Recording() {
    recording = outer_;
}

void GeneratorStates::save_once(Generator& gen) {
    for (const Saved& s : saved_) {
        if (s.generator == &gen && !s.alive.expired()) return;
    }
    saved_.push_back(Saved{&gen, gen.alive_, gen});  // the copy takes the default one's lock
}

void GeneratorStates::restore() const {
    for (const Saved& s : saved_) {
        if (const auto alive = s.alive.lock(); alive && alive == s.generator->alive_) {
            *s.generator = s.state;  // operator= keeps is_default_ (and its lock)
        }
    }
}

GeneratorStates GeneratorStates::current() const {
    GeneratorStates now;
    for (const Saved& s : saved_) {
        if (const auto alive = s.alive.lock(); alive && alive == s.generator->alive_) {
            now.saved_.push_back(Saved{s.generator, s.alive, *s.generator});
        }
    }
    return now;
}

Generator::Generator(const Generator& other) {
    const auto lock = lock_if_default(other);
    engine_ = other.engine_;
    has_spare_ = other.has_spare_;
    spare_ = other.spare_;
}

Generator& Generator::operator=(const Generator& other) {
    if (this == &other) return *this;
    const auto lock = lock_if_default(is_default_ ? *this : other);
    const auto lock_other = lock_if_default(is_default_ ? other : *this);
    if (recording) note_draw();
    engine_ = other.engine_;
    has_spare_ = other.has_spare_;
    spare_ = other.spare_;
    return *this;  // is_default_ stays what it was
}

void Generator::seed(std::uint64_t s) {
    const auto lock = lock_if_default(*this);
    if (recording) note_draw();
    engine_.seed(s);
}

std::uint64_t Generator::next() {
    const auto lock = lock_if_default(*this);
    if (recording) note_draw();
    return engine_();
}

double Generator::uniform01() {
    const auto lock = lock_if_default(*this);
    if (recording) note_draw();
    return static_cast<double>(engine_() >> 11) * 0x1.0p-53;
}

double Generator::normal(double mean, double std) {
    const auto lock = lock_if_default(*this);
    if (recording) note_draw();
    // Box–Muller: two uniforms give two independent N(0, 1) samples; keep the second.
    if (has_spare_) {
        has_spare_ = false;
        return mean + std * spare_;
    }
    double u1 = uniform01();
    while (u1 <= std::numeric_limits<double>::min())
        u1 = uniform01();
    const double u2 = uniform01();
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double theta = 2.0 * M_PI * u2;
    spare_ = r * std::sin(theta);
    has_spare_ = true;
    return mean + std * r * std::cos(theta);
}

std::uint64_t Generator::randint(std::uint64_t n) {
    const auto lock = lock_if_default(*this);
    if (recording) note_draw();
    // Rejection sampling: unbiased for any n.
    const std::uint64_t limit =
        std::numeric_limits<std::uint64_t>::max() - std::numeric_limits<std::uint64_t>::max() % n;
    std::uint64_t x = engine_();
    while (x >= limit)
        x = engine_();
    return x % n;
}

Generator& default_generator() {
    static Generator gen(Generator::DefaultTag{});
    return gen;
}

void manual_seed(std::uint64_t seed) {
    default_generator() = Generator(seed);
}

Array uniform(const Shape& shape, double lo, double hi, Generator& gen) {
    const auto lock = lock_if_default(gen);  // one array from one run of the default stream
    Array a = new_array(shape);
    for (auto& v : a)
        v = static_cast<real>(gen.uniform(lo, hi));
    return a;
}

Array normal(const Shape& shape, double mean, double std, Generator& gen) {
    const auto lock = lock_if_default(gen);
    Array a = new_array(shape);
    for (auto& v : a)
        v = static_cast<real>(gen.normal(mean, std));
    return a;
}

}  // namespace tg
