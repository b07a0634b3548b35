// ch310_small_batch — experiment 6 of the chapter's claims: BN "breaks down below batch size
// ~16, where GroupNorm or LayerNorm should take over".
//
// The chapter's CNN with each normalisation after its convolutions: BatchNorm2d, GroupNorm
// with 2 groups, GroupNorm with one group per channel (InstanceNorm with γ, β), LayerNorm over
// [C, H, W], or none; trained at batch sizes 2 to 128 on the same number of examples (so a
// small batch takes many more steps; default 4,000, half an epoch), with the learning rate
// scaled with the batch size, lr = base · B / 32 (SGD, momentum 0.9, constant lr). Scored on the
// test set in eval mode, and in training mode with test batches of the same size B, which uses each
// batch's own statistics as training did: the difference is BN's train/eval gap. GroupNorm and
// LayerNorm normalise each example on its own, so their two modes give the same numbers and
// B only changes the gradient noise.
//
// In a convolutional layer BN's statistics pool B·H·W values per channel, so B alone does not
// say how noisy they are. A second part crosses that boundary: the same sweep for two networks
// whose BN statistics come from few values, BN against LayerNorm and no normalisation in each:
// a CNN whose last BN sees a 2 x 2 map (4·B values per statistic) and a plain MLP,
// 784-100-100-100-10 with BatchNorm1d after each Linear (B values, the chapter's BatchNorm1D
// setting). The figure's last panels put all three networks on one x axis, the values per
// statistic (the chapter's CNN: 100·B, conv2's 10 x 10 map).
//
// Output (in --out, default out/ch310): ch310_small_batch.png (test accuracy against batch
// size per normalisation; BN's two modes), ch310_small_batch.csv (one row per run: norm 0 =
// BN, 1 = GN(2), 2 = GN(C), 3 = LN, 4 = none; batch, lr, seed, losses, diverged, test loss and
// accuracy in eval mode and in training mode), ch310_small_batch_regimes.csv (the second part,
// one row per run: net 1 = CNN with a 2 x 2 map, 2 = MLP; norm 0 = BN, 3 = LN, 4 = none;
// batch, values per statistic, then as above).
//
//     ./build/release/examples/ch310_small_batch
//     ./build/release/examples/ch310_small_batch --batch-sizes 4,16,64 --base-lr 0.05
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>
#include <stdexcept>

#include "common/cli.hpp"
#include "common/experiment.hpp"
#include "tapegrad/tape.hpp"

namespace fs = std::filesystem;
namespace ex = tg::examples;

namespace {

// The fewest values any BatchNorm layer of `model` computes one statistic (a channel's mean and
// variance) from on `images`: N·H·W for an input [N, C, H, W], N for [N, C]. Measured with
// forward hooks on the network itself, not read from a table.
std::size_t values_per_statistic(tg::nn::Sequential& model, const tg::Tensor& images) {
    tg::NoGradGuard no_grad;
    std::size_t fewest = std::numeric_limits<std::size_t>::max();
    auto hooks = model.register_forward_hook_all(
        [&](const std::string& name, const tg::Tensor& x, const tg::Tensor&) {
            if (name.empty()) return;  // the model itself
            const std::string type = model[std::stoul(name)].type_name();
            if (type == "BatchNorm1d" || type == "BatchNorm2d")
                fewest = std::min(fewest, x.numel() / x.shape().at(1));
        });
    model(images);
    hooks.remove();
    if (fewest == std::numeric_limits<std::size_t>::max())
        throw std::logic_error("values_per_statistic: the network has no BatchNorm1d/2d layer");
    return fewest;
}

}  // namespace

