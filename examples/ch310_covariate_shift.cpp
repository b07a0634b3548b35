// ch310_covariate_shift — the covariate-shift debate: against the chapter's "internal covariate
// shift" explanation, Santurkar, Tsipras, Ilyas and Madry (2018, "How Does Batch Normalization
// Help Optimization?") found that distribution shift injected after BN barely hurts training,
// and that BN's benefit comes with a smoother loss landscape (smaller loss and gradient changes
// along the training path).
//
// The chapter's LeNet-style CNN (examples/common/experiment.hpp) three ways, from the same
// initial weights on the same batches (SGD, momentum 0.9, constant lr, batch 64): with a
// BatchNorm2d after each convolution; "noisy BN", the same with a random per-channel scale and
// shift applied after each BN, redrawn at every training step (y = s_c x + m_c, log s_c uniform
// in [−log k, log k], m_c uniform in [−a, a]: a time-varying distribution shift for the next
// layer that BN cannot remove; off in eval mode); and without BN. The paper's two measurements:
//   (1) training accuracy over the steps (each window's mean batch accuracy, as training sees
//       it, noise included), with the distribution shift the next layer actually receives: the
//       step-to-step change of each channel's batch mean (in units of its std) and of its log
//       std, where BN (and the noise) sit, after the convolution without BN;
//   (2) along the training path of the BN and no-BN networks, every --probe-every steps: from
//       the current weights x and the training batch's gradient g, the loss L(x − ηg) and the
//       gradient g(x − ηg) on the same batch for each step size η of --etas; the loss landscape
//       (the range of L over η), the gradient predictiveness (||g(x) − g(x − ηg)||) and the
//       effective β-smoothness (the largest ||g(x) − g(x − ηg)|| / ||ηg|| over η). Probing
//       leaves the weights, gradients and running statistics as they were: the training path
//       is the same with and without it.
//
// Output (in --out, default out/ch310): ch310_covariate_shift.png (training accuracy over the
// steps; loss range, gradient change and β-smoothness along the path), ch310_covariate_shift.csv
// (per run: variant 0 = BN, 1 = noisy BN, 2 = no BN; seed, losses, accuracies, shift),
// ch310_covariate_shift_curve.csv (per window: training accuracy and loss),
// ch310_covariate_shift_landscape.csv (per probe and step size), and
// ch310_covariate_shift_summary.csv (per variant, mean and sd over the seeds: what the verdict
// is computed from).
//
//     ./build/release/examples/ch310_covariate_shift               # 3 models x 3 seeds
//     ./build/release/examples/ch310_covariate_shift --lr 0.1 --epochs 6 --noise-shift 1
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>
#include <memory>

#include "common/cli.hpp"
#include "common/experiment.hpp"
#include "tapegrad/metrics.hpp"
#include "tapegrad/ops/elementwise.hpp"
#include "tapegrad/ops/loss.hpp"
#include "tapegrad/optim/sgd.hpp"
#include "tapegrad/random.hpp"
#include "tapegrad/tape.hpp"

namespace fs = std::filesystem;
namespace ex = tg::examples;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// Santurkar et al.'s "noisy BN" layer: in training mode y = s_c · x + m_c with a scale s_c and
/// a shift m_c per channel, drawn afresh at every forward from its own generator; in eval mode
/// y = x.
class ChannelNoise : public tg::nn::Module {
  public:
    ChannelNoise(std::size_t channels, double shift, double scale, std::uint64_t seed)
        : channels_(channels), shift_(shift), log_scale_(std::log(scale)), gen_(seed) {}

    tg::Tensor forward(const tg::Tensor& x) override {
        if (!is_training()) return x;
        if (x.dim() != 4 || x.shape()[1] != channels_)
            throw std::invalid_argument(ex::format("ChannelNoise: expected [N, %zu, H, W], got %s",
                                                   channels_, tg::shape_str(x.shape()).c_str()));
        tg::Array s = tg::new_array({1, channels_, 1, 1}), m = tg::new_array({1, channels_, 1, 1});
        for (std::size_t c = 0; c < channels_; ++c) {
            s.flat(c) = static_cast<tg::real>(std::exp(gen_.uniform(-log_scale_, log_scale_)));
            m.flat(c) = static_cast<tg::real>(gen_.uniform(-shift_, shift_));
        }
        return x * tg::Tensor(std::move(s)) + tg::Tensor(std::move(m));
    }
    std::string type_name() const override { return "ChannelNoise"; }

  private:
    std::size_t channels_;
    double shift_, log_scale_;
    tg::Generator gen_;
};

