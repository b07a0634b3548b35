#include "experiment.hpp"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <iostream>
#include <limits>
#include <numbers>
#include <stdexcept>

#include "tapegrad/metrics.hpp"
#include "tapegrad/ops/loss.hpp"
#include "tapegrad/optim/sgd.hpp"
#include "tapegrad/random.hpp"
#include "tapegrad/tape.hpp"

namespace tg::examples {

namespace fs = std::filesystem;
using tg::data::Dataset;

// ---------------------------------------------------------------------------------------------
// Data

Data load_data(const CommonFlags& flags, std::size_t quick_train, std::size_t quick_test) {
    Dataset train = tg::data::load_dataset(flags.dataset, tg::data::Split::train);
    Dataset test = tg::data::load_dataset(flags.dataset, tg::data::Split::test);
    Data d;
    d.name = train.name;  // "mnist (bundled) train" → "mnist (bundled)"
    if (d.name.ends_with(" train")) d.name.resize(d.name.size() - 6);
    if (flags.quick) {
        train = train.slice(0, std::min(train.size(), quick_train));
        test = test.slice(0, std::min(test.size(), quick_test));
    }
    std::tie(d.mean, d.std) = tg::data::pixel_mean_std(train);
    d.train = std::make_shared<const Dataset>(std::move(train));
    d.test = std::make_shared<const Dataset>(std::move(test));
    return d;
}

Dataset filter_labels(const Dataset& data, const std::function<bool(int)>& keep,
                      const std::string& name_suffix) {
    Dataset out;
    out.rows = data.rows;
    out.cols = data.cols;
    out.classes = data.classes;
    out.name = data.name + " " + name_suffix;
    for (std::size_t i = 0; i < data.size(); ++i) {
        if (!keep(data.label(i))) continue;
        out.images.insert(out.images.end(), data.image(i), data.image(i) + data.image_size());
        out.labels.push_back(data.labels[i]);
    }
    return out;
}

tg::data::DataLoader make_loader(const Data& data, std::shared_ptr<const Dataset> set,
                                 std::size_t batch_size, bool shuffle, std::uint64_t seed) {
    return tg::data::DataLoader(std::move(set), {.batch_size = batch_size,
                                                 .shuffle = shuffle,
                                                 .seed = seed,
                                                 .mean = data.mean,
                                                 .std = data.std,
                                                 .prefetch = true});
}

// ---------------------------------------------------------------------------------------------
// The model

std::string norm_name(const CnnOptions& o) {
    std::string n;
    switch (o.norm) {
        case Norm::none:
            return "no norm";
        case Norm::batch:
            n = "BN";
            break;
        case Norm::group:
            n = o.groups == 0 ? "GN(C)" : "GN(" + std::to_string(o.groups) + ")";
            break;
        case Norm::layer:
            n = "LN";
            break;
    }
    return o.norm_after_relu ? "Conv→ReLU→" + n : n;
}

namespace {

// The normalisation layer after a convolution with C output channels of H x W.
void push_norm(tg::nn::Sequential& model, const CnnOptions& o, std::size_t C, std::size_t H,
               std::size_t W) {
    using namespace tg::nn;
    switch (o.norm) {
        case Norm::none:
            break;
        case Norm::batch:
            model.push_back(BatchNorm2d(C));
            break;
        case Norm::group:
            model.push_back(GroupNorm(o.groups == 0 ? C : o.groups, C));
            break;
        case Norm::layer:
            model.push_back(LayerNorm({C, H, W}));
            break;
    }
}

// Conv → Norm → ReLU, or Conv → ReLU → Norm.
void push_conv_block(tg::nn::Sequential& model, const CnnOptions& o, tg::nn::Conv2d conv,
                     std::size_t C, std::size_t H, std::size_t W) {
    model.push_back(std::move(conv));
    if (!o.norm_after_relu) push_norm(model, o, C, H, W);
    model.push_back(tg::nn::ReLU());
    if (o.norm_after_relu) push_norm(model, o, C, H, W);
    model.push_back(tg::nn::MaxPool2d(2));
}

// Weights (not biases, not γ/β) scaled: W ← s·W, so each layer's output starts s times larger
// (ch308: with s > 1 activations grow layer by layer, with s < 1 they shrink).
void scale_weights(tg::nn::Sequential& model, double s) {
    if (s == 1.0) return;
    for (auto& [name, p] : model.named_parameters())
        if (name.ends_with(".weight") && p.dim() >= 2) p.value() *= static_cast<tg::real>(s);
}

}  // namespace

tg::nn::Sequential make_cnn(const CnnOptions& o, std::uint64_t seed) {
    using namespace tg::nn;
    tg::Generator gen(seed);
    Sequential model;
    push_conv_block(model, o, Conv2d(1, 6, 5, {.padding = 2, .generator = &gen}), 6, 28, 28);
    push_conv_block(model, o, Conv2d(6, 16, 5, {.generator = &gen}), 16, 10, 10);
    if (o.small_map) {  // [N, 16, 5, 5] → [N, 32, 2, 2], no pool
        model.push_back(Conv2d(16, 32, 4, {.generator = &gen}));
        if (!o.norm_after_relu) push_norm(model, o, 32, 2, 2);
        model.push_back(ReLU());
        if (o.norm_after_relu) push_norm(model, o, 32, 2, 2);
    }
    model.push_back(Flatten());
    std::uint64_t dropouts = 0;
    const auto hidden = [&](std::size_t in, std::size_t out) {
        model.push_back(Linear(in, out, {.generator = &gen}));
        model.push_back(ReLU());
        if (o.dropout > 0) model.push_back(Dropout(o.dropout, {.seed = seed * 4 + dropouts++}));
    };
    hidden(o.small_map ? 32 * 2 * 2 : 16 * 5 * 5, 120);
    hidden(120, 84);
    model.push_back(Linear(84, 10, {.generator = &gen}));
    scale_weights(model, o.init_scale);
    return model;
}

tg::nn::Sequential make_mlp(const MlpOptions& o, std::uint64_t seed) {
    using namespace tg::nn;
    if (o.norm == Norm::group)
        throw std::invalid_argument(
            "make_mlp: GroupNorm is not offered for the MLP (its [N, F] features have no "
            "channels to group); expected Norm::batch, Norm::layer or Norm::none");
    if (o.hidden.empty())
        throw std::invalid_argument("make_mlp: expected at least one hidden width, got none");
    tg::Generator gen(seed);
    Sequential model;
    model.push_back(Flatten());
    std::size_t in = 28 * 28;
    for (const std::size_t width : o.hidden) {
        model.push_back(Linear(in, width, {.generator = &gen}));
        if (o.norm == Norm::batch) model.push_back(BatchNorm1d(width));
        if (o.norm == Norm::layer) model.push_back(LayerNorm({width}));
        model.push_back(ReLU());
        in = width;
    }
    model.push_back(Linear(in, 10, {.generator = &gen}));
    scale_weights(model, o.init_scale);
    return model;
}

// ---------------------------------------------------------------------------------------------
// Training and scoring

double TrainResult::first_loss() const {
    return step_loss.empty() ? std::numeric_limits<double>::quiet_NaN() : step_loss.front();
}

double TrainResult::final_loss() const {
    if (diverged || step_loss.empty()) return std::numeric_limits<double>::quiet_NaN();
    const std::size_t k = std::max<std::size_t>(1, step_loss.size() / 10);
    double sum = 0.0;
    for (std::size_t i = step_loss.size() - k; i < step_loss.size(); ++i)
        sum += step_loss[i];
    return sum / static_cast<double>(k);
}

bool TrainResult::failed() const {
    return diverged || !(final_loss() < first_loss());
}

void add_sgd_flags(Cli& cli, TrainOptions& o) {
    cli.option("--lr", o.lr, "SGD learning rate", greater_than(0, 1e6));
    cli.option("--momentum", o.momentum, "SGD momentum", between(0, 0.999));
    cli.option("--batch-size", o.batch_size, "examples per SGD step", between(2, 60000));
}

TrainResult train(tg::nn::Module& model, const Data& data,
                  const std::shared_ptr<const Dataset>& train_set, const TrainOptions& o,
                  const StepCallback& on_step) {
    const tg::data::DataLoader loader = make_loader(data, train_set, o.batch_size, true, o.seed);
    tg::optim::SGD opt(model.parameters(),
                       {.lr = o.lr, .momentum = o.momentum, .weight_decay = o.weight_decay});
    TrainResult r;
    model.train();  // BatchNorm: batch statistics, running estimates updated; Dropout on
    const auto start = Clock::now();
    double eval_seconds = 0.0;
    std::size_t step = 0;
    for (std::size_t epoch = 0; step < o.steps; ++epoch) {
        for (const auto& [images, labels] : loader.epoch(epoch)) {
            if (step == o.steps) break;
            // lr_t = lr · (1 + cos(π t / T)) / 2 when annealed, else lr.
            opt.options().lr =
                o.cosine ? o.lr * 0.5 *
                               (1.0 + std::cos(std::numbers::pi * static_cast<double>(step) /
                                               static_cast<double>(o.steps)))
                         : o.lr;
            tg::Tape tape;
            const tg::Tensor loss = tg::cross_entropy(model(images), labels);
            const double l = loss.item();
            r.step_loss.push_back(l);
            ++step;
            if (!std::isfinite(l)) {  // diverged: every later step would be NaN too
                r.diverged = true;
                if (on_step) on_step(step, o.steps, l);
                r.seconds =
                    std::chrono::duration<double>(Clock::now() - start).count() - eval_seconds;
                return r;
            }
            opt.zero_grad();
            tape.backward(loss);
            opt.step();
            if (on_step) on_step(step, o.steps, l);
            if (o.eval_every > 0 && (step % o.eval_every == 0 || step == o.steps)) {
                const auto t0 = Clock::now();
                r.eval_step.push_back(step);
                r.evals.push_back(evaluate(model, data, data.test));
                if (o.eval_train_too) r.train_evals.push_back(evaluate(model, data, train_set));
                if (o.on_eval) o.on_eval(step);
                eval_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
                if (o.stop_at > 0 && r.evals.back().accuracy >= o.stop_at) step = o.steps;
            }
        }
    }
    r.seconds = std::chrono::duration<double>(Clock::now() - start).count() - eval_seconds;
    return r;
}

namespace {

Score score(tg::nn::Module& model, const tg::data::DataLoader& loader) {
    tg::NoGradGuard no_grad;
    double loss_sum = 0.0;
    std::size_t right = 0, seen = 0;
    for (const auto& [images, labels] : loader.epoch(0)) {
        const tg::Tensor logits = model(images);
        loss_sum += tg::cross_entropy(logits, labels).item() * static_cast<double>(labels.size());
        right += tg::num_correct(logits, labels);
        seen += labels.size();
    }
    if (seen == 0) return {};
    return {loss_sum / static_cast<double>(seen),
            static_cast<double>(right) / static_cast<double>(seen)};
}

}  // namespace

Score evaluate(tg::nn::Module& model, const Data& data, const std::shared_ptr<const Dataset>& set) {
    tg::nn::EvalGuard eval(model);  // back to the previous mode when it goes out of scope
    return score(model, make_loader(data, set, 500, false));
}

Score evaluate_train_mode(tg::nn::Module& model, const Data& data,
                          const std::shared_ptr<const Dataset>& set, std::size_t batch_size) {
    // Training mode updates the running statistics: keep a copy and put it back.
    std::vector<tg::Array> saved;
    for (const tg::Tensor& b : model.buffers())
        saved.push_back(b.value());
    const bool was_training = model.is_training();
    model.train();
    const Score s = score(model, make_loader(data, set, batch_size, false));
    model.train(was_training);
    std::size_t i = 0;
    for (tg::Tensor b : model.buffers())
        b.value() = saved[i++];
    return s;
}

// ---------------------------------------------------------------------------------------------
// Over seeds

MeanSd mean_sd(const std::vector<double>& v) {
    if (v.empty()) return {std::numeric_limits<double>::quiet_NaN(), 0.0};
    double sum = 0.0;
    for (const double x : v)
        sum += x;
    const double mean = sum / static_cast<double>(v.size());
    double sq = 0.0;
    for (const double x : v)
        sq += (x - mean) * (x - mean);
    const double sd = v.size() > 1 ? std::sqrt(sq / static_cast<double>(v.size() - 1)) : 0.0;
    return {mean, std::isnan(mean) ? mean : sd};
}

std::string format(const char* fmt, ...) {
    char buf[512];
    va_list args;
    va_start(args, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, args);
    va_end(args);
    return buf;
}

std::string count_of(std::size_t n, const char* noun) {
    return format("%zu %s%s", n, noun, n == 1 ? "" : "s");
}

std::string format_mean_sd(const MeanSd& m, int digits, bool percent) {
    if (std::isnan(m.mean)) return "nan";
    const double k = percent ? 100.0 : 1.0;
    return format("%.*f ± %.*f", digits, k * m.mean, digits, k * m.sd);
}

Table::Table(std::vector<std::string> header) {
    rows_.push_back(std::move(header));
}

void Table::add(std::vector<std::string> row) {
    row.resize(rows_.front().size());
    rows_.push_back(std::move(row));
}

namespace {

// Characters on screen, not bytes: UTF-8 continuation bytes do not count.
std::size_t display_width(const std::string& s) {
    std::size_t n = 0;
    for (const unsigned char c : s)
        n += (c & 0xC0) != 0x80;
    return n;
}

}  // namespace

std::string Table::str() const {
    std::vector<std::size_t> width(rows_.front().size(), 0);
    for (const auto& row : rows_)
        for (std::size_t c = 0; c < row.size(); ++c)
            width[c] = std::max(width[c], display_width(row[c]));
    std::string out;
    for (std::size_t r = 0; r < rows_.size(); ++r) {
        std::string line = " ";
        for (std::size_t c = 0; c < width.size(); ++c) {
            const std::string pad(width[c] - display_width(rows_[r][c]), ' ');
            line += " " + (c == 0 ? rows_[r][c] + pad : pad + rows_[r][c]);
        }
        out += line + "\n";
        if (r == 0) {
            std::size_t total = 1;
            for (const auto w : width)
                total += w + 1;
            std::string rule = " ";
            for (std::size_t i = 1; i < total; ++i)
                rule += "─";
            out += rule + "\n";
        }
    }
    return out;
}

void Table::print() const {
    std::cout << str() << std::flush;
}

// ---------------------------------------------------------------------------------------------
// Figures

void add_spread(tg::viz::Panel& panel, const std::vector<double>& x,
                const std::vector<std::vector<double>>& per_seed, const std::string& label,
                const std::string& colour) {
    std::vector<double> mean(x.size(), 0.0);
    for (std::size_t i = 0; i < x.size(); ++i) {
        std::vector<double> at;
        for (const auto& s : per_seed)
            at.push_back(s.at(i));
        mean[i] = mean_sd(at).mean;
    }
    if (per_seed.size() > 1) {
        for (const auto& s : per_seed) {
            panel.line(x, s, "", colour);
            panel.series.back().line_width = 0.8;
        }
    }
    const std::string what = per_seed.size() > 1 ? label + " (mean; thin: each of " +
                                                       std::to_string(per_seed.size()) + " seeds)"
                                                 : label;
    panel.line(x, mean, what, colour);
    panel.series.back().line_width = 2.5;
}

void seeds_note_in_title(tg::viz::Figure& figure) {
    const std::string head = " (mean; thin: each of ";
    std::string note;
    for (std::size_t r = 0; r < figure.rows(); ++r)
        for (std::size_t c = 0; c < figure.cols(); ++c)
            for (auto& s : figure.panel(r, c).series) {
                const auto at = s.label.rfind(head);
                if (at == std::string::npos || s.label.back() != ')') continue;
                note = s.label.substr(at + head.size(), s.label.size() - at - head.size() - 1);
                s.label.erase(at);
            }
    if (!note.empty()) figure.suptitle += "; thick: mean, thin: each of " + note;
}

tg::viz::Panel& titled_panel(tg::viz::Figure& figure, std::size_t row, std::size_t col,
                             const std::string& title, const std::string& xlabel,
                             const std::string& ylabel) {
    return figure.panel(row, col).set_title(title).set_xlabel(xlabel).set_ylabel(ylabel);
}

void log_x(tg::viz::Panel& panel, const std::vector<double>& ticks, int base) {
    const auto [lo, hi] = std::minmax_element(ticks.begin(), ticks.end());
    panel.set_xrange(*lo / 1.25, *hi * 1.25);
    std::string tics = "set xtics (";
    for (std::size_t i = 0; i < ticks.size(); ++i)
        tics += (i ? ", " : "") + tg::viz::format_number(ticks[i]);
    panel.extra.push_back("set logscale x " + std::to_string(base));
    panel.extra.push_back(tics + ")");
    panel.extra.push_back("set format x \"%g\"");
}

void save_figure(const tg::viz::Figure& figure, const fs::path& png) {
    std::cout << figure.save(png).message << "\n";
}

}  // namespace tg::examples
