// The bundled MNIST digits and Fashion-MNIST: every file loads with the right counts, and
// a few pixels and labels equal the values read independently with Python/numpy from the
// same files (gzip.open + numpy.frombuffer).
#include <filesystem>
#include <numeric>
#include <vector>

#include "tapegrad/data/dataset.hpp"
#include "testing.hpp"

using tg::data::Dataset;
using tg::data::Split;

namespace {

std::uint64_t pixel_sum(const Dataset& d, std::size_t i) {
    return std::accumulate(d.image(i), d.image(i) + d.image_size(), std::uint64_t{0});
}

std::uint64_t all_pixel_sum(const Dataset& d) {
    return std::accumulate(d.images.begin(), d.images.end(), std::uint64_t{0});
}

/// Pixel (r, c) of image i.
int px(const Dataset& d, std::size_t i, std::size_t r, std::size_t c) {
    return d.image(i)[r * d.cols + c];
}

}  // namespace

TEST_CASE("bundled MNIST train: 8,000 digits, class counts, known pixels and labels") {
    const Dataset d = tg::data::bundled_mnist(Split::train);
    REQUIRE(d.size() == 8000);
    CHECK(d.rows == 28);
    CHECK(d.cols == 28);
    CHECK(d.images.size() == 8000u * 28 * 28);
    CHECK(d.num_classes() == 10);
    CHECK(d.class_counts() ==
          std::vector<std::size_t>{801, 902, 793, 826, 784, 690, 811, 856, 755, 782});
    const std::vector<int> first_labels = {7, 5, 1, 0, 1, 4, 0, 7, 4, 3};
    for (std::size_t i = 0; i < first_labels.size(); ++i)
        CHECK(d.label(i) == first_labels[i]);
    CHECK(d.label(7999) == 1);
    // Image 0 is a 7: its first ink is on row 8, from column 3.
    CHECK(px(d, 0, 8, 2) == 0);
    CHECK(px(d, 0, 8, 3) == 15);
    CHECK(px(d, 0, 8, 4) == 96);
    CHECK(px(d, 0, 8, 5) == 148);
    CHECK(px(d, 0, 14, 14) == 0);
    CHECK(pixel_sum(d, 0) == 13830);
    CHECK(pixel_sum(d, 7999) == 23391);
    CHECK(all_pixel_sum(d) == 209433597);
    const auto [mean, std] = tg::data::pixel_mean_std(d);
    CHECK(mean == doctest::Approx(0.1309483774759904).epsilon(1e-12));
    CHECK(std == doctest::Approx(0.3085066200198519).epsilon(1e-12));
}

TEST_CASE("bundled MNIST test: 2,000 digits, class counts, known pixels and labels") {
    const Dataset d = tg::data::bundled_mnist(Split::test);
    REQUIRE(d.size() == 2000);
    CHECK(d.class_counts() ==
          std::vector<std::size_t>{200, 225, 198, 206, 196, 173, 203, 214, 189, 196});
    const std::vector<int> first_labels = {1, 9, 4, 8, 4, 9, 2, 4, 7, 6};
    for (std::size_t i = 0; i < first_labels.size(); ++i)
        CHECK(d.label(i) == first_labels[i]);
    CHECK(d.label(1999) == 0);
    CHECK(px(d, 0, 4, 11) == 87);
    CHECK(px(d, 0, 4, 12) == 155);
    CHECK(px(d, 0, 4, 13) == 166);
    CHECK(px(d, 0, 14, 14) == 253);
    CHECK(pixel_sum(d, 0) == 27408);
    CHECK(pixel_sum(d, 1999) == 26997);
    CHECK(all_pixel_sum(d) == 52713003);
}

TEST_CASE("load_dataset picks the bundled digits, Dataset::slice copies a range") {
    const Dataset d = tg::data::load_dataset("mnist", tg::data::parse_split("t10k"));
    CHECK(d.size() == 2000);
    const Dataset s = d.slice(1, 3);
    REQUIRE(s.size() == 3);
    CHECK(s.label(0) == 9);
    CHECK(s.label(2) == 8);
    CHECK(pixel_sum(s, 2) == pixel_sum(d, 3));
    CHECK_THROWS_AS(d.slice(1999, 2), std::out_of_range);
    CHECK_THROWS_AS(tg::data::parse_split("validation"), std::invalid_argument);
    CHECK_THROWS_AS(tg::data::load_dataset("no-such-dataset", Split::train), std::invalid_argument);
}

TEST_CASE("Fashion-MNIST from Debian's dataset-fashion-mnist: 60,000 / 10,000") {
    if (!std::filesystem::exists(std::string(tg::data::fashion_mnist_dir) +
                                 "/train-images-idx3-ubyte.gz")) {
        MESSAGE("skipped: Fashion-MNIST is not installed in "
                << tg::data::fashion_mnist_dir << " (sudo apt-get install dataset-fashion-mnist)");
        return;
    }
    const Dataset train = tg::data::fashion_mnist(Split::train);
    REQUIRE(train.size() == 60000);
    CHECK(train.class_counts() == std::vector<std::size_t>(10, 6000));
    CHECK(train.classes[9] == "Ankle boot");
    const std::vector<int> train_labels = {9, 0, 0, 3, 0};
    for (std::size_t i = 0; i < train_labels.size(); ++i)
        CHECK(train.label(i) == train_labels[i]);
    CHECK(pixel_sum(train, 0) == 76247);
    CHECK(pixel_sum(train, 59999) == 16684);

    const Dataset test = tg::data::fashion_mnist(Split::test);
    REQUIRE(test.size() == 10000);
    CHECK(test.class_counts() == std::vector<std::size_t>(10, 1000));
    const std::vector<int> test_labels = {9, 2, 1, 1, 6};
    for (std::size_t i = 0; i < test_labels.size(); ++i)
        CHECK(test.label(i) == test_labels[i]);
    CHECK(pixel_sum(test, 0) == 33456);
    CHECK(pixel_sum(test, 9999) == 24390);
}
