// ch310_sync_batchnorm — the chapter's multi-GPU gotcha, for real: data-parallel training of
// the chapter's CNN on P MPI ranks, once with plain BatchNorm and once with SyncBatchNorm.
//
//     mpirun -np 4 ./build/release/examples/ch310_sync_batchnorm
//     mpirun --oversubscribe -np 4 ./build/release/examples/ch310_sync_batchnorm --quick
//
// Every rank holds a copy of the model (rank 0's initial weights, broadcast by
// tg::dist::DataParallel) and trains on its own B/P images of each global batch of B (the
// DistributedSampler's share); after tape.backward the gradients are averaged across the
// ranks, so all copies take the same step. BatchNorm is the exception the chapter warns
// about: a plain BatchNorm2d normalises with its own rank's B/P images and updates its own
// running_mean/var, so the ranks' running statistics drift apart — and in eval mode, where
// those statistics are used, the "same" model scores differently on every rank.
// tg::nn::SyncBatchNorm (convert_sync_batchnorm) combines the ranks' statistics: every rank
// normalises with the global batch's μ_B and σ²_B and keeps identical running statistics.
//
// Printed after every epoch: each rank's running_mean of the first BatchNorm (diverging for
// BatchNorm, identical for SyncBatchNorm), then each rank's test accuracy in eval mode and the
// step time. Written into --out (rank 0): ch310_sync_batchnorm.png (the running statistics of
// channel 0 per rank over the steps, both runs, and each rank's running_mean[0] minus rank 0's)
// with its gnuplot script, and
// ch310_sync_batchnorm_steps.csv / ch310_sync_batchnorm_epochs.csv.
//
// Both runs start from the same weights (--seed) and see the same batches. Timings (lines with
// "ms/step") vary; every other printed number is the same for the same seed and rank count.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common/cli.hpp"
#include "common/experiment.hpp"
#include "tapegrad/data/loader.hpp"
#include "tapegrad/dist/data_parallel.hpp"
#include "tapegrad/dist/sync_batchnorm.hpp"
#include "tapegrad/nn/nn.hpp"
#include "tapegrad/ops/loss.hpp"
#include "tapegrad/optim/sgd.hpp"
#include "tapegrad/parallel.hpp"
#include "tapegrad/tape.hpp"
#include "tapegrad/viz/viz.hpp"

namespace fs = std::filesystem;
namespace viz = tg::viz;
namespace ex = tg::examples;
using Clock = std::chrono::steady_clock;