/// Identity that, while `on`, records the batch mean and std of each channel of its input (the
/// distribution the next layer receives), one row per forward.
class MomentRecorder : public tg::nn::Module {
  public:
    tg::Tensor forward(const tg::Tensor& x) override {
        if (!on) return x;
        if (x.dim() != 4)
            throw std::invalid_argument("MomentRecorder: expected [N, C, H, W], got " +
                                        tg::shape_str(x.shape()));
        const tg::Array& v = x.value();
        const std::size_t N = v.shape()[0], C = v.shape()[1], HW = v.size() / (N * C);
        std::vector<double> mean(C), sd(C);
        for (std::size_t c = 0; c < C; ++c) {
            double sum = 0.0, sq = 0.0;
            for (std::size_t n = 0; n < N; ++n) {
                const tg::real* p = v.data() + (n * C + c) * HW;
                for (std::size_t i = 0; i < HW; ++i) {
                    sum += p[i];
                    sq += static_cast<double>(p[i]) * p[i];
                }
            }
            const double k = static_cast<double>(N * HW);
            mean[c] = sum / k;
            sd[c] = std::sqrt(std::max(0.0, sq / k - mean[c] * mean[c]));
        }
        means.push_back(std::move(mean));
        sds.push_back(std::move(sd));
        return x;
    }
    std::string type_name() const override { return "MomentRecorder"; }

    /// The mean over steps t > 0 and channels of |mean_c(t) − mean_c(t−1)| / std_c(t−1), and
    /// of |log std_c(t) − log std_c(t−1)|.
    std::pair<double, double> shift() const {
        double dm = 0.0, ds = 0.0;
        std::size_t n = 0;
        for (std::size_t t = 1; t < means.size(); ++t)
            for (std::size_t c = 0; c < means[t].size(); ++c) {
                const double s0 = std::max(sds[t - 1][c], 1e-12), s1 = std::max(sds[t][c], 1e-12);
                dm += std::abs(means[t][c] - means[t - 1][c]) / s0;
                ds += std::abs(std::log(s1) - std::log(s0));
                ++n;
            }
        return n ? std::pair{dm / static_cast<double>(n), ds / static_cast<double>(n)}
                 : std::pair{kNaN, kNaN};
    }

    bool on = false;
    std::vector<std::vector<double>> means, sds;
};

struct Variant {
    const char* name;
    ex::Norm norm;
    bool noise;
    bool probe;  // measure the landscape along its path
    const char* colour;
};

// The chapter's CNN with a MomentRecorder after each normalisation (after each convolution
// without BN) and, for noisy BN, a ChannelNoise before it. The convolution and linear weights
// are copied from make_cnn's for `seed`, so they are the same for every variant.
struct Model {
    tg::nn::Sequential net;
    std::vector<std::shared_ptr<MomentRecorder>> recorders;
};

Model make_model(const Variant& v, std::uint64_t seed, double shift, double scale) {
    using namespace tg::nn;
    Model m;
    tg::Generator unused(seed);  // the weights drawn here are replaced by make_cnn's below
    const auto block = [&](Conv2d conv, std::size_t C, std::uint64_t k) {
        m.net.push_back(std::move(conv));
        if (v.norm == ex::Norm::batch) m.net.push_back(BatchNorm2d(C));
        if (v.noise)
            m.net.push_back(
                std::make_shared<ChannelNoise>(C, shift, scale, 1000003 * (seed + 1) + k));
        m.recorders.push_back(std::make_shared<MomentRecorder>());
        m.net.push_back(m.recorders.back());
        m.net.push_back(ReLU());
        m.net.push_back(MaxPool2d(2));
    };
    block(Conv2d(1, 6, 5, {.padding = 2, .generator = &unused}), 6, 0);
    block(Conv2d(6, 16, 5, {.generator = &unused}), 16, 1);
    m.net.push_back(Flatten());
    m.net.push_back(Linear(16 * 5 * 5, 120, {.generator = &unused}));
    m.net.push_back(ReLU());
    m.net.push_back(Linear(120, 84, {.generator = &unused}));
    m.net.push_back(ReLU());
    m.net.push_back(Linear(84, 10, {.generator = &unused}));
    // The inserted layers have no parameters: the parameters come in make_cnn's order.
    const Sequential base = ex::make_cnn({.norm = v.norm}, seed);
    const auto from = base.named_parameters();
    const auto to = m.net.named_parameters();
    if (from.size() != to.size())
        throw std::logic_error(
            ex::format("make_model: %zu parameters, make_cnn has %zu", to.size(), from.size()));
    for (std::size_t i = 0; i < from.size(); ++i) {
        tg::Tensor p = to[i].second;
        if (p.shape() != from[i].second.shape())
            throw std::logic_error("make_model: parameter " + to[i].first +
                                   " differs in shape from make_cnn's " + from[i].first);
        p.value() = from[i].second.value();
    }
    return m;
}

