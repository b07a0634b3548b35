// DataLoader: batch shapes, drop_last, normalisation values, reproducible shuffling, every
// example exactly once per epoch, and prefetching (the same bytes, its thread stopped).
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "chapter_cnn.hpp"
#include "tapegrad/data/loader.hpp"
#include "tapegrad/tapegrad.hpp"
#include "testing.hpp"
#include "thread_count.hpp"

using tg::data::Batch;
using tg::data::DataLoader;
using tg::data::DataLoaderOptions;
using tg::data::Dataset;

namespace {

/// n images of 2 x 3 pixels; image i holds the grey levels i, i+1, ..., i+5 (so pixel 0
/// identifies it) and label i mod 10.
Dataset tiny(std::size_t n) {
    Dataset d;
    d.rows = 2;
    d.cols = 3;
    d.classes = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
    d.name = "tiny";
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t j = 0; j < 6; ++j)
            d.images.push_back(static_cast<std::uint8_t>(i + j));
        d.labels.push_back(static_cast<std::uint8_t>(i % 10));
    }
    return d;
}

/// The example indices of a tiny() batch, read back from pixel 0 (x = p / 255).
std::vector<std::size_t> ids(const Batch& b) {
    std::vector<std::size_t> out;
    const std::size_t n = b.images.size(0);
    for (std::size_t k = 0; k < n; ++k) {
        out.push_back(static_cast<std::size_t>(std::lround(b.images.value().flat(k * 6) * 255)));
    }
    return out;
}

/// All the example indices of one pass over a tiny() loader, batch by batch.
template <class Range>
std::vector<std::vector<std::size_t>> epoch_ids(Range&& batches) {
    std::vector<std::vector<std::size_t>> out;
    for (const Batch& b : batches)
        out.push_back(ids(b));
    return out;
}

}  // namespace

TEST_CASE("DataLoader: shapes of the bundled digits' batches, labels in file order") {
    DataLoader loader(tg::data::bundled_mnist(tg::data::Split::train), {.batch_size = 64});
    CHECK(loader.num_batches() == 125);  // 8000 / 64 = 125 exactly
    std::size_t batches = 0, examples = 0;
    for (const auto& [x, y] : loader) {
        CHECK(x.shape() == tg::Shape{64, 1, 28, 28});
        CHECK(y.size() == 64);
        if (batches == 0) {
            // File order without shuffle: labels 7 5 1 0 1 ..., image 0 pixel (8, 4) = 96.
            CHECK(y[0] == 7);
            CHECK(y[1] == 5);
            CHECK(y[3] == 0);
            CHECK(x.value()(0, 0, 8, 4) == doctest::Approx(96 / 255.0).epsilon(1e-6));
            CHECK(x.value()(0, 0, 8, 2) == 0);
        }
        ++batches;
        examples += y.size();
    }
    CHECK(batches == 125);
    CHECK(examples == 8000);
}

TEST_CASE("DataLoader: drop_last keeps only full batches") {
    DataLoader keep(tiny(10), {.batch_size = 4});
    DataLoader drop(tiny(10), {.batch_size = 4, .drop_last = true});
    CHECK(keep.num_batches() == 3);
    CHECK(drop.num_batches() == 2);
    CHECK(epoch_ids(keep.epoch(0)) ==
          std::vector<std::vector<std::size_t>>{{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9}});
    CHECK(epoch_ids(drop.epoch(0)) ==
          std::vector<std::vector<std::size_t>>{{0, 1, 2, 3}, {4, 5, 6, 7}});
    auto it = keep.epoch(0).begin();
    ++it;
    ++it;
    CHECK(it->images.shape() == tg::Shape{2, 1, 2, 3});
    CHECK(it->labels == tg::Labels{8, 9});
    // batch larger than the dataset: one short batch, or none with drop_last
    CHECK(DataLoader(tiny(3), {.batch_size = 8}).num_batches() == 1);
    CHECK(DataLoader(tiny(3), {.batch_size = 8, .drop_last = true}).num_batches() == 0);
    std::size_t n = 0;
    for (const Batch& b : DataLoader(tiny(3), {.batch_size = 8, .drop_last = true}))
        n += b.labels.size();
    CHECK(n == 0);
}