int main(int argc, char** argv) {
    ex::Cli cli("ch310_small_batch",
                "Experiment 6, \"BN breaks down below batch size ~16; use GroupNorm or "
                "LayerNorm\": BN, GroupNorm, LayerNorm and no normalisation at batch sizes 2 to "
                "128, the learning rate scaled with the batch size, over several seeds; then BN, "
                "LayerNorm and none in a CNN whose last BN sees a 2x2 map and in an MLP with "
                "BatchNorm1d, where each statistic has 4·B or B values.");
    ex::CommonFlags& common = cli.add_common({.seeds = 2});
    std::vector<std::size_t> batch_sizes = {2, 4, 8, 16, 32, 128};
    std::size_t examples = 4000;
    double base_lr = 0.02, momentum = 0.9;
    const CLI::Option* batch_sizes_flag = cli.list(
        "--batch-sizes", batch_sizes, "batch sizes, comma-separated", ex::between(2, 60000));
    cli.option("--examples", examples,
               "training examples seen per run, whatever the batch size (8,000: one epoch of "
               "the bundled digits)",
               ex::between(1, 10000000));
    cli.option("--base-lr", base_lr, "learning rate at batch 32; at batch B it is base-lr·B/32",
               ex::greater_than(0, 1e6));
    cli.option("--momentum", momentum, "SGD momentum", ex::between(0, 0.999));
    cli.quick_help(
        "a few-second run for the tests: batch sizes 8 and 32 (unless --batch-sizes is given), "
        "512 examples per run, "
        "the first 1,000 training and 500 test images");
    cli.outputs(
        "ch310_small_batch.png (test accuracy against batch size), ch310_small_batch.csv "
        "(one row per run: norm 0 = BN, 1 = GN(2), 2 = GN(C), 3 = LN, 4 = none; batch, "
        "lr, seed, losses, diverged, test loss, test accuracy in eval mode and in training "
        "mode with test batches of B), ch310_small_batch_regimes.csv (the same for a CNN "
        "whose last BN sees a 2x2 map, net 1, and an MLP with BatchNorm1d, net 2; norms BN, "
        "LN, none; with the values per BN statistic).");
    if (const auto exit_code = cli.parse(argc, argv)) return *exit_code;

    try {
        const fs::path out = cli.prepare();
        if (common.quick) {
            if (batch_sizes_flag->count() == 0) batch_sizes = {8, 32};  // unless given
            examples = std::min<std::size_t>(examples, 512);
        }
        const ex::Data data = ex::load_data(common, 1000, 500);
        for (std::size_t& B : batch_sizes) {
            B = ex::cap_batch_size("ch310_small_batch", "--batch-sizes", B, data.train->size(),
                                   "training images");
        }
        const auto seeds = common.seed_list();
        struct Config {
            std::string name;
            ex::CnnOptions cnn;
            const char* colour;
        };
        const std::vector<Config> norms = {
            {"BN", {.norm = ex::Norm::batch}, ex::kWithBn},
            {"GN(2)", {.norm = ex::Norm::group, .groups = 2}, ex::kThird},
            {"GN(C)", {.norm = ex::Norm::group, .groups = 0}, ex::kSixth},
            {"LN", {.norm = ex::Norm::layer}, ex::kFourth},
            {"none", {.norm = ex::Norm::none}, ex::kWithoutBn}};
        std::printf(
            "%s: %zu training, %zu test images\n%zu examples per run, lr = %g·B/32 "
            "(SGD, momentum %g)\n%zu batch sizes x %zu normalisations x %zu seeds\n\n",
            data.name.c_str(), data.train->size(), data.test->size(), examples, base_lr, momentum,
            batch_sizes.size(), norms.size(), seeds.size());

        std::vector<double> c_norm, c_batch, c_lr, c_seed, c_first, c_final, c_div, c_loss, c_acc,
            c_acc_train_mode;
        // acc[norm][seed][batch size]; BN's train-mode accuracy likewise.
        std::vector<std::vector<std::vector<double>>> acc(norms.size());
        for (auto& a : acc)
            a.assign(seeds.size(), std::vector<double>(batch_sizes.size()));
        auto bn_train_mode = acc[0];
        ex::SweepProgress progress(batch_sizes.size() * norms.size() * seeds.size());
        std::size_t run = 0;
        for (std::size_t i = 0; i < batch_sizes.size(); ++i) {
            const std::size_t B = batch_sizes[i];
            const double lr = base_lr * static_cast<double>(B) / 32.0;
            const std::size_t steps = std::max<std::size_t>(1, examples / B);
            for (std::size_t n = 0; n < norms.size(); ++n) {
                for (std::size_t k = 0; k < seeds.size(); ++k) {
                    progress.start(run++, ex::format("%s B %zu seed %llu", norms[n].name.c_str(), B,
                                                     static_cast<unsigned long long>(seeds[k])));
                    tg::nn::Sequential model = ex::make_cnn(norms[n].cnn, seeds[k]);
                    const ex::TrainResult r = ex::train(model, data, data.train,
                                                        {.lr = lr,
                                                         .momentum = momentum,
                                                         .batch_size = B,
                                                         .steps = steps,
                                                         .seed = seeds[k]},
                                                        progress.on_step());
                    const ex::Score test = ex::evaluate(model, data, data.test);
                    // For GroupNorm, LayerNorm and none training mode computes exactly what
                    // eval mode does (the tests check this): only BN's differs.
                    const double train_mode =
                        ex::evaluate_train_mode(model, data, data.test, B).accuracy;
                    c_norm.push_back(static_cast<double>(n));
                    c_batch.push_back(static_cast<double>(B));
                    c_lr.push_back(lr);
                    c_seed.push_back(static_cast<double>(seeds[k]));
                    c_first.push_back(r.first_loss());
                    c_final.push_back(r.final_loss());
                    c_div.push_back(r.diverged ? 1 : 0);
                    c_loss.push_back(test.loss);
                    c_acc.push_back(test.accuracy);
                    c_acc_train_mode.push_back(train_mode);
                    acc[n][k][i] = 100.0 * test.accuracy;
                    if (n == 0) bn_train_mode[k][i] = 100.0 * train_mode;
                    progress.finish(r.diverged ? "diverged (NaN loss)"
                                               : ex::format("test %.2f%%", 100.0 * test.accuracy));
                }
            }
        }
        progress.done();
        tg::viz::write_csv(out / "ch310_small_batch.csv",
                           {{"norm", c_norm},
                            {"batch", c_batch},
                            {"lr", c_lr},
                            {"seed", c_seed},
                            {"first_loss", c_first},
                            {"final_loss", c_final},
                            {"diverged", c_div},
                            {"test_loss", c_loss},
                            {"test_acc", c_acc},
                            {"test_acc_train_mode", c_acc_train_mode}});

        // The second part: networks whose BN statistics have few values. net 1: the CNN with a
        // third block on a 2 x 2 map; net 2: the MLP with BatchNorm1d.
        const std::vector<std::string> nets = {"chapter CNN", "CNN, 2x2 map", "MLP"};
        struct RegimeNorm {
            std::string name;
            ex::Norm norm;
            double code;  // as in ch310_small_batch.csv: 0 = BN, 3 = LN, 4 = none
            const char* colour;
        };
        const std::vector<RegimeNorm> regime_norms = {{"BN", ex::Norm::batch, 0, ex::kWithBn},
                                                      {"LN", ex::Norm::layer, 3, ex::kFourth},
                                                      {"none", ex::Norm::none, 4, ex::kWithoutBn}};
        const auto make_net = [](std::size_t net, ex::Norm norm, std::uint64_t seed) {
            return net == 0   ? ex::make_cnn({.norm = norm}, seed)
                   : net == 1 ? ex::make_cnn({.norm = norm, .small_map = true}, seed)
                              : ex::make_mlp({.norm = norm}, seed);
        };
        // per_stat[net][batch]: the values per BN statistic, measured on each network with BN
        // on a batch of B training images.
        std::vector<std::vector<std::size_t>> per_stat(nets.size());
        for (std::size_t net = 0; net < nets.size(); ++net)
            for (const std::size_t B : batch_sizes) {
                tg::nn::Sequential bn_net = make_net(net, ex::Norm::batch, 0);
                per_stat[net].push_back(values_per_statistic(
                    bn_net, ex::make_loader(data, data.train, B, false).epoch(0).begin()->images));
            }
        // racc[net][norm][seed][batch], rtrain[net][seed][batch] (BN in training mode); net 0 is
        // the chapter's CNN from the first part.
        std::vector<std::vector<std::vector<std::vector<double>>>> racc(nets.size());
        std::vector<std::vector<std::vector<double>>> rtrain(nets.size());
        racc[0] = {acc[0], acc[3], acc[4]};
        rtrain[0] = bn_train_mode;
        std::vector<double> r_net, r_norm, r_batch, r_per_stat, r_lr, r_seed, r_first, r_final,
            r_div, r_loss, r_acc, r_acc_train_mode;
        ex::SweepProgress regime_progress((nets.size() - 1) * batch_sizes.size() *
                                          regime_norms.size() * seeds.size());
        run = 0;
        for (std::size_t net = 1; net < nets.size(); ++net) {
            racc[net].assign(regime_norms.size(),
                             std::vector<std::vector<double>>(
                                 seeds.size(), std::vector<double>(batch_sizes.size())));
            rtrain[net] = racc[net][0];
            for (std::size_t i = 0; i < batch_sizes.size(); ++i) {
                const std::size_t B = batch_sizes[i];
                const double lr = base_lr * static_cast<double>(B) / 32.0;
                const std::size_t steps = std::max<std::size_t>(1, examples / B);
                for (std::size_t n = 0; n < regime_norms.size(); ++n) {
                    for (std::size_t k = 0; k < seeds.size(); ++k) {
                        regime_progress.start(
                            run++, ex::format("%s %s B %zu seed %llu", nets[net].c_str(),
                                              regime_norms[n].name.c_str(), B,
                                              static_cast<unsigned long long>(seeds[k])));
                        tg::nn::Sequential model = make_net(net, regime_norms[n].norm, seeds[k]);
                        const ex::TrainResult r = ex::train(model, data, data.train,
                                                            {.lr = lr,
                                                             .momentum = momentum,
                                                             .batch_size = B,
                                                             .steps = steps,
                                                             .seed = seeds[k]},
                                                            regime_progress.on_step());
                        const ex::Score test = ex::evaluate(model, data, data.test);
                        const double train_mode =
                            ex::evaluate_train_mode(model, data, data.test, B).accuracy;
                        r_net.push_back(static_cast<double>(net));
                        r_norm.push_back(regime_norms[n].code);
                        r_batch.push_back(static_cast<double>(B));
                        r_per_stat.push_back(static_cast<double>(per_stat[net][i]));
                        r_lr.push_back(lr);
                        r_seed.push_back(static_cast<double>(seeds[k]));
                        r_first.push_back(r.first_loss());
                        r_final.push_back(r.final_loss());
                        r_div.push_back(r.diverged ? 1 : 0);
                        r_loss.push_back(test.loss);
                        r_acc.push_back(test.accuracy);
                        r_acc_train_mode.push_back(train_mode);
                        racc[net][n][k][i] = 100.0 * test.accuracy;
                        if (n == 0) rtrain[net][k][i] = 100.0 * train_mode;
                        regime_progress.finish(
                            r.diverged ? "diverged (NaN loss)"
                                       : ex::format("test %.2f%%", 100.0 * test.accuracy));
                    }
                }
            }
        }
        regime_progress.done();
        tg::viz::write_csv(out / "ch310_small_batch_regimes.csv",
                           {{"net", r_net},
                            {"norm", r_norm},
                            {"batch", r_batch},
                            {"per_stat", r_per_stat},
                            {"lr", r_lr},
                            {"seed", r_seed},
                            {"first_loss", r_first},
                            {"final_loss", r_final},
                            {"diverged", r_div},
                            {"test_loss", r_loss},
                            {"test_acc", r_acc},
                            {"test_acc_train_mode", r_acc_train_mode}});

        const auto column = [&](std::size_t n, std::size_t i, const std::vector<double>& v) {
            std::vector<double> sel;
            for (std::size_t r = 0; r < c_norm.size(); ++r)
                if (c_norm[r] == static_cast<double>(n) && c_batch[r] == batch_sizes[i])
                    sel.push_back(v[r]);
            return ex::mean_sd(sel);
        };
        std::vector<std::string> header = {"B"};
        for (const auto& n : norms)
            header.push_back(n.name);
        ex::Table table(header);
        ex::Table gap({"B", "lr", "BN eval mode %", "BN train mode %", "train − eval"});
        for (std::size_t i = 0; i < batch_sizes.size(); ++i) {
            std::vector<std::string> row = {std::to_string(batch_sizes[i])};
            for (std::size_t n = 0; n < norms.size(); ++n)
                row.push_back(ex::format_mean_sd(column(n, i, c_acc), 1, true));
            table.add(row);
            std::vector<double> d;
            for (std::size_t r = 0; r < c_norm.size(); ++r)
                if (c_norm[r] == 0 && c_batch[r] == batch_sizes[i])
                    d.push_back(c_acc_train_mode[r] - c_acc[r]);
            gap.add({std::to_string(batch_sizes[i]),
                     ex::format("%g", base_lr * static_cast<double>(batch_sizes[i]) / 32.0),
                     ex::format_mean_sd(column(0, i, c_acc), 1, true),
                     ex::format_mean_sd(column(0, i, c_acc_train_mode), 1, true),
                     ex::format_mean_sd(ex::mean_sd(d), 1, true)});
        }
        std::printf(
            "\nTest accuracy %% (eval mode) by batch size B, %zu examples per run,\n"
            "mean ± sd over %s\n\n",
            examples, ex::count_of(seeds.size(), "seed").c_str());
        table.print();
        std::printf(
            "\nBN scored in eval mode (running statistics) and in training mode\n"
            "(each test batch of B normalised with its own statistics, as in training)\n\n");
        gap.print();
        // The second part: per network, BN (both modes), LN and none by B and values per
        // statistic; then BN − LN at each B for all three networks.
        const auto regime_cell = [&](std::size_t net, std::size_t n, std::size_t i, bool train) {
            std::vector<double> v;
            for (std::size_t k = 0; k < seeds.size(); ++k)
                v.push_back((train ? rtrain[net][k][i] : racc[net][n][k][i]) / 100.0);
            return ex::format_mean_sd(ex::mean_sd(v), 1, true);
        };
        const auto bn_minus_ln = [&](std::size_t net, std::size_t i) {
            std::vector<double> v;
            for (std::size_t k = 0; k < seeds.size(); ++k)
                v.push_back(racc[net][0][k][i] - racc[net][1][k][i]);
            return ex::mean_sd(v);
        };
        for (std::size_t net = 1; net < nets.size(); ++net) {
            std::printf(
                "\n%s:\ntest accuracy %% (eval mode; BN also in training mode), mean ± sd over "
                "%s\n\n",
                net == 1 ? "CNN whose last BN sees a 2x2 map (4·B values per statistic)"
                         : "MLP 784-100-100-100-10 with BatchNorm1d (B values per statistic)",
                ex::count_of(seeds.size(), "seed").c_str());
            ex::Table t({"B", "values/stat", "BN", "BN train mode", "LN", "none"});
            for (std::size_t i = 0; i < batch_sizes.size(); ++i)
                t.add({std::to_string(batch_sizes[i]), std::to_string(per_stat[net][i]),
                       regime_cell(net, 0, i, false), regime_cell(net, 0, i, true),
                       regime_cell(net, 1, i, false), regime_cell(net, 2, i, false)});
            t.print();
        }
        std::printf(
            "\nBN − LN, test accuracy points (eval mode), mean ± sd over %s, and the\n"
            "values per BN statistic (chapter CNN 100·B, 2x2 map 4·B, MLP B)\n\n",
            ex::count_of(seeds.size(), "seed").c_str());
        ex::Table diff({"B", "chapter CNN", "values", "CNN, 2x2 map", "values", "MLP", "values"});
        for (std::size_t i = 0; i < batch_sizes.size(); ++i) {
            std::vector<std::string> row = {std::to_string(batch_sizes[i])};
            for (std::size_t net = 0; net < nets.size(); ++net) {
                row.push_back(ex::format_mean_sd(bn_minus_ln(net, i), 1));
                row.push_back(std::to_string(per_stat[net][i]));
            }
            diff.add(row);
        }
        diff.print();

        std::vector<double> x;
        for (const std::size_t B : batch_sizes)
            x.push_back(static_cast<double>(B));
        tg::viz::Figure fig(2, 3, 1800, 1040);
        fig.suptitle = ex::format(
            "Normalisation at small batch sizes: %s, %zu examples per run, "
            "lr %g·B/32, SGD momentum %g, %zu seeds",
            data.name.c_str(), examples, base_lr, momentum, seeds.size());
        auto& left = fig.panel(0, 0)
                         .set_title("Test accuracy (eval mode)")
                         .set_xlabel("batch size B")
                         .set_ylabel("accuracy (%)");
        for (std::size_t n = 0; n < norms.size(); ++n)
            ex::add_spread(left, x, acc[n], norms[n].name, norms[n].colour);
        auto& right =
            fig.panel(0, 1)
                .set_title("BatchNorm: eval mode against training mode (batch statistics)")
                .set_xlabel("batch size B")
                .set_ylabel("test accuracy (%)");
        ex::add_spread(right, x, acc[0], "BN, eval mode", ex::kWithBn);
        ex::add_spread(right, x, bn_train_mode, "BN, training mode", ex::kFifth);
        ex::log_x(left, x, 2);
        ex::log_x(right, x, 2);
        left.legend = right.legend = "bottom left";
        // The right panel's curves span its whole height: room below them for the legend (a
        // quarter of the data's range).
        double lo = std::numeric_limits<double>::infinity(), hi = -lo;
        for (const auto* runs : {&acc[0], &bn_train_mode})
            for (const auto& seed_curve : *runs)
                for (const double y : seed_curve)
                    if (std::isfinite(y)) lo = std::min(lo, y), hi = std::max(hi, y);
        if (lo < hi) right.set_yrange(lo - 0.3 * (hi - lo), hi + 0.05 * (hi - lo));
        // The second part: the MLP and the 2x2-map CNN against B, then all three networks
        // against the values per statistic.
        for (std::size_t net = 1; net < nets.size(); ++net) {
            auto& p = fig.panel(net == 2 ? 0 : 1, net == 2 ? 2 : 0)
                          .set_title(net == 1 ? "CNN whose last BN sees a 2x2 map (4B values)"
                                              : "MLP with BatchNorm1d (B values per statistic)")
                          .set_xlabel("batch size B")
                          .set_ylabel("test accuracy (%)");
            for (std::size_t n = 0; n < regime_norms.size(); ++n)
                ex::add_spread(p, x, racc[net][n], regime_norms[n].name, regime_norms[n].colour);
            ex::add_spread(p, x, rtrain[net], "BN, training mode", ex::kFifth);
            ex::log_x(p, x, 2);
            // Where no curve is: the MLP's curves are high on the right, the CNN's fall there.
            p.legend = net == 2 ? "bottom right" : "center left";
        }
        const char* net_colours[] = {ex::kWithBn, ex::kThird, ex::kSixth};
        auto& pd = fig.panel(1, 1)
                       .set_title("BN minus LayerNorm, same network (eval mode)")
                       .set_xlabel("values per BN statistic (log scale)")
                       .set_ylabel("test accuracy difference (points)");
        auto& pg = fig.panel(1, 2)
                       .set_title("BN: training mode minus eval mode")
                       .set_xlabel("values per BN statistic (log scale)")
                       .set_ylabel("test accuracy difference (points)");
        double xlo = std::numeric_limits<double>::infinity(), xhi = 0;
        for (std::size_t net = 0; net < nets.size(); ++net) {
            std::vector<double> xs;
            for (const std::size_t v : per_stat[net])
                xs.push_back(static_cast<double>(v));
            xlo = std::min(xlo, xs.front());
            xhi = std::max(xhi, xs.back());
            auto d = racc[net][0], g = rtrain[net];
            for (std::size_t k = 0; k < seeds.size(); ++k)
                for (std::size_t i = 0; i < batch_sizes.size(); ++i) {
                    d[k][i] -= racc[net][1][k][i];
                    g[k][i] -= racc[net][0][k][i];
                }
            const std::size_t per_example = per_stat[net].front() / batch_sizes.front();
            const std::string label =
                nets[net] +
                (per_example == 1 ? std::string(" (B)") : ex::format(" (%zu·B)", per_example));
            ex::add_spread(pd, xs, d, label, net_colours[net]);
            ex::add_spread(pg, xs, g, label, net_colours[net]);
        }
        std::vector<double> ticks;
        for (double t = std::min(xlo, 2.0); t <= xhi; t *= 4)
            ticks.push_back(t);
        for (auto* p : {&pd, &pg}) {
            ex::log_x(*p, ticks, 2);
            p->set_xrange(xlo / 1.25, xhi * 1.25);
            // The chapter's "~16", and zero (no difference).
            p->extra.push_back(
                "set arrow 1 from 16, graph 0 to 16, graph 1 nohead dt 2 lc rgb '#555555'");
            p->extra.push_back(
                "set label 1 \"the chapter's ~16\" at 18, graph 0.95 left tc rgb '#555555'");
            p->extra.push_back(
                "set arrow 2 from graph 0, first 0 to graph 1, first 0 nohead lc rgb '#999999'");
            p->legend = "center right";
        }
        ex::save_figure(fig, out / "ch310_small_batch.png");
    } catch (const std::exception& e) {
        std::cerr << "ch310_small_batch: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
