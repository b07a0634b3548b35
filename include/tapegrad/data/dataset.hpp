// tapegrad/data/dataset.hpp — labelled grey-level images: the bundled MNIST digits,
// Fashion-MNIST, or any directory of MNIST-format files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace tg::data {

/// Which half of a dataset: MNIST's "train" files or its "t10k" (test) files.
enum class Split { train, test };

/// "train" or "test".
const char* split_name(Split split);
/// Split::train for "train", Split::test for "test" (or "t10k"); anything else throws
/// std::invalid_argument.
Split parse_split(const std::string& name);

/// N labelled images of rows x cols grey levels (0 = background, 255 = ink), as stored in
/// the files: images [N, rows, cols] uint8 row-major, labels [N] uint8 in 0..num_classes-1.
struct Dataset {
    std::vector<std::uint8_t> images;  // [N, rows, cols]
    std::vector<std::uint8_t> labels;  // [N]
    std::size_t rows = 28;
    std::size_t cols = 28;
    std::vector<std::string> classes;  // the name of each class, index = label
    std::string name;                  // e.g. "mnist (bundled) train", for messages

    /// N, the number of examples.
    std::size_t size() const { return labels.size(); }
    std::size_t num_classes() const { return classes.size(); }
    /// rows * cols, the pixels of one image.
    std::size_t image_size() const { return rows * cols; }
    /// The rows * cols pixels of example i, row-major.
    const std::uint8_t* image(std::size_t i) const { return images.data() + i * image_size(); }
    int label(std::size_t i) const { return labels[i]; }
    /// How many examples each class has: counts[c] = #{i : label(i) = c}.
    std::vector<std::size_t> class_counts() const;
    /// Examples [first, first + count) as a new dataset (e.g. a small subset for a quick run).
    Dataset slice(std::size_t first, std::size_t count) const;
};

/// Mean and standard deviation of all pixels scaled to [0, 1] (p / 255), over the whole
/// dataset: the (mean, std) to give DataLoaderOptions for zero-mean, unit-variance inputs.
/// MNIST's 60,000 training digits give (0.1307, 0.3081), the numbers in PyTorch's examples.
std::pair<double, double> pixel_mean_std(const Dataset& data);

/// Reads an image file ([N, rows, cols]) and a label file ([N]) in IDX format (gzip or raw).
/// Labels must be < the number of `classes`. Throws std::runtime_error naming the file, the
/// byte offset and what was expected (also when the two files hold different counts).
Dataset load_idx_pair(const std::string& images_path, const std::string& labels_path,
                      std::vector<std::string> classes);

/// Loads split `split` from a directory holding MNIST's four files
/// (train|t10k)-(images-idx3|labels-idx1)-ubyte, each either raw or with ".gz".
/// `missing_hint` ends the message when a file is missing (say where the files come from).
Dataset load_mnist_dir(const std::string& dir, Split split, const std::string& missing_hint = {});

/// The directory of the bundled digits, the first of these that holds them:
///   1. the data/ directory of the source tree the library was built from (compile-time path),
///   2. the share directory of the install the program was compiled against, wherever
///      `cmake --install --prefix DIR` put it: find_package(tapegrad) and tapegrad.pc tell
///      the program (TAPEGRAD_PACKAGE_DATA_DIR / _PATH, see below),
///   3. the installed share directory of the prefix the library was configured with,
///      <CMAKE_INSTALL_PREFIX>/share/tapegrad/data,
///   4. the directory named by the environment variable TAPEGRAD_DATA.
/// So a program finds them from any working directory. Throws std::runtime_error listing
/// every place it looked when none holds them.
std::string bundled_data_dir();

namespace detail {
/// Adds `dir` as place 2 of bundled_data_dir() (the last call wins). Returns true.
bool set_package_data_dir(const char* dir);
}  // namespace detail

// The library is static and compiled before it is installed, so it cannot know where
// `cmake --install --prefix DIR` puts its data; the program tells it. The installed CMake
// package defines TAPEGRAD_PACKAGE_DATA_DIR (a string literal) and tapegrad.pc defines
// TAPEGRAD_PACKAGE_DATA_PATH (the bare path: pkg-config escapes quotes, so `$(pkg-config ...)`
// on a command line could not pass a literal), both computed from their own location, for
// every file that includes this header; the variable below registers it before main().
// (The bare path is turned into a string by the preprocessor: in GNU mode, -std=gnu++20, a
// path component `linux` or `unix` would be replaced by 1, so use -std=c++20 as tapegrad.pc
// does, or the CMake package; and a `//` in PKG_CONFIG_PATH would start a comment.)
#if !defined(TAPEGRAD_PACKAGE_DATA_DIR) && defined(TAPEGRAD_PACKAGE_DATA_PATH)
#define TAPEGRAD_DETAIL_STRINGIFY_(x) #x
#define TAPEGRAD_DETAIL_STRINGIFY(x) TAPEGRAD_DETAIL_STRINGIFY_(x)
#define TAPEGRAD_PACKAGE_DATA_DIR TAPEGRAD_DETAIL_STRINGIFY(TAPEGRAD_PACKAGE_DATA_PATH)
#endif
#ifdef TAPEGRAD_PACKAGE_DATA_DIR
namespace detail {
inline const bool package_data_dir_set = set_package_data_dir(TAPEGRAD_PACKAGE_DATA_DIR);
}  // namespace detail
#endif

/// The 10,000 real MNIST digits bundled in data/ (8,000 train / 2,000 test; data/README.md):
/// what every example trains on by default. `data_dir` empty: bundled_data_dir().
Dataset bundled_mnist(Split split, const std::string& data_dir = {});

/// Where Debian's package dataset-fashion-mnist installs Fashion-MNIST.
constexpr const char* fashion_mnist_dir = "/usr/share/datasets/fashion-mnist";

/// Fashion-MNIST (Zalando; 60,000 train / 10,000 test; 10 kinds of clothing), from `dir`.
/// A missing file's message says to install dataset-fashion-mnist or pass --dataset DIR.
Dataset fashion_mnist(Split split, const std::string& dir = fashion_mnist_dir);

/// Picks a dataset by name, as the examples' --dataset flag does: "mnist" (the bundled
/// digits), "fashion-mnist" (from /usr/share/datasets/fashion-mnist), or else a directory
/// of MNIST-format files (e.g. LeCun's full 60,000 / 10,000 MNIST).
/// `data_dir` is where "mnist" is read (empty: bundled_data_dir()).
Dataset load_dataset(const std::string& which, Split split, const std::string& data_dir = {});

}  // namespace tg::data
