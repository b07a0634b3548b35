// Datasets: pairing image and label files, and where MNIST-like data is found.
#include "tapegrad/data/dataset.hpp"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include "tapegrad/data/idx.hpp"

namespace tg::data {

namespace {

const std::vector<std::string> kDigitClasses = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
const std::vector<std::string> kFashionClasses = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                  "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                  "Bag",         "Ankle boot"};

/// `dir/base.gz` if it exists, else `dir/base`, else "" (neither exists).
std::string find_file(const std::string& dir, const std::string& base) {
    namespace fs = std::filesystem;
    std::error_code ec;
    for (const std::string& name : {base + ".gz", base}) {
        const fs::path p = fs::path(dir) / name;
        if (fs::is_regular_file(p, ec)) return p.string();
    }
    return {};
}

}  // namespace

const char* split_name(Split split) {
    return split == Split::train ? "train" : "test";
}

Split parse_split(const std::string& name) {
    if (name == "train") return Split::train;
    if (name == "test" || name == "t10k") return Split::test;
    throw std::invalid_argument("parse_split: '" + name +
                                "' is not a split, expected train or test");
}

std::vector<std::size_t> Dataset::class_counts() const {
    std::vector<std::size_t> counts(num_classes(), 0);
    for (std::uint8_t y : labels) {
        if (y >= counts.size()) counts.resize(y + 1, 0);
        ++counts[y];
    }
    return counts;
}

Dataset Dataset::slice(std::size_t first, std::size_t count) const {
    if (first > size() || count > size() - first) {
        throw std::out_of_range("Dataset::slice: examples [" + std::to_string(first) + ", " +
                                std::to_string(first) + " + " + std::to_string(count) +
                                ") are not within the " + std::to_string(size()) + " examples of " +
                                name);
    }
    Dataset out;
    out.rows = rows;
    out.cols = cols;
    out.classes = classes;
    out.name = name + " [" + std::to_string(first) + ", " + std::to_string(first + count) + ")";
    out.images.assign(image(first), image(first) + count * image_size());
    out.labels.assign(labels.begin() + static_cast<std::ptrdiff_t>(first),
                      labels.begin() + static_cast<std::ptrdiff_t>(first + count));
    return out;
}

std::pair<double, double> pixel_mean_std(const Dataset& data) {
    // Integer sums over the 256 grey levels are exact; the moments follow from the histogram:
    // mean = Σ_p h[p] p / (255 n),   var = Σ_p h[p] (p/255 - mean)^2 / n   (biased, like torch.std
    // over all pixels with correction 0; for millions of pixels the difference is nil).
    std::vector<std::uint64_t> hist(256, 0);
    for (std::uint8_t p : data.images)
        ++hist[p];
    const double n = static_cast<double>(data.images.size());
    if (n == 0) throw std::invalid_argument("pixel_mean_std: dataset " + data.name + " is empty");
    double mean = 0;
    for (int p = 0; p < 256; ++p)
        mean += static_cast<double>(hist[p]) * (p / 255.0);
    mean /= n;
    double var = 0;
    for (int p = 0; p < 256; ++p) {
        const double d = p / 255.0 - mean;
        var += static_cast<double>(hist[p]) * d * d;
    }
    return {mean, std::sqrt(var / n)};
}

Dataset load_idx_pair(const std::string& images_path, const std::string& labels_path,
                      std::vector<std::string> classes) {
    IdxArray im = read_idx(images_path, 3);
    IdxArray lb = read_idx(labels_path, 1);
    const std::size_t n = im.shape[0];
    if (im.shape[1] == 0 || im.shape[2] == 0) {
        throw std::runtime_error("idx: " + images_path + ": byte offset 8: images of " +
                                 std::to_string(im.shape[1]) + " x " + std::to_string(im.shape[2]) +
                                 " pixels, expected at least 1 x 1");
    }
    if (lb.shape[0] != n) {
        throw std::runtime_error(
            "idx: " + labels_path + ": byte offset 4: " + std::to_string(lb.shape[0]) +
            " labels, expected " + std::to_string(n) + " (one per image of " + images_path + ")");
    }
    // A label outside the classes would index past the logits later: reject it here.
    for (std::size_t i = 0; i < n; ++i) {
        if (lb.data[i] >= classes.size()) {
            throw std::runtime_error(
                "idx: " + labels_path + ": byte offset " + std::to_string(8 + i) + ": label " +
                std::to_string(lb.data[i]) + " of example " + std::to_string(i) +
                ", expected a class in 0.." + std::to_string(classes.size() - 1));
        }
    }
    Dataset d;
    d.rows = im.shape[1];
    d.cols = im.shape[2];
    d.images = std::move(im.data);
    d.labels = std::move(lb.data);
    d.classes = std::move(classes);
    d.name = images_path;
    return d;
}

Dataset load_mnist_dir(const std::string& dir, Split split, const std::string& missing_hint) {
    const std::string prefix = split == Split::train ? "train" : "t10k";
    std::string paths[2];
    const std::string bases[2] = {prefix + "-images-idx3-ubyte", prefix + "-labels-idx1-ubyte"};
    for (int k = 0; k < 2; ++k) {
        paths[k] = find_file(dir, bases[k]);
        if (paths[k].empty()) {
            throw std::runtime_error(
                "mnist: " + dir + ": no " + bases[k] + ".gz (or " + bases[k] + ") for the " +
                split_name(split) + " split: " +
                (missing_hint.empty()
                     ? "pass --dataset a directory with the four MNIST-format files "
                       "(train|t10k)-(images-idx3|labels-idx1)-ubyte[.gz]"
                     : missing_hint));
        }
    }
    Dataset d = load_idx_pair(paths[0], paths[1], kDigitClasses);
    d.name = dir + " " + split_name(split);
    return d;
}

namespace {
// A function-local static, so a program's registration (dataset.hpp's inline variable, run
// during static initialisation) finds it constructed whatever the order of initialisation.
std::string& package_data_dir() {
    static std::string dir;
    return dir;
}
}  // namespace

bool detail::set_package_data_dir(const char* dir) {
    // tapegrad.pc's path is ${pcfiledir}/../../share/...: shown as <prefix>/share/... instead.
    package_data_dir() =
        dir == nullptr ? std::string() : std::filesystem::path(dir).lexically_normal().string();
    return true;
}

std::string bundled_data_dir() {
    // The build defines both paths for this file (CMakeLists.txt); a build without them (the
    // sources compiled by hand) has only the package's directory, the environment variable
    // and ./data.
    std::vector<std::pair<std::string, std::string>> places;  // (directory, where it came from)
#ifdef TAPEGRAD_SOURCE_DATA_DIR
    places.emplace_back(TAPEGRAD_SOURCE_DATA_DIR, "the source tree tapegrad was built from");
#endif
    if (!package_data_dir().empty()) {
        places.emplace_back(
            package_data_dir(),
            "the install this program was compiled against (TAPEGRAD_PACKAGE_DATA_DIR)");
    }
#ifdef TAPEGRAD_INSTALL_DATA_DIR
    places.emplace_back(TAPEGRAD_INSTALL_DATA_DIR,
                        "the configured install prefix's share directory");
#endif
    if (const char* env = std::getenv("TAPEGRAD_DATA"); env != nullptr && *env != '\0') {
        places.emplace_back(env, "$TAPEGRAD_DATA");
    } else {
        places.emplace_back("", "$TAPEGRAD_DATA (not set)");
    }
#if !defined(TAPEGRAD_SOURCE_DATA_DIR) && !defined(TAPEGRAD_INSTALL_DATA_DIR)
    places.emplace_back("data", "the working directory's data/");
#endif
    std::string looked;
    for (const auto& [dir, what] : places) {
        if (!dir.empty() && !find_file(dir, "train-images-idx3-ubyte").empty()) return dir;
        looked += "\n  " + (dir.empty() ? std::string("-") : dir) + "  (" + what + ")";
    }
    throw std::runtime_error(
        "bundled_mnist: the bundled digits (train-images-idx3-ubyte.gz and three more) are in "
        "none of the places looked at:" +
        looked +
        "\nSet TAPEGRAD_DATA to a directory holding them (the repository's data/, or "
        "<prefix>/share/tapegrad/data after cmake --install), or pass --dataset DIR.");
}

Dataset bundled_mnist(Split split, const std::string& data_dir) {
    const std::string dir = data_dir.empty() ? bundled_data_dir() : data_dir;
    Dataset d = load_mnist_dir(dir, split,
                               "the bundled digits belong in the repository's data/ directory "
                               "(data/README.md says how they were made)");
    d.name = std::string("mnist (bundled) ") + split_name(split);
    return d;
}

Dataset fashion_mnist(Split split, const std::string& dir) {
    Dataset d =
        load_mnist_dir(dir, split,
                       "install Debian's dataset-fashion-mnist (sudo apt-get install "
                       "dataset-fashion-mnist, bash scripts/setup.sh chapter) or pass --dataset "
                       "a directory of MNIST-format files");
    d.classes = kFashionClasses;
    d.name = std::string("fashion-mnist ") + split_name(split);
    return d;
}

Dataset load_dataset(const std::string& which, Split split, const std::string& data_dir) {
    if (which == "mnist") return bundled_mnist(split, data_dir);
    if (which == "fashion-mnist" || which == "fashion") return fashion_mnist(split);
    if (!std::filesystem::is_directory(which)) {
        throw std::invalid_argument("load_dataset: '" + which +
                                    "' is neither mnist, fashion-mnist nor a directory of "
                                    "MNIST-format files");
    }
    return load_mnist_dir(which, split);
}

}  // namespace tg::data