double norm2(const std::vector<tg::Array>& a) {
    double s = 0.0;
    for (const auto& x : a)
        for (const tg::real v : x)
            s += static_cast<double>(v) * v;
    return std::sqrt(s);
}

double diff_norm2(const std::vector<tg::Array>& a, const std::vector<tg::Array>& b) {
    double s = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        auto p = a[i].begin();
        for (auto q = b[i].begin(); q != b[i].end(); ++p, ++q) {
            const double d = static_cast<double>(*p) - static_cast<double>(*q);
            s += d * d;
        }
    }
    return std::sqrt(s);
}

struct ProbeRow {
    double step, eta, loss0, loss, grad_norm, grad_diff;
};

// From the weights x and the batch's gradient g (the parameters' .grad): for each η, the loss
// and gradient at x − ηg on the same batch in training mode. Puts the weights, gradients and
// buffers (running statistics) back as they were.
void probe(tg::nn::Module& model, const tg::Tensor& images, const tg::Labels& labels, double loss0,
           std::size_t step, const std::vector<double>& etas, std::vector<ProbeRow>& rows) {
    std::vector<tg::Tensor> params = model.parameters();
    std::vector<tg::Array> x0, g0, buffers;
    for (const tg::Tensor& p : params) {
        x0.push_back(p.value());
        g0.push_back(p.grad());
    }
    for (const tg::Tensor& b : model.buffers())
        buffers.push_back(b.value());
    const double gnorm = norm2(g0);
    for (const double eta : etas) {
        for (std::size_t i = 0; i < params.size(); ++i) {
            params[i].value() = x0[i] - static_cast<tg::real>(eta) * g0[i];
            params[i].zero_grad();
        }
        tg::Tape tape;
        const tg::Tensor loss = tg::cross_entropy(model(images), labels);
        tape.backward(loss);
        std::vector<tg::Array> g;
        for (const tg::Tensor& p : params)
            g.push_back(p.grad());
        rows.push_back({static_cast<double>(step), eta, loss0, static_cast<double>(loss.item()),
                        gnorm, diff_norm2(g0, g)});
    }
    for (std::size_t i = 0; i < params.size(); ++i) {
        params[i].value() = x0[i];
        params[i].grad() = g0[i];
    }
    std::size_t i = 0;
    for (tg::Tensor b : model.buffers())
        b.value() = buffers[i++];
}

struct Run {
    std::vector<double> window_acc, window_loss;  // per window of --window steps
    std::vector<ProbeRow> probes;
    double first_loss = kNaN, final_loss = kNaN, test_acc = kNaN, mean_shift = kNaN,
           std_shift = kNaN;
    /// The mean of window_acc: the area under the training curve (NaN if diverged).
    double mean_acc() const { return ex::mean_sd(window_acc).mean; }
    bool diverged = false;
};

struct Settings {
    double lr, momentum, shift, scale;
    std::size_t batch_size, steps, window, probe_every;
    std::vector<double> etas;
};

