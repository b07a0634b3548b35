// Checks and diagnoses of sgd_step (src/optim/sgd_step.cpp): three steps of each
// configuration, the momentum buffer carried from step to step by the kernel itself.
#include <cstddef>
#include <string>
#include <vector>

#include "exercises.hpp"
#include "grader.hpp"

namespace tg::grader {
namespace {

struct Config {
    std::string name;
    double lr = 0.1, momentum = 0, dampening = 0, weight_decay = 0;
    bool nesterov = false;
    std::vector<std::vector<double>> params;              // the parameters before step 1
    std::vector<std::vector<std::vector<double>>> grads;  // [step][parameter]
    std::vector<Outputs> golden;                          // per step: PyTorch's "param"
};

/// The PyTorch goldens of tests/reference/nn.txt (gen_nn.py's optimiser cases): two
/// parameters, [3, 4] and [5], three steps.
Config golden_config(const std::string& key, double momentum, double dampening, double weight_decay,
                     bool nesterov) {
    const auto& g = goldens("nn");
    Config c;
    c.name = "PyTorch " + key;
    c.momentum = momentum;
    c.dampening = dampening;
    c.weight_decay = weight_decay;
    c.nesterov = nesterov;
    c.params = {g.at("optim/p0").values, g.at("optim/p1").values};
    for (int s = 1; s <= 3; ++s) {
        const std::string step = std::to_string(s);
        c.grads.push_back(
            {g.at("optim/grad" + step + "_p0").values, g.at("optim/grad" + step + "_p1").values});
        std::vector<double> param = g.at(key + "/step" + step + "_p0").values;
        const std::vector<double>& p1 = g.at(key + "/step" + step + "_p1").values;
        param.insert(param.end(), p1.begin(), p1.end());
        c.golden.push_back({{"param", param}});
    }
    return c;
}

Config random_config(const std::string& name, std::size_t n, double lr, double momentum,
                     double dampening, double weight_decay, bool nesterov) {
    Config c;
    c.name = name + " (n = " + std::to_string(n) + ")";
    c.lr = lr;
    c.momentum = momentum;
    c.dampening = dampening;
    c.weight_decay = weight_decay;
    c.nesterov = nesterov;
    c.params = {normal(n)};
    for (int s = 0; s < 3; ++s) {
        c.grads.push_back({normal(n)});
        c.golden.push_back({});
    }
    return c;
}

const std::vector<Config>& configs() {
    static const std::vector<Config> all{
        golden_config("sgd_plain", 0, 0, 0, false),
        golden_config("sgd_momentum", 0.9, 0, 0, false),
        golden_config("sgd_dampening", 0.9, 0.3, 0, false),
        golden_config("sgd_nesterov", 0.9, 0, 0, true),
        golden_config("sgd_weight_decay", 0.9, 0, 0.1, false),
        random_config("random, all options but Nesterov", 17, 0.05, 0.5, 0.2, 0.01, false),
        random_config("random, Nesterov and weight decay", 9, 0.2, 0.7, 0, 0.05, true),
        random_config("random, one element", 1, 0.3, 0.8, 0.5, 0, false),
    };
    return all;
}

/// Three steps of `step` (the student's or the reference kernel, or a mistake's model) on a
/// configuration: per step, every parameter's values and momentum buffer, concatenated.
template <class Step>
std::vector<Outputs> run_config(Step step, const Config& c) {
    std::vector<std::vector<double>> params = c.params, buffers;
    for (const auto& p : params)
        buffers.emplace_back(p.size(), 98765.0);  // junk: the first step must not read it
    std::vector<Outputs> out;
    for (std::size_t s = 0; s < c.grads.size(); ++s) {
        Outputs o{{"param", {}}};
        for (std::size_t i = 0; i < params.size(); ++i) {
            step(params[i].data(), c.momentum != 0 ? buffers[i].data() : nullptr,
                 c.grads[s][i].data(), params[i].size(), c.lr, c.momentum, c.dampening,
                 c.weight_decay, c.nesterov, s == 0);
            o["param"].insert(o["param"].end(), params[i].begin(), params[i].end());
            if (c.momentum != 0)
                o["momentum_buffer"].insert(o["momentum_buffer"].end(), buffers[i].begin(),
                                            buffers[i].end());
        }
        out.push_back(o);
    }
    return out;
}

template <class Step>
std::vector<Outputs> run_all(Step step) {
    std::vector<Outputs> out;
    for (const Config& c : configs())
        for (Outputs& o : run_config(step, c))
            out.push_back(std::move(o));
    return out;
}

/// sgd_step with one mistake made on purpose.
struct Model {
    bool first_dampened = false, dampening_inverted = false, nesterov_ignored = false,
         decay_after_momentum = false, lr_in_buffer = false, buffer_restarted = false;
    void operator()(double* p, double* b, const double* g, std::size_t n, double lr, double mu,
                    double dampening, double wd, bool nesterov, bool first) const {
        const double keep = dampening_inverted ? dampening : 1 - dampening;
        for (std::size_t k = 0; k < n; ++k) {
            double d = g[k] + (decay_after_momentum ? 0.0 : wd * p[k]);
            if (mu != 0) {
                const double scale = lr_in_buffer ? lr : 1.0;
                if (first || buffer_restarted)
                    b[k] = (first_dampened ? keep : 1.0) * scale * d;
                else
                    b[k] = mu * b[k] + keep * scale * d;
                if (lr_in_buffer) {
                    p[k] -= nesterov ? lr * d + mu * b[k] : b[k];
                    continue;
                }
                d = nesterov && !nesterov_ignored ? d + mu * b[k] : b[k];
            }
            if (decay_after_momentum) d += wd * p[k];
            p[k] -= lr * d;
        }
    }
};

Mistake model(std::string id, std::string message, Model m) {
    return {std::move(id), std::move(message),
            [m](const std::vector<Outputs>& student) { return same(student, run_all(m)); }};
}

std::vector<Mistake> mistakes() {
    Model first, inverted, nesterov, after, lr_in, restarted;
    first.first_dampened = true;
    inverted.dampening_inverted = true;
    nesterov.nesterov_ignored = true;
    after.decay_after_momentum = true;
    lr_in.lr_in_buffer = true;
    restarted.buffer_restarted = true;
    return {
        model("first_step_dampened",
              "the first step dampened the buffer, buf = (1 − dampening)·d: PyTorch starts "
              "the buffer at d itself (torch.clone(d)), and dampening applies only from the "
              "second step",
              first),
        model("dampening_inverted",
              "dampening is the share of d that is left out: buf = momentum·buf + "
              "(1 − dampening)·d, not + dampening·d",
              inverted),
        model("nesterov_ignored",
              "with nesterov the step is d + momentum·buf (the gradient looked at one step "
              "ahead), not buf",
              nesterov),
        model("weight_decay_after_momentum",
              "weight decay was added after the momentum: PyTorch adds weight_decay·param to "
              "the gradient first, d = grad + weight_decay·param, and that d goes into the "
              "buffer",
              after),
        model("lr_in_buffer",
              "the learning rate is inside the buffer (buf = momentum·buf + lr·d, param −= "
              "buf, the Sutskever form): PyTorch's buffer holds the gradients' running sum "
              "and lr multiplies the step, param −= lr·buf; the two part ways in the buffer, "
              "and whenever lr changes",
              lr_in),
        model("buffer_restarted",
              "the momentum buffer starts afresh every step (buf = d): it must carry "
              "momentum·buf from the previous step; only first_step starts it at d",
              restarted),
    };
}

std::size_t failing = 0;

Result check() {
    const std::vector<Outputs> student = run_all(&exercises::sgd_step);
    const std::vector<Outputs> reference = run_all(&kernels::reference::sgd_step);
    std::vector<Outputs> pytorch;
    std::vector<std::string> names;
    for (const Config& c : configs())
        for (std::size_t s = 0; s < c.golden.size(); ++s) {
            pytorch.push_back(c.golden[s]);
            names.push_back(c.name + ", step " + std::to_string(s + 1));
        }
    return verdict("sgd_step", names, student, reference, pytorch, mistakes(), nullptr, &failing);
}

const Register exercise("sgd_step", check, [] {
    // The configuration of the first failing step, run again from its start.
    run_config(&exercises::sgd_step, configs()[failing / 3]);
});

}  // namespace
}  // namespace tg::grader
