// examples/common/experiment.hpp — what the chapter's experiments share: the data, the
// chapter's LeNet-style CNN with its variants, training for a budget of SGD steps, scoring in
// evaluation mode, the mean and spread over seeds, tables and figures.
//
// The CNN (ch310_train_cnn's), with the normalisation layer "Norm" optional:
//
//   [N, 1, 28, 28] → Conv2d(1, 6, 5, pad 2) → [N, 6, 28, 28] → Norm → ReLU → MaxPool2d(2)
//                  → Conv2d(6, 16, 5)       → [N, 16, 10, 10] → Norm → ReLU → MaxPool2d(2)
//                  → Flatten → Linear(400, 120) → ReLU → (Dropout) → Linear(120, 84) → ReLU
//                  → (Dropout) → Linear(84, 10)
//
// With small_map a third block, Conv2d(16, 32, 4) → [N, 32, 2, 2] → Norm → ReLU, comes before
// Flatten (Linear(128, 120) then), so the last Norm sees a 2 x 2 map. make_mlp builds the plain
// MLP (Linear → Norm → ReLU per hidden layer) for BN over features with no spatial extent.
//
// Norm is BatchNorm2d(C), GroupNorm(G, C), LayerNorm([C, H, W]) or nothing, placed before the
// ReLU (Conv → Norm → ReLU, the chapter's placement) or after it (Conv → ReLU → Norm).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cli.hpp"
#include "progress.hpp"
#include "tapegrad/data/dataset.hpp"
#include "tapegrad/data/loader.hpp"
#include "tapegrad/nn/nn.hpp"
#include "tapegrad/viz/viz.hpp"

namespace tg::examples {

// ---------------------------------------------------------------------------------------------
// Data

/// A training and a test set and the normalisation every loader applies to their pixels,
/// x = (p / 255 − mean) / std, with the training set's mean and std.
struct Data {
    std::shared_ptr<const tg::data::Dataset> train, test;
    double mean = 0.0, std = 1.0;
    std::string name;  // "mnist (bundled)"
};

/// --dataset's training and test sets; with --quick only their first `quick_train` and
/// `quick_test` examples.
Data load_data(const CommonFlags& flags, std::size_t quick_train, std::size_t quick_test);

/// The examples of `data` whose label satisfies `keep`, in order ("digits 0-4").
tg::data::Dataset filter_labels(const tg::data::Dataset& data, const std::function<bool(int)>& keep,
                                const std::string& name_suffix);

/// A loader over `set` with data's normalisation: shuffled by `seed` (an epoch's order depends
/// on seed and epoch only) or in file order; each batch assembled one ahead on the loader's own
/// thread (DataLoaderOptions::prefetch: the same batches, overlapped with the step).
tg::data::DataLoader make_loader(const Data& data, std::shared_ptr<const tg::data::Dataset> set,
                                 std::size_t batch_size, bool shuffle, std::uint64_t seed = 0);

// ---------------------------------------------------------------------------------------------
// The model

enum class Norm { none, batch, group, layer };

struct CnnOptions {
    Norm norm = Norm::batch;
    bool norm_after_relu = false;  // Conv → ReLU → Norm instead of Conv → Norm → ReLU
    std::size_t groups = 2;        // GroupNorm: groups per layer (must divide 6 and 16); 0: one
                                   // per channel (InstanceNorm with γ, β)
    double dropout = 0.0;          // Dropout(p) after each hidden Linear's ReLU; 0: none
    double init_scale = 1.0;       // every Conv2d and Linear weight multiplied by this at init
    bool small_map = false;        // a third block after the second pool, Conv2d(16, 32, 4) →
                             // [N, 32, 2, 2] → Norm → ReLU (no pool): its Norm sees a 2 x 2
                             // map (BN: 4·B values per statistic); Linear(128, 120) follows
};

/// "BN", "GN(2)", "GN(C)", "LN", "no norm"; with placement "Conv→ReLU→BN" when after.
std::string norm_name(const CnnOptions& options);

/// The CNN above. Its weights are drawn from a Generator seeded with `seed`, in layer order
/// (normalisation layers draw nothing), so models differing only in Norm or Dropout start from
/// the same convolution and linear weights; Dropout layer k draws its masks from seed·4 + k.
tg::nn::Sequential make_cnn(const CnnOptions& options, std::uint64_t seed);

/// A plain MLP, the chapter's BatchNorm1d setting: Flatten → [Linear → Norm → ReLU] per hidden
/// width → Linear(last width, 10). Norm is BatchNorm1d (B values per statistic), LayerNorm over
/// the features, or nothing (Norm::group is refused: std::invalid_argument naming make_mlp).
/// Weights drawn in layer order from a Generator seeded with `seed`, so the variants of one
/// seed start from the same Linear weights; every Linear weight times init_scale.
struct MlpOptions {
    Norm norm = Norm::batch;
    std::vector<std::size_t> hidden = {100, 100, 100};
    double init_scale = 1.0;
};
tg::nn::Sequential make_mlp(const MlpOptions& options, std::uint64_t seed);

// ---------------------------------------------------------------------------------------------
// Training and scoring

struct TrainOptions {
    double lr = 0.01;
    double momentum = 0.9;
    double weight_decay = 0.0;
    std::size_t batch_size = 64;
    std::size_t steps = 100;      // the budget, in SGD steps (epochs repeat as needed)
    bool cosine = false;          // lr annealed to 0 along a cosine, else constant
    std::uint64_t seed = 0;       // the batch order
    std::size_t eval_every = 0;   // score the test set every this many steps (0: never)
    double stop_at = 0.0;         // stop at the first such score >= stop_at (0: never)
    bool eval_train_too = false;  // at each evaluation also score the training set (eval mode)
    std::function<void(std::size_t step)> on_eval = {};  // called after each evaluation, if set
};

/// A test-set score: mean cross-entropy and accuracy.
struct Score {
    double loss = 0.0, accuracy = 0.0;
};

struct TrainResult {
    std::vector<double> step_loss;       // the loss of every step taken
    std::vector<std::size_t> eval_step;  // after how many steps each evaluation was made
    std::vector<Score> evals;            // the test set's score at each of them
    std::vector<Score> train_evals;      // the training set's, when eval_train_too
    bool diverged = false;  // a step's loss was NaN or infinite: training stopped there
    double seconds = 0.0;   // training time without the evaluations
    /// The first step's loss, and the mean over the last 10% of the steps (NaN if diverged).
    double first_loss() const;
    double final_loss() const;
    /// Diverged, or the final loss above the first: the network got worse, not better.
    bool failed() const;
};

/// Called after every step with (steps done, steps budgeted, loss).
using StepCallback = std::function<void(std::size_t, std::size_t, double)>;

/// The experiments' SGD flags, --lr, --momentum and --batch-size, read into `options` (its
/// values are the defaults shown by --help).
void add_sgd_flags(Cli& cli, TrainOptions& options);

/// SGD (momentum, weight decay) on the cross-entropy for options.steps steps over `train` in
/// training mode (BatchNorm: batch statistics, running estimates updated). Stops early at a
/// non-finite loss (diverged) or when an evaluation of `test` reaches options.stop_at.
TrainResult train(tg::nn::Module& model, const Data& data,
                  const std::shared_ptr<const tg::data::Dataset>& train_set,
                  const TrainOptions& options, const StepCallback& on_step = {});

/// The mean cross-entropy and accuracy of `model` on `set` in evaluation mode (BatchNorm uses
/// its running statistics, Dropout passes through), without a tape; batches of 500.
Score evaluate(tg::nn::Module& model, const Data& data,
               const std::shared_ptr<const tg::data::Dataset>& set);

/// The same in training mode with batches of `batch_size` (BatchNorm normalises each test batch
/// with its own statistics), leaving every buffer (running statistics) as it was.
Score evaluate_train_mode(tg::nn::Module& model, const Data& data,
                          const std::shared_ptr<const tg::data::Dataset>& set,
                          std::size_t batch_size);

// ---------------------------------------------------------------------------------------------
// Over seeds

/// Mean and sample standard deviation (n − 1; 0 for one value) of `values`; NaN if any is NaN.
struct MeanSd {
    double mean = 0.0, sd = 0.0;
};
MeanSd mean_sd(const std::vector<double>& values);

/// "97.31 ± 0.12" (percentages of fractions when `percent`), "nan" if NaN; `digits` decimals.
std::string format_mean_sd(const MeanSd& m, int digits = 2, bool percent = false);

/// A printed table: right-aligned columns (the first left-aligned), a rule under the header.
class Table {
  public:
    explicit Table(std::vector<std::string> header);
    void add(std::vector<std::string> row);
    /// The table as text; the tests and the docs expect it to fit 80 columns.
    std::string str() const;
    void print() const;