Run train_one(const Variant& v, std::uint64_t seed, const ex::Data& data, const Settings& s,
              ex::SweepProgress& progress) {
    Model m = make_model(v, seed, s.shift, s.scale);
    const tg::data::DataLoader loader = ex::make_loader(data, data.train, s.batch_size, true, seed);
    tg::optim::SGD opt(m.net.parameters(), {.lr = s.lr, .momentum = s.momentum});
    m.net.train();
    Run r;
    std::vector<double> losses;
    double acc_sum = 0.0, loss_sum = 0.0;
    std::size_t in_window = 0, step = 0;
    for (std::size_t epoch = 0; step < s.steps && !r.diverged; ++epoch) {
        for (const auto& [images, labels] : loader.epoch(epoch)) {
            if (step == s.steps) break;
            for (auto& rec : m.recorders)
                rec->on = true;
            tg::Tape tape;
            const tg::Tensor logits = m.net(images);
            for (auto& rec : m.recorders)
                rec->on = false;
            const tg::Tensor loss = tg::cross_entropy(logits, labels);
            const double l = loss.item();
            ++step;
            progress.step(step, s.steps, l);
            if (!std::isfinite(l)) {
                r.diverged = true;
                break;
            }
            losses.push_back(l);
            acc_sum += tg::accuracy(logits, labels);
            loss_sum += l;
            opt.zero_grad();
            tape.backward(loss);
            if (v.probe && s.probe_every > 0 && step % s.probe_every == 0)
                probe(m.net, images, labels, l, step, s.etas, r.probes);
            opt.step();
            if (++in_window == s.window || step == s.steps) {
                r.window_acc.push_back(acc_sum / static_cast<double>(in_window));
                r.window_loss.push_back(loss_sum / static_cast<double>(in_window));
                acc_sum = loss_sum = 0.0;
                in_window = 0;
            }
        }
    }
    const std::size_t windows = (s.steps + s.window - 1) / s.window;
    r.window_acc.resize(windows, kNaN);  // a diverged run stops early
    r.window_loss.resize(windows, kNaN);
    if (!losses.empty()) r.first_loss = losses.front();
    if (!r.diverged) {
        const std::size_t k = std::max<std::size_t>(1, losses.size() / 10);
        double sum = 0.0;
        for (std::size_t i = losses.size() - k; i < losses.size(); ++i)
            sum += losses[i];
        r.final_loss = sum / static_cast<double>(k);
        r.test_acc = ex::evaluate(m.net, data, data.test).accuracy;
    }
    double dm = 0.0, ds = 0.0;
    for (const auto& rec : m.recorders) {
        const auto [a, b] = rec->shift();
        dm += a / static_cast<double>(m.recorders.size());
        ds += b / static_cast<double>(m.recorders.size());
    }
    r.mean_shift = dm;
    r.std_shift = ds;
    return r;
}

// Per probe step: the loss range (max − min of L over η), the largest gradient change and the
// effective β-smoothness (largest ||Δg|| / (η ||g||) over η > 0).
struct ProbeSummary {
    std::vector<double> step, loss_min, loss_max, grad_diff_min, grad_diff_max, beta;
};

ProbeSummary summarise_probes(const std::vector<ProbeRow>& rows) {
    ProbeSummary p;
    for (std::size_t i = 0; i < rows.size();) {
        std::size_t j = i;
        double lmin = rows[i].loss, lmax = rows[i].loss, gmin = rows[i].grad_diff,
               gmax = rows[i].grad_diff, beta = 0.0;
        for (; j < rows.size() && rows[j].step == rows[i].step; ++j) {
            lmin = std::min(lmin, rows[j].loss);
            lmax = std::max(lmax, rows[j].loss);
            gmin = std::min(gmin, rows[j].grad_diff);
            gmax = std::max(gmax, rows[j].grad_diff);
            if (rows[j].eta > 0)
                beta = std::max(beta, rows[j].grad_diff / (rows[j].eta * rows[j].grad_norm));
        }
        p.step.push_back(rows[i].step);
        p.loss_min.push_back(lmin);
        p.loss_max.push_back(lmax);
        p.grad_diff_min.push_back(gmin);
        p.grad_diff_max.push_back(gmax);
        p.beta.push_back(beta);
        i = j;
    }
    return p;
}

double mean_of(const std::vector<double>& v) {
    return ex::mean_sd(v).mean;
}

struct Flags {
    std::size_t epochs = 3, window = 25, probe_every = 25;
    double noise_shift = 0.5, noise_scale = 1.5;
    std::vector<double> etas = {0.025, 0.05, 0.1, 0.2, 0.4};
    ex::TrainOptions sgd{.lr = 0.05};
};

void add_flags(ex::Cli& cli, Flags& f) {
    cli.option("--epochs", f.epochs, "passes over the training set", ex::between(1, 1000));
    cli.option("--window", f.window, "training accuracy averaged over windows of this many steps",
               ex::between(1, 100000));
    cli.option("--probe-every", f.probe_every,
               "measure the landscape every this many steps (0: never)", ex::between(0, 100000));
    cli.list("--etas", f.etas, "step sizes along the gradient for the landscape probes",
             ex::between(0, 100));
    cli.option("--noise-shift", f.noise_shift,
               "noisy BN: shift m_c uniform in [-a, a]; a =", ex::between(0, 100));
    cli.option("--noise-scale", f.noise_scale,
               "noisy BN: scale s_c log-uniform in [1/k, k]; k =", ex::between(1, 100));
    ex::add_sgd_flags(cli, f.sgd);
    cli.quick_help(
        "a few-second run for the tests: 500 training and 500 test images, 2 epochs, "
        "windows of 4 steps, a probe every 4 steps at 3 step sizes");
    cli.outputs(
        "ch310_covariate_shift.png (training accuracy; loss range, gradient change and "
        "beta-smoothness along the path), ch310_covariate_shift.csv (per run: variant 0 = BN, "
        "1 = noisy BN, 2 = no BN; seed, losses, accuracies, shift), "
        "ch310_covariate_shift_curve.csv (per window), ch310_covariate_shift_landscape.csv "
        "(per probe and step size), ch310_covariate_shift_summary.csv (mean and sd over "
        "seeds per variant).");
}

