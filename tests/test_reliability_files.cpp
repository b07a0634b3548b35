// Files and shared state under stress (issue 16): checkpoint saving (unique temporary files,
// symlinks, stale temporaries, two threads), parser limits, error messages, the IDX reader on
// odd inputs, optimiser gradient shapes, load_state_dict shapes, the default generator.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "tapegrad/tapegrad.hpp"
#include "testing.hpp"

namespace fs = std::filesystem;
using tg::Array;
using tg::Tensor;
using tgtest::contains;
using tgtest::TempDir;

using tgtest::error_of;

namespace {

void write_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

template <class U>
void put_le(std::string& out, U v) {
    for (std::size_t i = 0; i < sizeof(U); ++i)
        out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// A state file holding one tensor entry with the given name and shape and no values (so it
// is cut short where its values would begin, unless the parser stops earlier).
std::string state_header_one_tensor(const std::string& name,
                                    const std::vector<std::uint64_t>& shape) {
    std::string b("TGSTATE\0", 8);
    put_le<std::uint32_t>(b, 1);
    put_le<std::uint64_t>(b, 1);
    put_le<std::uint64_t>(b, name.size());
    b += name;
    put_le<std::uint64_t>(b, shape.size());
    for (auto d : shape)
        put_le<std::uint64_t>(b, d);
    return b;
}

// All values of a state are equal to `v`: lets a reader tell which save it sees.
tg::nn::NamedTensors state_of(tg::real v, std::size_t n = 20000) {
    return {{"a", Tensor::full({n}, v)}, {"b", Tensor::full({3, 5}, v)}};
}

tg::real generation_of(const tg::nn::NamedTensors& s) {
    const tg::real v = s.at(0).second.value().flat(0);
    for (const auto& named : s) {  // (clang 14: no structured binding in REQUIRE_MESSAGE)
        for (const tg::real x : named.second.value())
            REQUIRE_MESSAGE(x == v,
                            "a mixed file: " << named.first << " has " << x << " and " << v);
    }
    return v;
}

}  // namespace

// ---- saving -----------------------------------------------------------------------------

TEST_CASE("two threads saving to the same path: every save succeeds, every file is whole") {
    // Defect 4: the temporary name was "<path>.tmp-<pid>", shared by the threads.
    TempDir dir;
    const std::string path = dir.file("shared.tgs");
    tg::nn::write_state_file(path, state_of(0));
    constexpr int kSaves = 40;
    std::atomic<int> failures{0}, running{2};
    std::vector<std::string> errors(2);
    auto saver = [&](int who) {
        for (int i = 0; i < kSaves; ++i) {
            try {
                tg::nn::write_state_file(path, state_of(static_cast<tg::real>(1 + who)));
            } catch (const std::exception& e) {
                ++failures;
                errors[static_cast<std::size_t>(who)] = e.what();
            }
        }
        --running;
    };
    std::thread a(saver, 0), b(saver, 1);
    // Meanwhile every load sees a complete file from one of the savers.
    int loads = 0;
    while (running > 0) {
        const tg::real g = generation_of(tg::nn::read_state_file(path));
        CHECK((g == 0 || g == 1 || g == 2));
        ++loads;
    }
    a.join();
    b.join();
    CHECK_MESSAGE(failures == 0, errors[0] << " / " << errors[1]);
    const tg::real g = generation_of(tg::nn::read_state_file(path));
    CHECK((g == 1 || g == 2));
    CHECK(dir.files() == std::vector<std::string>{"shared.tgs"});
    MESSAGE(loads << " loads during " << 2 * kSaves << " concurrent saves");
}

TEST_CASE("a save never writes through a symlink planted at a temporary name") {
    // Defect 12: the temporary name was predictable and opened with fopen("wb").
    TempDir dir;
    const std::string path = dir.file("net.tgs");
    const std::string victim = dir.file("victim");
    write_bytes(victim, "precious");
    const std::string planted = path + ".tmp-" + std::to_string(::getpid());
    fs::create_symlink(victim, planted);
    tg::nn::write_state_file(path, state_of(4, 10));
    CHECK(tgtest::read_file(victim) == "precious");
    CHECK(generation_of(tg::nn::read_state_file(path)) == 4);
    CHECK(fs::is_symlink(planted));  // not ours: left alone
    CHECK_FALSE(fs::is_symlink(path));
}

TEST_CASE("a successful save removes the temporary files killed saves of the same target left") {
    // Defect 5: a killed save left its full-size temporary file forever.
    TempDir dir;
    const std::string path = dir.file("net.tgs");
    write_bytes(path + ".tmp-a1B2c3", "left by a killed save");  // its writer is gone
    write_bytes(path + ".tmp-Zz9Yy8", "left by another");
    write_bytes(dir.file("other.tgs.tmp-a1B2c3"), "another target's");
    write_bytes(path + ".tmp-notsixchars", "not a name mkstemp makes");
    write_bytes(path + ".backup", "not a temporary file");
    // A saver at work (holding the lock on its temporary file) keeps its file.
    const std::string live = path + ".tmp-LIVE00";
    write_bytes(live, "being written");
    const int fd = ::open(live.c_str(), O_RDONLY);
    REQUIRE(fd >= 0);
    REQUIRE(::flock(fd, LOCK_EX) == 0);

    tg::nn::write_state_file(path, state_of(1, 10));
    CHECK(dir.files() == std::vector<std::string>{"net.tgs", "net.tgs.backup", "net.tgs.tmp-LIVE00",
                                                  "net.tgs.tmp-notsixchars",
                                                  "other.tgs.tmp-a1B2c3"});
    ::close(fd);  // now it is stale too
    tg::nn::write_state_file(path, state_of(2, 10));
    CHECK(dir.files() == std::vector<std::string>{"net.tgs", "net.tgs.backup",
                                                  "net.tgs.tmp-notsixchars",
                                                  "other.tgs.tmp-a1B2c3"});
}

TEST_CASE(
    "a checkpoint, CSV file or figure with a 255-byte name is written (its temporary "
    "name was 266 bytes: ENAMETOOLONG) and a killed save's leftover removed") {
    // "<name>.tmp-XXXXXX" is 11 bytes longer than the name: names of 245 to 255 bytes, valid
    // on every Linux filesystem, could not be saved at all.
    TempDir dir;
    for (const std::size_t length : {244u, 245u, 250u, 255u}) {
        CAPTURE(length);
        const std::string name = std::string(length - 4, 'n') + ".tgs";
        const std::string path = dir.file(name);
        const std::string stem = tg::temp_stem(name);
        CHECK(stem.size() + 11 <= 255);
        CHECK((length <= 244) == (stem == name));
        // A leftover of a killed save of this target (its writer gone, no lock).
        write_bytes(dir.file(stem + ".tmp-a1B2c3"), "left by a killed save");
        REQUIRE_NOTHROW(tg::nn::write_state_file(path, state_of(3, 10)));
        CHECK(generation_of(tg::nn::read_state_file(path)) == 3);
        CHECK(dir.files() == std::vector<std::string>{name});
        REQUIRE_NOTHROW(tg::viz::write_csv(path, {{"x", {1.0, 2.0}}}));
        CHECK(dir.files() == std::vector<std::string>{name});
        fs::remove(path);
    }
    // Two long names sharing their first 200 bytes get different stems.
    const std::string a = std::string(250, 'a'), b = std::string(249, 'a') + "b";
    CHECK(tg::temp_stem(a) != tg::temp_stem(b));
}

TEST_CASE(
    "checkpoint file names with spaces, newlines, quotes, backslashes, a leading dash and "
    "non-ASCII save and load") {
    TempDir dir;
    for (const std::string& name :
         {std::string("with space.tgs"), std::string("new\nline.tgs"), std::string("quote\"'.tgs"),
          std::string("back\\slash.tgs"), std::string("-dash.tgs"),
          std::string("caf\xc3\xa9 \xce\xb3\xce\xb2.tgs"), std::string("tab\tctl\x01.tgs"),
          std::string(".hidden"), std::string("x.tmp-a1B2c3")}) {
        CAPTURE(tg::nn::printable(name));
        const std::string path = dir.file(name);
        REQUIRE_NOTHROW(tg::nn::write_state_file(path, state_of(4, 10)));
        CHECK(generation_of(tg::nn::read_state_file(path)) == 4);
        CHECK(dir.files() == std::vector<std::string>{name});
        fs::remove(path);
    }
}

TEST_CASE("a saved checkpoint gets the permissions a new file gets (0666 minus the umask)") {
    TempDir dir;
    const std::string path = dir.file("net.tgs");
    const mode_t old_mask = ::umask(027);
    tg::nn::write_state_file(path, state_of(1, 10));
    ::umask(old_mask);
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0640);  // mkstemp alone would give 0600
}

