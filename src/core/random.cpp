#include "tapegrad/random.hpp"

#include <cmath>
#include <limits>

namespace tg {

double Generator::normal(double mean, double std) {
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
    // Rejection sampling: unbiased for any n.
    const std::uint64_t limit =
        std::numeric_limits<std::uint64_t>::max() - std::numeric_limits<std::uint64_t>::max() % n;
    std::uint64_t x = engine_();
    while (x >= limit)
        x = engine_();
    return x % n;
}

Generator& default_generator() {
    static Generator gen(0);
    return gen;
}

void manual_seed(std::uint64_t seed) {
    default_generator() = Generator(seed);
}

Array uniform(const Shape& shape, double lo, double hi, Generator& gen) {
    Array a = Array::from_shape(shape);
    for (auto& v : a)
        v = static_cast<real>(gen.uniform(lo, hi));
    return a;
}

Array normal(const Shape& shape, double mean, double std, Generator& gen) {
    Array a = Array::from_shape(shape);
    for (auto& v : a)
        v = static_cast<real>(gen.normal(mean, std));
    return a;
}

}  // namespace tg