// The run's settings once --quick and the data are known; prints them.
Settings settle(Flags f, bool quick, const ex::Data& data, std::size_t n_seeds) {
    if (quick) {
        f.epochs = std::min<std::size_t>(f.epochs, 2);
        f.window = 4;
        if (f.probe_every > 0) f.probe_every = 4;
        if (f.etas.size() > 3) f.etas = {0.05, 0.1, 0.2};
    }
    std::sort(f.etas.begin(), f.etas.end());
    f.etas.erase(std::unique(f.etas.begin(), f.etas.end()), f.etas.end());
    f.sgd.batch_size = ex::cap_batch_size("ch310_covariate_shift", "--batch-size", f.sgd.batch_size,
                                          data.train->size(), "training images");
    const std::size_t per_epoch = (data.train->size() + f.sgd.batch_size - 1) / f.sgd.batch_size;
    const Settings s{.lr = f.sgd.lr,
                     .momentum = f.sgd.momentum,
                     .shift = f.noise_shift,
                     .scale = f.noise_scale,
                     .batch_size = f.sgd.batch_size,
                     .steps = f.epochs * per_epoch,
                     .window = std::min(f.window, f.epochs * per_epoch),
                     .probe_every = f.probe_every,
                     .etas = f.etas};
    std::printf(
        "%s: %zu training, %zu test images\n%zu steps of %zu (SGD lr %g, momentum %g, "
        "constant)\nnoisy BN: shift in [-%g, %g], scale in [1/%g, %g], per channel and "
        "step\n3 models x %s; %s\n\n",
        data.name.c_str(), data.train->size(), data.test->size(), s.steps, s.batch_size, s.lr,
        s.momentum, s.shift, s.shift, s.scale, s.scale, ex::count_of(n_seeds, "seed").c_str(),
        s.probe_every == 0 ? "landscape not probed (--probe-every 0)"
                           : ex::format("landscape probed every %zu steps at %s", s.probe_every,
                                        ex::count_of(s.etas.size(), "step size").c_str())
                                 .c_str());
    return s;
}

const std::vector<Variant> kVariants = {{"BN", ex::Norm::batch, false, true, ex::kWithBn},
                                        {"noisy BN", ex::Norm::batch, true, false, ex::kFourth},
                                        {"no BN", ex::Norm::none, false, true, ex::kWithoutBn}};

// runs[variant][seed].
std::vector<std::vector<Run>> train_all(const ex::Data& data, const Settings& s,
                                        const std::vector<std::uint64_t>& seeds) {
    std::vector<std::vector<Run>> runs(kVariants.size());
    ex::SweepProgress progress(kVariants.size() * seeds.size());
    std::size_t index = 0;
    for (std::size_t v = 0; v < kVariants.size(); ++v)
        for (const std::uint64_t seed : seeds) {
            progress.start(index++, ex::format("%s seed %llu", kVariants[v].name,
                                               static_cast<unsigned long long>(seed)));
            runs[v].push_back(train_one(kVariants[v], seed, data, s, progress));
            const Run& r = runs[v].back();
            progress.finish(ex::format("test %.1f%%", 100.0 * r.test_acc));
        }
    progress.done();
    return runs;
}

// The steps at which each window of training accuracy ends.
std::vector<double> window_steps(const Settings& s, std::size_t windows) {
    std::vector<double> x;
    for (std::size_t k = 0; k < windows; ++k)
        x.push_back(static_cast<double>(std::min((k + 1) * s.window, s.steps)));
    return x;
}