// ---- loading: messages --------------------------------------------------------------------

TEST_CASE("loading a directory, a missing file: the path and the reason") {
    TempDir dir;
    const std::string sub = dir.file("a_directory");
    fs::create_directories(sub);
    // Defect 8: this was a bare std::ios_base::failure without the path.
    CHECK(error_of([&] { tg::nn::read_state_file(sub); }) ==
          "read_state_file(" + sub + "): is a directory, expected a tapegrad state file");
    tg::nn::Linear lin(2, 3);
    CHECK(error_of([&] { lin.load_state(sub); }) ==
          "read_state_file(" + sub + "): is a directory, expected a tapegrad state file");
    const std::string missing = dir.file("absent.tgs");
    CHECK(error_of([&] { tg::nn::read_state_file(missing); }) ==
          "read_state_file(" + missing + "): cannot open the file: No such file or directory");
    // The IDX reader, too, says what is wrong with a directory (it said "read error").
    CHECK(error_of([&] { tg::data::read_idx(sub); }) ==
          "idx: " + sub + ": byte offset 0: is a directory, expected an IDX file");
}

TEST_CASE("a tensor name with NUL and control characters is escaped in messages") {
    // Defect 8: a NUL cut the message before "at byte offset N"; control characters reached
    // the terminal.
    TempDir dir;
    const std::string path = dir.file("evil.tgs");
    write_bytes(path, state_header_one_tensor(std::string("a\0b\x1b[31m\\", 9), {2}));
    CHECK(error_of([&] { tg::nn::read_state_file(path); }) ==
          "read_state_file(" + path +
              "): truncated or corrupt file: the values of 'a\\x00b\\x1b[31m\\\\' [2] needs 16 "
              "bytes, only 0 remain at byte offset 53");
    CHECK(tg::nn::printable(std::string("ok_name.1\x7f\xc3\xa9", 12)) ==
          "ok_name.1\\x7f\\xc3\\xa9");
}