  private:
    std::vector<std::vector<std::string>> rows_;
};

/// printf into a std::string.
std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

/// "1 seed", "3 seeds": n and the noun, plural unless n is 1.
std::string count_of(std::size_t n, const char* noun);

// ---------------------------------------------------------------------------------------------
// Figures

/// Draws one curve per seed (thin) and their mean (thick, labelled "<label>, mean of N seeds")
/// through (x[i], per_seed[s][i]). NaN values leave a gap.
void add_spread(tg::viz::Panel& panel, const std::vector<double>& x,
                const std::vector<std::vector<double>>& per_seed, const std::string& label,
                const std::string& colour);

/// For figures whose legends would not fit their panels: drops add_spread's seeds note
/// (" (mean; thin: each of N seeds)") from every legend entry of `figure` and says it once, at
/// the end of its suptitle ("; thick: mean, thin: each of N seeds").
void seeds_note_in_title(tg::viz::Figure& figure);

/// Panel (row, col) of `figure` with its title and axis labels.
tg::viz::Panel& titled_panel(tg::viz::Figure& figure, std::size_t row, std::size_t col,
                             const std::string& title, const std::string& xlabel,
                             const std::string& ylabel);

/// Logarithmic x axis (base `base`) with a tick at each of `ticks` labelled plainly (0.003, 0.1,
/// 3), the range a little wider than theirs.
void log_x(tg::viz::Panel& panel, const std::vector<double>& ticks, int base = 10);

/// The chapter's colours for "with BN" (light blue) and "without BN" (salmon red), as in
/// ch310_train_cnn's figure, and four more for other variants.
inline constexpr const char* kWithBn = tg::viz::kBlue;
inline constexpr const char* kWithoutBn = tg::viz::kRed;
inline constexpr const char* kThird = "#2CA02C";
inline constexpr const char* kFourth = "#9467BD";
inline constexpr const char* kFifth = "#FF7F0E";
inline constexpr const char* kSixth = "#8C564B";

/// Saves the figure and prints where it is (or why it was not rendered).
void save_figure(const tg::viz::Figure& figure, const std::filesystem::path& png);

}  // namespace tg::examples