// Per run, per window, per probe and step size.
void write_runs(const fs::path& out, const std::vector<std::vector<Run>>& runs,
                const std::vector<std::uint64_t>& seeds, const std::vector<double>& window_x) {
    std::vector<double> c_v, c_seed, c_first, c_final, c_div, c_train, c_mean_train, c_test, c_dm,
        c_ds;
    std::vector<double> w_v, w_seed, w_step, w_acc, w_loss;
    std::vector<double> l_v, l_seed, l_step, l_eta, l_loss0, l_loss, l_gnorm, l_gdiff;
    for (std::size_t v = 0; v < runs.size(); ++v)
        for (std::size_t i = 0; i < seeds.size(); ++i) {
            const Run& r = runs[v][i];
            const double seed = static_cast<double>(seeds[i]);
            c_v.push_back(static_cast<double>(v));
            c_seed.push_back(seed);
            c_first.push_back(r.first_loss);
            c_final.push_back(r.final_loss);
            c_div.push_back(r.diverged);
            c_train.push_back(r.window_acc.back());
            c_mean_train.push_back(r.mean_acc());
            c_test.push_back(r.test_acc);
            c_dm.push_back(r.mean_shift);
            c_ds.push_back(r.std_shift);
            for (std::size_t k = 0; k < window_x.size(); ++k) {
                w_v.push_back(static_cast<double>(v));
                w_seed.push_back(seed);
                w_step.push_back(window_x[k]);
                w_acc.push_back(r.window_acc[k]);
                w_loss.push_back(r.window_loss[k]);
            }
            for (const ProbeRow& p : r.probes) {
                l_v.push_back(static_cast<double>(v));
                l_seed.push_back(seed);
                l_step.push_back(p.step);
                l_eta.push_back(p.eta);
                l_loss0.push_back(p.loss0);
                l_loss.push_back(p.loss);
                l_gnorm.push_back(p.grad_norm);
                l_gdiff.push_back(p.grad_diff);
            }
        }
    tg::viz::write_csv(out / "ch310_covariate_shift.csv", {{"variant", c_v},
                                                           {"seed", c_seed},
                                                           {"first_loss", c_first},
                                                           {"final_loss", c_final},
                                                           {"diverged", c_div},
                                                           {"train_acc", c_train},
                                                           {"train_acc_over_steps", c_mean_train},
                                                           {"test_acc", c_test},
                                                           {"mean_shift", c_dm},
                                                           {"std_shift", c_ds}});
    tg::viz::write_csv(out / "ch310_covariate_shift_curve.csv", {{"variant", w_v},
                                                                 {"seed", w_seed},
                                                                 {"step", w_step},
                                                                 {"train_acc", w_acc},
                                                                 {"train_loss", w_loss}});
    tg::viz::write_csv(out / "ch310_covariate_shift_landscape.csv", {{"variant", l_v},
                                                                     {"seed", l_seed},
                                                                     {"step", l_step},
                                                                     {"eta", l_eta},
                                                                     {"loss0", l_loss0},
                                                                     {"loss", l_loss},
                                                                     {"grad_norm", l_gnorm},
                                                                     {"grad_diff", l_gdiff}});
}