TEST_CASE("a shape with a 0 and huge sizes is a corrupt shape, not undefined behaviour") {
    // Defect 7: [0, 2^40, 2^40] passed (the count stops at 0) and overflowed xtensor's strides.
    TempDir dir;
    const std::string path = dir.file("zero.tgs");
    const std::uint64_t big = std::uint64_t{1} << 40;
    write_bytes(path, state_header_one_tensor("w", {0, big, big}));
    CHECK(error_of([&] { tg::nn::read_state_file(path); }) ==
          "read_state_file(" + path +
              "): corrupt shape [0, 1099511627776, 1099511627776] of 'w' at byte offset 29");
    // An empty tensor with reasonable sizes is fine.
    tg::nn::write_state_file(path, {{"e", Tensor::zeros({0, 3, 4})}});
    const auto s = tg::nn::read_state_file(path);
    CHECK(s.at(0).second.shape() == tg::Shape{0, 3, 4});
}

TEST_CASE("idx: a 0 size with huge others is rejected by the size limit") {
    TempDir dir;
    const std::string path = dir.file("zero-idx");
    const std::string b{0,      0,      8,      4,      0,      0,      0,
                        0,      '\xff', '\xff', '\xff', '\xff', '\xff', '\xff',
                        '\xff', '\xff', '\xff', '\xff', '\xff', '\xff'};
    write_bytes(path, b);
    CHECK(error_of([&] { tg::data::read_idx(path); }) ==
          "idx: " + path +
              ": byte offset 4: dimensions [0, 4294967295, 4294967295, 4294967295] declare more "
              "than 1073741824 bytes of data (the reader's limit)");
}

// ---- load_state_dict, optimisers ------------------------------------------------------------