namespace {

// The run's settings (--seed, --quick, --out, --dataset are examples/common's CommonFlags).
struct Settings {
    std::size_t epochs = 3;
    std::size_t batch_size = 128;  // the global batch: B/P images per rank
    double lr = 0.05;
    double momentum = 0.9;
    std::uint64_t seed = 0;
};

// Training diverged (a non-finite loss on some rank): every rank throws it at the same step.
struct Diverged : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// What one run records on rank 0 (gathered from every rank).
struct Run {
    std::string name;
    // [rank][step]: running_mean[0] and running_var[0] of the first BatchNorm after each step
    std::vector<std::vector<double>> mean0, var0;
    std::vector<std::vector<double>> accuracy;  // [rank][epoch], eval mode, the test set
    double step_seconds = 0.0;                  // per step, mean over the ranks
    double all_reduce_seconds = 0.0;            // per step, in all_reduce_gradients
    std::size_t steps = 0;
};

// A fingerprint of the bytes of every parameter and buffer (FNV-1a): equal on two ranks iff
// their models are bit-for-bit the same (up to a 2^-64 chance).
std::uint64_t fingerprint(const tg::nn::Module& model) {
    std::uint64_t h = 1469598103934665603ULL;
    for (const auto& [name, p] : model.state_dict()) {
        const auto* bytes = reinterpret_cast<const unsigned char*>(p.value().data());
        for (std::size_t i = 0; i < p.numel() * sizeof(tg::real); ++i) {
            h ^= bytes[i];
            h *= 1099511628211ULL;
        }
    }
    return h;
}

// "running_mean" of the first BatchNorm of every rank, one line per rank (rank 0 prints).
void print_running_means(const tg::dist::Context& ctx, const tg::Array& mean) {
    const std::vector<double> all = ctx.all_gather(std::vector<double>(mean.begin(), mean.end()));
    if (ctx.rank() != 0) return;
    const std::size_t C = mean.size();
    double spread = 0.0;
    for (int r = 0; r < ctx.world_size(); ++r) {
        std::printf("    rank %d  running_mean", r);
        for (std::size_t c = 0; c < C; ++c) {
            const double v = all[static_cast<std::size_t>(r) * C + c];
            std::printf(" %+.6f", v);
            spread = std::max(spread, std::abs(v - all[c]));
        }
        std::printf("\n");
    }
    std::printf("    largest difference from rank 0: %.3g%s\n", spread,
                spread == 0.0 ? "  (identical on every rank)" : "");
}

Run train(const std::string& name, bool sync, const tg::dist::Context& ctx, const ex::Data& data,
          const Settings& s) {
    const std::size_t P = static_cast<std::size_t>(ctx.world_size());
    const std::size_t local = s.batch_size / P;
    Run run;
    run.name = name;
    run.mean0.assign(P, {});
    run.var0.assign(P, {});
    run.accuracy.assign(P, {});

    // The chapter's CNN (examples/common), BatchNorm2d after each convolution.
    tg::nn::Sequential model = ex::make_cnn({.norm = ex::Norm::batch}, s.seed);
    if (sync) tg::nn::convert_sync_batchnorm(model, ctx);  // keeps the weights and buffers
    tg::dist::DataParallel dp(ctx, model);                 // rank 0's weights on every rank
    tg::optim::SGD opt(model.parameters(), {.lr = s.lr, .momentum = s.momentum});
    auto& first_bn = dynamic_cast<tg::nn::BatchNorm&>(model[1]);

    // Every rank: its disjoint share of each epoch, the same shuffle for both runs.
    const tg::data::DataLoader train_data = ex::make_loader(data, data.train, local, false);
    const tg::dist::DistributedSampler sampler(train_data.dataset().size(), ctx,
                                               {.seed = s.seed, .drop_last = true});
    const std::size_t steps = sampler.num_samples() / local;
    if (ctx.rank() == 0) {
        std::printf("%s: %zu ranks x %zu images = global batch %zu, %zu steps per epoch\n",
                    name.c_str(), P, local, local * P, steps);
    }
    double seconds = 0.0;
    for (std::size_t epoch = 0; epoch < s.epochs; ++epoch) {
        const std::vector<std::size_t> mine = sampler.indices(epoch);
        for (std::size_t step = 0; step < steps; ++step) {
            const auto start = Clock::now();
            const tg::data::Batch batch = train_data.make_batch(mine.data() + step * local, local);
            opt.zero_grad();
            double loss_value = 0.0;
            {
                tg::Tape tape;
                // Each BatchNorm normalises this rank's `local` images: with its own statistics
                // (BatchNorm2d), or the global batch's (SyncBatchNorm: collectives inside).
                const tg::Tensor loss = tg::cross_entropy(model(batch.images), batch.labels);
                loss_value = loss.item();
                tape.backward(loss);
            }
            dp.all_reduce_gradients();  // g = 1/P Σ_ranks g: the same step everywhere
            opt.step();
            seconds += std::chrono::duration<double>(Clock::now() - start).count();
            // Each rank's running statistics and loss: every rank sees every rank's loss, so a
            // non-finite one stops all ranks at the same step (no rank left in a collective).
            const auto stats = ctx.all_gather(std::vector<double>{
                first_bn.running_mean.value()(0), first_bn.running_var.value()(0), loss_value});
            for (std::size_t r = 0; r < P; ++r) {
                run.mean0[r].push_back(stats[3 * r]);
                run.var0[r].push_back(stats[3 * r + 1]);
            }
            ++run.steps;
            for (std::size_t r = 0; r < P; ++r) {
                if (!std::isfinite(stats[3 * r + 2])) {
                    throw Diverged(name + " on rank " + std::to_string(r) + ": " +
                                   ex::diverged_message(epoch * steps + step + 1, epoch + 1,
                                                        stats[3 * r + 2]));
                }
            }
        }
        // Each rank scores its own copy of the model on the whole test set, in eval mode.
        const double acc = ex::evaluate(model, data, data.test).accuracy;
        const auto accs = ctx.all_gather(std::vector<double>{acc});
        for (std::size_t r = 0; r < P; ++r)
            run.accuracy[r].push_back(accs[r]);
        if (ctx.rank() == 0) {
            std::printf("  %s, epoch %zu/%zu: first BatchNorm (%zu channels), per rank:\n",
                        name.c_str(), epoch + 1, s.epochs, first_bn.num_features);
        }
        print_running_means(ctx, first_bn.running_mean.value());
        const auto prints = ctx.all_gather(fingerprint(model));
        if (ctx.rank() == 0) {
            const bool same = std::all_of(prints.begin(), prints.end(),
                                          [&](std::uint64_t f) { return f == prints[0]; });
            std::printf("    weights and buffers: %s\n",
                        same ? "bit-identical on every rank" : "differ between ranks");
            std::printf("    test accuracy (eval mode):");
            for (std::size_t r = 0; r < P; ++r)
                std::printf("  rank %zu %.2f%%", r, 100.0 * accs[r]);
            std::printf("\n");
        }
    }
    // Step time and time in the gradient all-reduce, averaged over the ranks.
    std::vector<double> times{seconds / static_cast<double>(run.steps),
                              dp.all_reduce_seconds() / static_cast<double>(run.steps)};
    ctx.all_reduce_sum(times.data(), times.size());
    run.step_seconds = times[0] / static_cast<double>(P);
    run.all_reduce_seconds = times[1] / static_cast<double>(P);
    if (ctx.rank() == 0) {
        std::printf(
            "  %s: %.2f ms/step (%.0f images/s), of which %.2f ms/step in the gradient "
            "all-reduce (%zu bucket(s))\n\n",
            name.c_str(), 1e3 * run.step_seconds,
            static_cast<double>(s.batch_size) / run.step_seconds, 1e3 * run.all_reduce_seconds,
            dp.bucket_sizes().size());
    }
    return run;
}

// The corner of a panel whose legend box would hide the fewest points of `curves` (each y over
// the same evenly spaced x): the box taken as `width` of the x range by 40% of the y range.
// Returns (points hidden, gnuplot key position).
std::pair<std::size_t, std::string> legend_corner(const std::vector<std::vector<double>>& curves,
                                                  double width) {
    double lo = INFINITY, hi = -INFINITY;
    for (const auto& c : curves)
        for (const double v : c) {
            lo = std::min(lo, v);
            hi = std::max(hi, v);
        }
    std::pair<std::size_t, std::string> best{SIZE_MAX, ""};
    for (const char* corner : {"top right", "bottom right", "top left", "bottom left"}) {
        const bool top = corner[0] == 't', right = std::string(corner).ends_with("right");
        std::size_t hidden = 0;
        for (const auto& c : curves) {
            for (std::size_t k = 0; k < c.size(); ++k) {
                const double fx = static_cast<double>(k) / static_cast<double>(c.size());
                const double fy = hi > lo ? (c[k] - lo) / (hi - lo) : 0.5;
                hidden += (right ? fx > 1.0 - width : fx < width) && (top ? fy > 0.6 : fy < 0.4);
            }
        }
        if (hidden < best.first) best = {hidden, corner};
    }
    return best;
}

void write_outputs(const Run& plain, const Run& sync, std::size_t P, std::size_t steps_per_epoch,
                   const Settings& s, const fs::path& out) {
    std::vector<viz::CsvColumn> steps{{"step", {}}}, epochs{{"epoch", {}}};
    for (std::size_t k = 0; k < plain.steps; ++k)
        steps[0].values.push_back(static_cast<double>(k + 1));
    for (std::size_t e = 0; e < s.epochs; ++e)
        epochs[0].values.push_back(static_cast<double>(e + 1));
    for (const Run* run : {&plain, &sync}) {
        const std::string tag = run == &plain ? "bn" : "syncbn";
        for (std::size_t r = 0; r < P; ++r) {
            const std::string rk = "_rank" + std::to_string(r);
            steps.push_back({tag + rk + "_running_mean0", run->mean0[r]});
            steps.push_back({tag + rk + "_running_var0", run->var0[r]});
            epochs.push_back({tag + rk + "_test_acc", run->accuracy[r]});
        }
    }
    viz::write_csv(out / "ch310_sync_batchnorm_steps.csv", steps);
    viz::write_csv(out / "ch310_sync_batchnorm_epochs.csv", epochs);

    // Columns: BatchNorm, SyncBatchNorm. Rows: running_mean[0] and running_var[0] of every rank,
    // then each rank's running_mean[0] minus rank 0's, on one scale for both columns (the
    // drift is a few percent of the statistic: visible there, flat zero with SyncBatchNorm).
    // x in epochs.
    viz::Figure fig(3, 2, 1400, 1250);
    char title[200];
    std::snprintf(title, sizeof title,
                  "Data-parallel CNN on %zu ranks, global batch %zu (%zu per rank), seed %llu: "
                  "first BatchNorm, channel 0",
                  P, s.batch_size, s.batch_size / P, static_cast<unsigned long long>(s.seed));
    fig.suptitle = title;
    std::vector<double> x(plain.steps);
    for (std::size_t k = 0; k < x.size(); ++k)
        x[k] = static_cast<double>(k + 1) / static_cast<double>(steps_per_epoch);
    const char* colours[] = {"#E41A1C", "#377EB8", "#4DAF4A", "#984EA3",
                             "#FF7F00", "#A65628", "#F781BF", "#999999"};
    // mean0[r][k] − mean0[0][k]
    const auto minus_rank0 = [](const Run& run, std::size_t r) {
        std::vector<double> d(run.mean0[r].size());
        for (std::size_t k = 0; k < d.size(); ++k)
            d[k] = run.mean0[r][k] - run.mean0[0][k];
        return d;
    };
    double largest = 0.0;  // over both runs, so both bottom panels share their y range
    for (const Run* run : {&plain, &sync})
        for (std::size_t r = 1; r < P; ++r)
            for (const double d : minus_rank0(*run, r))
                largest = std::max(largest, std::abs(d));
    largest = largest > 0.0 ? 1.1 * largest : 1e-3;
    for (std::size_t col = 0; col < 2; ++col) {
        const Run& run = col == 0 ? plain : sync;
        // One legend per column (P entries, in columns of 4), in the panel and corner where it
        // hides the fewest points: the running_mean panel unless the running_var one is freer.
        const double width = P > 4 ? 0.45 : 0.3;
        const auto in_mean = legend_corner(run.mean0, width),
                   in_var = legend_corner(run.var0, width);
        const std::size_t legend_row = in_var.first < in_mean.first ? 1 : 0;
        const std::string legend =
            (legend_row == 0 ? in_mean : in_var).second + (P > 4 ? " maxrows 4" : "");
        for (std::size_t row = 0; row < 2; ++row) {
            const auto& values = row == 0 ? run.mean0 : run.var0;
            auto& panel = fig.panel(row, col);
            panel.set_title(run.name + (row == 0 ? ": running_mean[0]" : ": running_var[0]"))
                .set_xlabel("epoch")
                .set_ylabel(row == 0 ? "running_mean" : "running_var");
            panel.legend = row == legend_row ? legend : "";
            for (std::size_t r = 0; r < P; ++r) {
                // Dashed lines from rank 1 on, so identical curves stay visible under rank 0's.
                panel.line(x, values[r], "rank " + std::to_string(r), colours[r % 8], r > 0);
            }
        }
        auto& diff = fig.panel(2, col);
        diff.set_title(run.name + ": running_mean[0] of rank r minus rank 0's")
            .set_xlabel("epoch")
            .set_ylabel("difference")
            .set_yrange(-largest, largest);
        diff.legend = "";  // the colours of the panels above
        diff.line({x.front(), x.back()}, {0.0, 0.0}, "", "#BBBBBB");
        for (std::size_t r = 1; r < P; ++r)
            diff.line(x, minus_rank0(run, r), "rank " + std::to_string(r), colours[r % 8], false);
    }
    const auto result = fig.save(out / "ch310_sync_batchnorm.png");
    std::cout << result.message << "\n";
}

// The flags of this program, read into `s`; returns the common ones (--seed, --out, ...).
ex::CommonFlags& add_flags(ex::Cli& cli, Settings& s) {
    ex::CommonFlags& flags = cli.add_common({}, /*with_seeds=*/false);
    cli.option("--epochs", s.epochs, "passes over the training set", ex::between(1, 1000));
    cli.option("--batch-size", s.batch_size,
               "the global batch, split evenly between the ranks (a multiple of -np)",
               ex::between(2, 60000));
    cli.option("--lr", s.lr, "SGD learning rate", ex::greater_than(0, 1e6));
    cli.quick_help(
        "a fast run for the tests: at most 2 epochs on 2,048 training and 500 test images");
    cli.outputs(
        "(rank 0) ch310_sync_batchnorm.png (running statistics per rank over the steps) with "
        "its gnuplot script, ch310_sync_batchnorm_steps.csv and ch310_sync_batchnorm_epochs.csv. "
        "Example: mpirun --oversubscribe -np 4 ./build/release/examples/ch310_sync_batchnorm "
        "--quick");
    return flags;
}

// A global batch above the training set becomes the largest multiple of the rank count it has
// (rank 0 says so); rank 0 prints the run's settings.
void share_batch_between_ranks(const tg::dist::Context& ctx, const ex::Data& data, Settings& s) {
    const std::size_t P = static_cast<std::size_t>(ctx.world_size());
    const std::size_t whole = data.train->size() / P * P;
    s.batch_size = ctx.rank() == 0
                       ? ex::cap_batch_size("ch310_sync_batchnorm", "--batch-size", s.batch_size,
                                            whole, "training images the ranks can share evenly")
                       : std::min(s.batch_size, whole == 0 ? s.batch_size : whole);
    if (ctx.rank() == 0) {
        std::printf(
            "%s: %zu training and %zu test images; %zu ranks; SGD lr %g, momentum "
            "%g, %zu epochs, seed %llu\n\n",
            data.name.c_str(), data.train->size(), data.test->size(), P, s.lr, s.momentum, s.epochs,
            static_cast<unsigned long long>(s.seed));
    }
}

}  // namespace