// Per run: the means over its probes; per variant: their mean and sd over the seeds, written
// to the summary and printed. Returns probe_sum[variant][seed].
std::vector<std::vector<ProbeSummary>> summarise(const fs::path& out, const Settings& s,
                                                 const std::vector<std::vector<Run>>& runs,
                                                 std::size_t n_seeds) {
    std::vector<std::vector<ProbeSummary>> probe_sum(kVariants.size());
    std::vector<double> s_v, s_runs, s_train_m, s_train_sd, s_over_m, s_over_sd, s_test_m,
        s_test_sd, s_dm_m, s_dm_sd, s_ds_m, s_ds_sd, s_lr_m, s_lr_sd, s_gd_m, s_gd_sd, s_beta_m,
        s_beta_sd;
    ex::Table table({"model", "train %", "over steps", "test %", "mean shift", "log-std shift"});
    ex::Table landscape({"model", "loss range", "max ||Δg||", "β-smoothness"});
    for (std::size_t v = 0; v < kVariants.size(); ++v) {
        std::vector<double> tr, over, te, dm, ds, lrange, gd, beta;
        for (const Run& r : runs[v]) {
            tr.push_back(r.window_acc.back());
            over.push_back(r.mean_acc());
            te.push_back(r.test_acc);
            dm.push_back(r.mean_shift);
            ds.push_back(r.std_shift);
            probe_sum[v].push_back(summarise_probes(r.probes));
            const ProbeSummary& p = probe_sum[v].back();
            std::vector<double> range;
            for (std::size_t k = 0; k < p.step.size(); ++k)
                range.push_back(p.loss_max[k] - p.loss_min[k]);
            lrange.push_back(range.empty() ? kNaN : mean_of(range));
            gd.push_back(p.step.empty() ? kNaN : mean_of(p.grad_diff_max));
            beta.push_back(p.step.empty() ? kNaN : mean_of(p.beta));
        }
        const auto put = [](std::vector<double>& m, std::vector<double>& sd,
                            const std::vector<double>& x) {
            const ex::MeanSd ms = ex::mean_sd(x);
            m.push_back(ms.mean);
            sd.push_back(ms.sd);
        };
        s_v.push_back(static_cast<double>(v));
        s_runs.push_back(static_cast<double>(runs[v].size()));
        put(s_train_m, s_train_sd, tr);
        put(s_over_m, s_over_sd, over);
        put(s_test_m, s_test_sd, te);
        put(s_dm_m, s_dm_sd, dm);
        put(s_ds_m, s_ds_sd, ds);
        put(s_lr_m, s_lr_sd, lrange);
        put(s_gd_m, s_gd_sd, gd);
        put(s_beta_m, s_beta_sd, beta);
        table.add({kVariants[v].name, ex::format_mean_sd(ex::mean_sd(tr), 2, true),
                   ex::format_mean_sd(ex::mean_sd(over), 2, true),
                   ex::format_mean_sd(ex::mean_sd(te), 2, true),
                   ex::format_mean_sd(ex::mean_sd(dm), 3), ex::format_mean_sd(ex::mean_sd(ds), 3)});
        if (kVariants[v].probe && s.probe_every > 0)
            landscape.add({kVariants[v].name, ex::format_mean_sd(ex::mean_sd(lrange), 3),
                           ex::format_mean_sd(ex::mean_sd(gd), 3),
                           ex::format_mean_sd(ex::mean_sd(beta), 3)});
    }
    tg::viz::write_csv(out / "ch310_covariate_shift_summary.csv",
                       {{"variant", s_v},
                        {"runs", s_runs},
                        {"train_acc_mean", s_train_m},
                        {"train_acc_sd", s_train_sd},
                        {"train_acc_over_steps_mean", s_over_m},
                        {"train_acc_over_steps_sd", s_over_sd},
                        {"test_acc_mean", s_test_m},
                        {"test_acc_sd", s_test_sd},
                        {"mean_shift_mean", s_dm_m},
                        {"mean_shift_sd", s_dm_sd},
                        {"std_shift_mean", s_ds_m},
                        {"std_shift_sd", s_ds_sd},
                        {"loss_range_mean", s_lr_m},
                        {"loss_range_sd", s_lr_sd},
                        {"grad_diff_mean", s_gd_m},
                        {"grad_diff_sd", s_gd_sd},
                        {"beta_mean", s_beta_m},
                        {"beta_sd", s_beta_sd}});

    std::printf(
        "\n(1) Training accuracy (mean batch accuracy over the last %zu steps, train mode,\n"
        "noise included; \"over steps\": the mean of every window's, the area under the\n"
        "training curve), test accuracy (eval mode), and the shift the next layer sees:\n"
        "mean over steps and channels of |change of the batch mean| / std and of\n"
        "|change of log std| from one step to the next; mean ± sd over %s\n\n",
        s.window, ex::count_of(n_seeds, "seed").c_str());
    table.print();
    if (s.probe_every > 0) {
        std::printf(
            "\n(2) Along the training path, every %zu steps, stepping x - eta g for eta in\n"
            "[%g, %g] on the step's batch: the range of the loss over eta, the largest\n"
            "||g(x) - g(x - eta g)||, and the effective beta-smoothness (largest\n"
            "||delta g|| / ||eta g||); each the mean over the probes, mean ± sd over %s\n\n",
            s.probe_every, s.etas.front(), s.etas.back(), ex::count_of(n_seeds, "seed").c_str());
        landscape.print();
    }
    return probe_sum;
}