TEST_CASE("DataLoader: normalisation x = (p / 255 - mean) / std") {
    Dataset d;
    d.rows = 1;
    d.cols = 4;
    d.classes = {"a", "b"};
    d.images = {0, 51, 255, 102};
    d.labels = {1};
    SUBCASE("default: p / 255 in [0, 1]") {
        DataLoader loader(d, {});
        const tg::Array x = loader.epoch(0).begin()->images.value();
        CHECK(x.shape() == std::vector<std::size_t>{1, 1, 1, 4});
        CHECK(x(0, 0, 0, 0) == 0);
        CHECK(x(0, 0, 0, 1) == doctest::Approx(0.2).epsilon(1e-7));
        CHECK(x(0, 0, 0, 2) == 1);
        CHECK(x(0, 0, 0, 3) == doctest::Approx(0.4).epsilon(1e-7));
    }
    SUBCASE("mean 0.5, std 0.25") {
        DataLoader loader(d, {.mean = 0.5, .std = 0.25});
        const tg::Array x = loader.epoch(0).begin()->images.value();
        CHECK(x(0, 0, 0, 0) == doctest::Approx(-2.0).epsilon(1e-7));  // (0 - 0.5) / 0.25
        CHECK(x(0, 0, 0, 1) == doctest::Approx(-1.2).epsilon(1e-7));  // (0.2 - 0.5) / 0.25
        CHECK(x(0, 0, 0, 2) == doctest::Approx(2.0).epsilon(1e-7));   // (1 - 0.5) / 0.25
        CHECK(x(0, 0, 0, 3) == doctest::Approx(-0.4).epsilon(1e-7));  // (0.4 - 0.5) / 0.25
    }
    SUBCASE("MNIST's usual constants") {
        DataLoader loader(d, {.mean = 0.1307, .std = 0.3081});
        const tg::Array x = loader.epoch(0).begin()->images.value();
        CHECK(x(0, 0, 0, 2) == doctest::Approx(2.8214865).epsilon(1e-6));  // (1 - 0.1307) / 0.3081
    }
}

TEST_CASE("DataLoader: the same seed gives the same batches, other seeds and epochs differ") {
    const DataLoaderOptions opt{.batch_size = 7, .shuffle = true, .seed = 42};
    DataLoader a(tiny(50), opt), b(tiny(50), opt);
    const auto a0 = epoch_ids(a), a1 = epoch_ids(a);  // range-for: epochs 0, then 1
    const auto b0 = epoch_ids(b), b1 = epoch_ids(b);
    CHECK(a.next_epoch() == 2);
    CHECK(a0 == b0);
    CHECK(a1 == b1);
    CHECK(a0 == epoch_ids(a.epoch(0)));  // asking for an epoch again gives it again
    CHECK(a1 == epoch_ids(b.epoch(1)));
    CHECK(a0 != a1);  // each epoch reshuffles
    DataLoader c(tiny(50), {.batch_size = 7, .shuffle = true, .seed = 43});
    CHECK(epoch_ids(c.epoch(0)) != a0);
    // Labels and images travel together.
    for (const Batch& batch : a.epoch(3)) {
        const auto id = ids(batch);
        for (std::size_t k = 0; k < id.size(); ++k)
            CHECK(batch.labels[k] == int(id[k] % 10));
    }
    // Not shuffled: file order in every epoch.
    DataLoader plain(tiny(50), {.batch_size = 7});
    CHECK(epoch_ids(plain.epoch(0)) == epoch_ids(plain.epoch(5)));
    CHECK(epoch_ids(plain.epoch(0))[1] == std::vector<std::size_t>{7, 8, 9, 10, 11, 12, 13});
}

TEST_CASE("DataLoader: every example exactly once per epoch") {
    const std::size_t n = 103;
    for (bool drop_last : {false, true}) {
        DataLoader loader(tiny(n),
                          {.batch_size = 10, .shuffle = true, .seed = 7, .drop_last = drop_last});
        for (std::size_t k = 0; k < 4; ++k) {
            std::vector<std::size_t> seen;
            for (const auto& batch : epoch_ids(loader.epoch(k))) {
                CHECK(batch.size() == (drop_last ? 10 : (seen.size() == 100 ? 3 : 10)));
                seen.insert(seen.end(), batch.begin(), batch.end());
            }
            std::vector<std::size_t> sorted = seen;
            std::sort(sorted.begin(), sorted.end());
            CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());  // no repeats
            CHECK(sorted.size() == (drop_last ? 100u : n));
            CHECK(sorted.back() < n);
        }
    }
    // The shuffle is not the identity, and uses the whole range (a seed-7 permutation of 103
    // that left the first batch in place would have probability ~1e-20).
    DataLoader loader(tiny(n), {.batch_size = 10, .shuffle = true, .seed = 7});
    CHECK(epoch_ids(loader.epoch(0))[0] != std::vector<std::size_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
}