int main(int argc, char** argv) {
    tg::dist::Context ctx(argc, argv);
    ex::Cli cli("ch310_sync_batchnorm",
                "Data-parallel training of the chapter's CNN on MPI ranks, with plain BatchNorm "
                "and with SyncBatchNorm from the same start: watch the ranks' running statistics "
                "diverge, then agree. Start with mpirun -np P (add --oversubscribe for more ranks "
                "than cores).");
    cli.silent(ctx.rank() != 0);  // every rank parses the same flags; rank 0 speaks and writes
    Settings s;
    const ex::CommonFlags& flags = add_flags(cli, s);
    if (const auto exit_code = cli.parse(argc, argv)) return *exit_code;
    s.seed = flags.seed;

    try {
        const std::size_t P = static_cast<std::size_t>(ctx.world_size());
        if (s.batch_size % P != 0) {
            throw std::invalid_argument("--batch-size " + std::to_string(s.batch_size) +
                                        " does not split evenly between " + std::to_string(P) +
                                        " ranks");
        }
        // The ranks share the machine's cores: one thread each unless --threads says otherwise
        // (tg::set_num_threads is the one thread knob; BLAS always runs single-threaded).
        if (P > 1) tg::set_num_threads(1);
        const fs::path out = cli.prepare();  // --threads, --kernels; rank 0: --out writable
        const ex::Data data = ex::load_data(flags, 2048, 500);
        if (flags.quick) s.epochs = std::min<std::size_t>(s.epochs, 2);
        share_batch_between_ranks(ctx, data, s);
        const Run plain = train("BatchNorm", false, ctx, data, s);
        const Run sync = train("SyncBatchNorm", true, ctx, data, s);
        if (ctx.rank() == 0) {
            write_outputs(plain, sync, P, plain.steps / s.epochs, s, out);
            std::printf(
                "Step time: BatchNorm %.2f ms, SyncBatchNorm %.2f ms (ms/step, %zu ranks "
                "on this machine)\n",
                1e3 * plain.step_seconds, 1e3 * sync.step_seconds, P);
        }
    } catch (const Diverged& e) {
        // Every rank saw the same losses and stopped at the same step: no rank is in a
        // collective, so the job ends normally, rank 0 saying why.
        if (ctx.rank() == 0) std::cerr << "ch310_sync_batchnorm: " << e.what() << "\n";
        return 1;
    } catch (const std::exception& e) {
        // The other ranks may be waiting for this one in a collective: end the whole job.
        ctx.abort(std::string("ch310_sync_batchnorm: ") + e.what());
    }
    return 0;
}
