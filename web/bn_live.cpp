// web/bn_live.cpp — see bn_live.hpp. Nothing here computes BatchNorm or a histogram itself:
// it draws, calls tapegrad's functions and keeps their results where JavaScript can read them.
#include "bn_live.hpp"

#include <exception>
#include <span>
#include <string>
#include <vector>

#include "ops/kernels/batch_norm.hpp"
#include "tapegrad/random.hpp"
#include "tapegrad/viz/histogram.hpp"

namespace {

constexpr int kFeatures = 64;
constexpr double kEps = 1e-5;  // PyTorch's (and the chapter figure's) ε

struct State {
    int B = 0;
    std::vector<float> x, y;
    std::vector<double> mean, var, invstd;
    tg::viz::Histogram hx, hy;
    std::vector<double> noise_mu, noise_var, noise_summary;
    tg::viz::Histogram hmu, hvar;
    std::vector<double> step_mu, step_var;
    std::vector<float> run_mean, run_var;
    std::string error;
};
State& state() {
    static State s;
    return s;
}

int fail(const std::string& what) {
    state().error = what;
    return -1;
}

std::string check_batch(int B, double scale) {
    if (B < 2 || B > 4096)
        return "batch size B = " + std::to_string(B) + ": expected 2 <= B <= 4096";
    if (!(scale > 0.0)) return "scale " + std::to_string(scale) + ": expected > 0";
    return "";
}

/// x [B, 64] from N(mean, scale²): tg::normal, the chapter program's own draw.
void draw(std::vector<float>& x, int B, double mean, double scale, tg::Generator& gen) {
    const tg::Array a = tg::normal({static_cast<std::size_t>(B), kFeatures}, mean, scale, gen);
    x.assign(a.data(), a.data() + a.size());
}

/// The reference kernel's training-mode forward of x [B, 64] (L = 1).
void forward(State& s, const float* gamma, const float* beta) {
    s.y.resize(s.x.size());
    s.mean.resize(kFeatures);
    s.var.resize(kFeatures);
    s.invstd.resize(kFeatures);
    tg::kernels::reference::batch_norm_forward(
        s.y.data(), s.mean.data(), s.var.data(), s.invstd.data(), s.x.data(), gamma, beta, nullptr,
        nullptr, static_cast<std::size_t>(s.B), kFeatures, 1, kEps);
}

template <class F>
int guarded(F&& f) {
    try {
        state().error.clear();
        return f();
    } catch (const std::exception& e) {
        return fail(e.what());
    }
}

}  // namespace