TEST_CASE("DataLoader: bad options are rejected with a message") {
    auto message = [](DataLoaderOptions opt) {
        try {
            DataLoader loader(tiny(3), opt);
        } catch (const std::invalid_argument& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    CHECK(message({.batch_size = 0}) == "DataLoader: batch_size 0, expected at least 1");
    CHECK(message({.batch_size = 1, .std = 0.0}) ==
          "DataLoader: std 0.000000, expected > 0 (x = (p / 255 - mean) / std)");
    Dataset broken = tiny(3);
    broken.images.pop_back();
    CHECK_THROWS_AS(DataLoader(broken, {}), std::invalid_argument);
}

namespace {

/// True when two arrays hold the same shape and the same bytes.
bool same_bytes(const tg::Array& a, const tg::Array& b) {
    return a.shape() == b.shape() &&
           std::memcmp(a.data(), b.data(), a.size() * sizeof(tg::real)) == 0;
}

/// Every batch of epochs 0 and 1 (images and labels), copied out of the loop.
std::vector<Batch> two_epochs(const DataLoader& loader) {
    std::vector<Batch> out;
    for (std::size_t k = 0; k < 2; ++k)
        for (const Batch& b : loader.epoch(k))
            out.push_back(Batch{tg::Tensor(b.images.value()), b.labels});
    return out;
}

/// The threads of this process now (Linux: one entry per thread in /proc/self/task).
std::size_t live_threads() {
    const std::filesystem::directory_iterator tasks("/proc/self/task");
    return static_cast<std::size_t>(std::distance(begin(tasks), end(tasks)));
}

/// The losses of `steps` SGD steps of the chapter's CNN on shuffled batches of 32 bundled
/// digits, then every parameter and buffer; the loader prefetching or not.
std::vector<tg::Array> short_run(bool prefetch, int steps) {
    namespace nn = tg::nn;
    tg::Generator gen(0);
    nn::Sequential model = tgtest::chapter_cnn(gen);
    tg::optim::SGD opt(model.parameters(), {.lr = 0.05, .momentum = 0.9});
    const DataLoader loader(tg::data::bundled_mnist(tg::data::Split::train).slice(0, 1000),
                            {.batch_size = 32, .shuffle = true, .seed = 4, .prefetch = prefetch});
    std::vector<tg::Array> out;
    for (const auto& [x, y] : loader.epoch(0)) {
        if (static_cast<int>(out.size()) == steps) break;
        tg::Tape tape;
        const tg::Tensor loss = tg::cross_entropy(model(x), y);
        opt.zero_grad();
        tape.backward(loss);
        opt.step();
        out.push_back(loss.value());
    }
    for (const auto& [name, t] : model.state_dict())
        out.push_back(t.value());
    return out;
}

}  // namespace

TEST_CASE("DataLoader: prefetch serves the same batches, byte for byte, at 1 and 2 threads") {
    // 8000 digits in batches of 96: 84 batches, the last one of 32.
    auto digits = std::make_shared<const Dataset>(tg::data::bundled_mnist(tg::data::Split::train));
    const DataLoaderOptions plain{
        .batch_size = 96, .shuffle = true, .seed = 9, .mean = 0.13, .std = 0.31};
    DataLoaderOptions ahead = plain;
    ahead.prefetch = true;
    const std::vector<Batch> want = two_epochs(DataLoader(digits, plain));
    REQUIRE(want.size() == 2 * 84);
    for (const std::size_t threads : {1, 2}) {
        CAPTURE(threads);
        const tgtest::ThreadCount count(threads);
        const std::vector<Batch> got = two_epochs(DataLoader(digits, ahead));
        REQUIRE(got.size() == want.size());
        for (std::size_t i = 0; i < want.size(); ++i) {
            CAPTURE(i);
            CHECK(same_bytes(got[i].images.value(), want[i].images.value()));
            CHECK(got[i].labels == want[i].labels);
        }
    }
}

TEST_CASE("DataLoader: a short training run is byte-identical with prefetch on and off") {
    std::vector<tg::Array> want;
    {
        const tgtest::ThreadCount count(1);
        want = short_run(false, 12);
    }
    for (const std::size_t threads : {1, 2}) {
        const tgtest::ThreadCount count(threads);
        for (const bool prefetch : {false, true}) {
            CAPTURE(threads);
            CAPTURE(prefetch);
            const std::vector<tg::Array> got = short_run(prefetch, 12);
            REQUIRE(got.size() == want.size());
            for (std::size_t i = 0; i < want.size(); ++i) {
                CAPTURE(i);
                CHECK(same_bytes(got[i], want[i]));
            }
        }
    }
}

TEST_CASE("DataLoader: the prefetching thread runs during the epoch and stops on every exit") {
    const tgtest::ThreadCount count(1);  // no pool threads come or go meanwhile
    const DataLoader loader(tiny(50), {.batch_size = 4, .shuffle = true, .prefetch = true});
    const std::size_t before = live_threads();
    SUBCASE("to the end") {
        std::size_t seen = 0;
        for (const Batch& b : loader.epoch(0)) {
            // the loader's one thread, waiting to hand over batch 1 (13 batches in all)
            if (seen == 0) CHECK(live_threads() == before + 1);
            seen += b.labels.size();
        }
        CHECK(seen == 50);
    }
    SUBCASE("break") {
        for (const Batch& b : loader.epoch(0)) {
            CHECK(b.labels.size() == 4);
            break;  // the thread is waiting to hand over batch 1 (or still making it)
        }
    }
    SUBCASE("an exception from the loop body") {
        auto body = [&] {
            for (const Batch& b : loader.epoch(1))
                if (b.labels.size() == 4) throw std::runtime_error("the step failed");
        };
        CHECK_THROWS_WITH_AS(body(), "the step failed", std::runtime_error);
    }
    CHECK(live_threads() == before);
}