TEST_CASE("load_state_dict compares shapes, not element counts: [3, 2] into a [2, 3] weight") {
    tg::nn::Linear lin(3, 2);  // weight [2, 3]
    auto state = lin.state_dict();
    const Array before = lin.weight.value();
    for (auto& [name, t] : state) {
        if (name == "weight") t = Tensor(Array::from_shape({3, 2}));
    }
    CHECK(error_of([&] { lin.load_state_dict(state); }) ==
          "load_state_dict: 'weight' has shape [3, 2] in the state, the model expects [2, 3]");
    CHECK(lin.weight.value() == before);
    CHECK(lin.weight.shape() == tg::Shape{2, 3});
}

TEST_CASE("optimisers reject a gradient whose shape is not the parameter's") {
    // Defect 1 (second half): a 0-d gradient of a [3] parameter was read as 3 floats.
    for (const bool adam : {false, true}) {
        CAPTURE(adam);
        Tensor ok(Array{1, 2}, true, "ok");
        Tensor p(Array{1, 2, 3}, true, "layer.weight");
        ok.accumulate_grad(Array{1, 1});
        p.accumulate_grad(Array(tg::real(1)));
        std::unique_ptr<tg::optim::Optimizer> opt;
        if (adam) {
            opt = std::make_unique<tg::optim::Adam>(std::vector<Tensor>{ok, p});
        } else {
            opt = std::make_unique<tg::optim::SGD>(std::vector<Tensor>{ok, p},
                                                   tg::optim::SGDOptions{.lr = 0.1});
        }
        CHECK(error_of([&] { opt->step(); }) ==
              std::string(adam ? "Adam" : "SGD") +
                  ".step: the gradient of parameter 1 'layer.weight' has shape [], the parameter "
                  "has shape [3]");
        CHECK(ok.value() == Array{1, 2});  // checked before anything changed
    }
}

// ---- the default generator ------------------------------------------------------------------

TEST_CASE("the default generator is safe to share between threads; each array is one run") {
    // Defect 6: two threads building layers raced inside mt19937_64.
    const tg::Generator saved = tg::default_generator();
    constexpr std::size_t kN = 2000000;  // ~20 ms per array: the threads overlap
    tg::manual_seed(99);
    const Array first = tg::uniform({kN}, 0, 1);
    const Array second = tg::uniform({kN}, 0, 1);
    std::vector<std::uint64_t> sequential;
    for (int i = 0; i < 2000; ++i)
        sequential.push_back(tg::default_generator().next());

    tg::manual_seed(99);
    Array arrays[2];
    std::vector<std::uint64_t> draws[2];
    std::atomic<int> ready{0}, arrays_done{0};
    auto worker = [&](int k) {
        ++ready;
        while (ready < 2) {
        }
        arrays[k] = tg::uniform({kN}, 0, 1);  // whole arrays, under the lock
        ++arrays_done;
        while (arrays_done < 2) {  // both arrays first, as in the sequential run
        }
        for (int i = 0; i < 1000; ++i)
            draws[k].push_back(tg::default_generator().next());  // single draws, interleaved
    };
    std::thread a(worker, 0), b(worker, 1);
    a.join();
    b.join();
    tg::default_generator() = saved;

    // Each thread got one of the two sequential arrays, whole.
    const bool in_order = arrays[0] == first && arrays[1] == second;
    const bool swapped = arrays[0] == second && arrays[1] == first;
    CHECK((in_order || swapped));
    // Together the single draws are exactly the sequential ones (none lost or repeated).
    std::vector<std::uint64_t> together = draws[0];
    together.insert(together.end(), draws[1].begin(), draws[1].end());
    std::sort(together.begin(), together.end());
    std::sort(sequential.begin(), sequential.end());
    CHECK(together == sequential);
}

TEST_CASE("copies of the default generator are ordinary generators with the same stream") {
    const tg::Generator saved = tg::default_generator();
    tg::manual_seed(5);
    tg::Generator copy = tg::default_generator();
    CHECK_FALSE(copy.is_default());
    CHECK(tg::default_generator().is_default());
    CHECK(copy.next() == tg::default_generator().next());
    tg::default_generator() = tg::Generator(6);  // assigning keeps the default locked
    CHECK(tg::default_generator().is_default());
    CHECK(tg::default_generator().next() == tg::Generator(6).next());
    tg::default_generator() = saved;
}