extern "C" {

int bnl_features() {
    return kFeatures;
}

int bnl_draw(int B, double mean, double scale, double seed) {
    return guarded([&] {
        if (const auto bad = check_batch(B, scale); !bad.empty()) return fail("bnl_draw: " + bad);
        State& s = state();
        tg::Generator gen(static_cast<std::uint64_t>(seed));
        draw(s.x, B, mean, scale, gen);
        s.B = B;
        return 0;
    });
}

float* bnl_x() {
    return state().x.data();
}
int bnl_batch() {
    return state().B;
}

int bnl_normalise(double gamma, double beta, int bins) {
    return guarded([&] {
        State& s = state();
        if (s.B == 0) return fail("bnl_normalise: no batch drawn yet (call bnl_draw first)");
        if (bins < 1)
            return fail("bnl_normalise: bins = " + std::to_string(bins) + ", expected >= 1");
        const std::vector<float> g(kFeatures, static_cast<float>(gamma));
        const std::vector<float> b(kFeatures, static_cast<float>(beta));
        forward(s, g.data(), b.data());
        const std::vector<double> xd(s.x.begin(), s.x.end()), yd(s.y.begin(), s.y.end());
        s.hx = tg::viz::histogram(std::span<const double>(xd), static_cast<std::size_t>(bins));
        s.hy = tg::viz::histogram(std::span<const double>(yd), static_cast<std::size_t>(bins));
        return 0;
    });
}

const float* bnl_y() {
    return state().y.data();
}
const double* bnl_mean() {
    return state().mean.data();
}
const double* bnl_var() {
    return state().var.data();
}
const double* bnl_invstd() {
    return state().invstd.data();
}
int bnl_bins() {
    return static_cast<int>(state().hx.bins());
}
const double* bnl_x_edges() {
    return state().hx.edges.data();
}
const double* bnl_x_density() {
    return state().hx.density.data();
}
const double* bnl_y_edges() {
    return state().hy.edges.data();
}
const double* bnl_y_density() {
    return state().hy.density.data();
}

int bnl_noise(int B, int draws, double mean, double scale, double seed, int bins) {
    return guarded([&] {
        if (const auto bad = check_batch(B, scale); !bad.empty()) return fail("bnl_noise: " + bad);
        if (draws < 2 || draws > 10000)
            return fail("bnl_noise: draws = " + std::to_string(draws) + ", expected 2 ... 10000");
        if (bins < 1) return fail("bnl_noise: bins = " + std::to_string(bins) + ", expected >= 1");
        State s;  // the figure's batch (state().x) stays as it is
        s.B = B;
        tg::Generator gen(static_cast<std::uint64_t>(seed));
        State& out = state();
        out.noise_mu.clear();
        out.noise_var.clear();
        for (int d = 0; d < draws; ++d) {
            draw(s.x, B, mean, scale, gen);
            forward(s, nullptr, nullptr);
            out.noise_mu.insert(out.noise_mu.end(), s.mean.begin(), s.mean.end());
            out.noise_var.insert(out.noise_var.end(), s.var.begin(), s.var.end());
        }
        const std::span<const double> mu(out.noise_mu), var(out.noise_var);
        out.hmu = tg::viz::histogram(mu, static_cast<std::size_t>(bins));
        out.hvar = tg::viz::histogram(var, static_cast<std::size_t>(bins));
        out.noise_summary = {tg::viz::mean(mu), tg::viz::variance(mu, 1), tg::viz::mean(var),
                             tg::viz::variance(var, 1)};
        return 0;
    });
}

int bnl_noise_count() {
    return static_cast<int>(state().noise_mu.size());
}
const double* bnl_noise_mu() {
    return state().noise_mu.data();
}
const double* bnl_noise_var() {
    return state().noise_var.data();
}
const double* bnl_noise_mu_edges() {
    return state().hmu.edges.data();
}
const double* bnl_noise_mu_density() {
    return state().hmu.density.data();
}
const double* bnl_noise_var_edges() {
    return state().hvar.edges.data();
}
const double* bnl_noise_var_density() {
    return state().hvar.density.data();
}
const double* bnl_noise_summary() {
    return state().noise_summary.data();
}

int bnl_running(int B, int steps, double momentum, double mean, double scale, double seed) {
    return guarded([&] {
        if (const auto bad = check_batch(B, scale); !bad.empty())
            return fail("bnl_running: " + bad);
        if (steps < 1 || steps > 10000)
            return fail("bnl_running: steps = " + std::to_string(steps) + ", expected 1 ... 10000");
        if (!(momentum >= 0.0 && momentum <= 1.0))
            return fail("bnl_running: momentum " + std::to_string(momentum) +
                        ": expected 0 <= momentum <= 1");
        State s;
        s.B = B;
        tg::Generator gen(static_cast<std::uint64_t>(seed));
        std::vector<float> run_mean(kFeatures, 0.0f), run_var(kFeatures, 1.0f);  // PyTorch's start
        State& out = state();
        out.step_mu.clear();
        out.step_var.clear();
        out.run_mean.clear();
        out.run_var.clear();
        for (int t = 0; t < steps; ++t) {
            draw(s.x, B, mean, scale, gen);
            forward(s, nullptr, nullptr);
            tg::kernels::reference::batch_norm_update_running(
                run_mean.data(), run_var.data(), s.mean.data(), s.var.data(), kFeatures,
                static_cast<std::size_t>(B), momentum);
            out.step_mu.push_back(s.mean[0]);
            out.step_var.push_back(s.var[0] * B / (B - 1.0));
            out.run_mean.push_back(run_mean[0]);
            out.run_var.push_back(run_var[0]);
        }
        return 0;
    });
}

int bnl_steps() {
    return static_cast<int>(state().run_mean.size());
}
const double* bnl_step_mu() {
    return state().step_mu.data();
}
const double* bnl_step_var_unbiased() {
    return state().step_var.data();
}
const float* bnl_running_mean() {
    return state().run_mean.data();
}
const float* bnl_running_var() {
    return state().run_var.data();
}
const char* bnl_error() {
    return state().error.c_str();
}

}  // extern "C"