// Panels (2a)-(2c) for variant v: the mean over the seeds at each probe (a seed that diverged
// has fewer probes: only the probes every seed reached are drawn).
void draw_probes(tg::viz::Panel& loss_panel, tg::viz::Panel& grad_panel, tg::viz::Panel& beta_panel,
                 const Variant& variant, const std::vector<ProbeSummary>& sums) {
    if (!variant.probe || sums.empty() || sums[0].step.empty()) return;
    std::size_t n = sums[0].step.size();
    for (const auto& p : sums)
        n = std::min(n, p.step.size());
    if (n == 0) return;
    const std::vector<double> x(sums[0].step.begin(), sums[0].step.begin() + static_cast<long>(n));
    const auto per_seed = [&](auto field) {
        std::vector<std::vector<double>> out_;
        for (const auto& p : sums)
            out_.emplace_back((p.*field).begin(), (p.*field).begin() + static_cast<long>(n));
        return out_;
    };
    const auto mean_line = [&](tg::viz::Panel& panel, auto field, bool dashed,
                               const std::string& label) {
        const auto ps = per_seed(field);
        std::vector<double> m(n);
        for (std::size_t k = 0; k < n; ++k) {
            std::vector<double> at;
            for (const auto& sv : ps)
                at.push_back(sv[k]);
            m[k] = mean_of(at);
        }
        panel.line(x, m, label, variant.colour, dashed);
    };
    mean_line(loss_panel, &ProbeSummary::loss_max, false,
              std::string(variant.name) + ": max over η");
    mean_line(loss_panel, &ProbeSummary::loss_min, true, std::string(variant.name) + ": min");
    mean_line(grad_panel, &ProbeSummary::grad_diff_max, false,
              std::string(variant.name) + ": max over η");
    mean_line(grad_panel, &ProbeSummary::grad_diff_min, true, std::string(variant.name) + ": min");
    ex::add_spread(beta_panel, x, per_seed(&ProbeSummary::beta), variant.name, variant.colour);
}

// The figure: training accuracy; loss range; gradient change; β-smoothness.
void draw_figure(const fs::path& out, const std::string& title,
                 const std::vector<std::vector<Run>>& runs, const std::vector<double>& window_x,
                 const std::vector<std::vector<ProbeSummary>>& probe_sum) {
    tg::viz::Figure fig(2, 2, 1400, 1000);
    fig.suptitle = title;
    auto& acc = ex::titled_panel(fig, 0, 0, "(1) Training accuracy, shift injected after BN",
                                 "step", "training accuracy (%, train mode)");
    for (std::size_t v = 0; v < kVariants.size(); ++v) {
        std::vector<std::vector<double>> per_seed;
        for (const Run& r : runs[v]) {
            per_seed.push_back(r.window_acc);
            for (double& a : per_seed.back())
                a *= 100.0;
        }
        ex::add_spread(acc, window_x, per_seed, kVariants[v].name, kVariants[v].colour);
    }
    acc.legend = "bottom right";
    acc.legend_room = true;  // its own room below the curves
    auto& loss_panel =
        ex::titled_panel(fig, 0, 1, "(2a) Loss landscape: L(x - ηg) over the step sizes η", "step",
                         "loss, mean of the seeds");
    auto& grad_panel =
        ex::titled_panel(fig, 1, 0, "(2b) Gradient predictiveness: ||g(x) - g(x - ηg)||", "step",
                         "l2 change, mean of the seeds");
    auto& beta_panel = ex::titled_panel(fig, 1, 1,
                                        "(2c) Effective β-smoothness: max over η of "
                                        "||Δg|| / ||ηg||",
                                        "step", "β-smoothness");
    loss_panel.logy = grad_panel.logy = beta_panel.logy = true;
    for (std::size_t v = 0; v < kVariants.size(); ++v)
        draw_probes(loss_panel, grad_panel, beta_panel, kVariants[v], probe_sum[v]);
    ex::seeds_note_in_title(fig);  // legends short enough for their panels
    ex::save_figure(fig, out / "ch310_covariate_shift.png");
}

}  // namespace

int main(int argc, char** argv) {
    ex::Cli cli("ch310_covariate_shift",
                "The covariate-shift debate (Santurkar et al. 2018): BN, BN with random "
                "per-channel shift and scale injected after it at every step (\"noisy BN\"), "
                "and no BN; training accuracy and the shift the next layer sees; and along "
                "the path, the loss and gradient when stepping along the gradient.");
    ex::CommonFlags& common = cli.add_common({.seeds = 3});
    Flags flags;
    add_flags(cli, flags);
    if (const auto exit_code = cli.parse(argc, argv)) return *exit_code;

    try {
        const fs::path out = cli.prepare();
        const ex::Data data = ex::load_data(common, 500, 500);
        const auto seeds = common.seed_list();
        const Settings s = settle(flags, common.quick, data, seeds.size());
        const auto runs = train_all(data, s, seeds);
        const std::vector<double> window_x = window_steps(s, runs[0][0].window_acc.size());
        write_runs(out, runs, seeds, window_x);
        const auto probe_sum = summarise(out, s, runs, seeds.size());
        draw_figure(out,
                    ex::format("The covariate-shift debate (Santurkar et al. 2018): %s, SGD lr "
                               "%g, momentum %g, %zu seeds",
                               data.name.c_str(), s.lr, s.momentum, seeds.size()),
                    runs, window_x, probe_sum);
    } catch (const std::exception& e) {
        std::cerr << "ch310_covariate_shift: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
