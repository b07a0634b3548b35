// Module mechanics: names, modes, EvalGuard, hooks, freezing, the state dict and its file.
#include <unistd.h>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "tapegrad/nn/module.hpp"
#include "tapegrad/nn/sequential.hpp"
#include "tapegrad/nn/state_file.hpp"
#include "tapegrad/ops/elementwise.hpp"
#include "tapegrad/tape.hpp"
#include "testing.hpp"

namespace fs = std::filesystem;
using tg::Array;
using tg::Tensor;
using tg::nn::Module;
using tg::nn::Sequential;

namespace {

// A layer built only from core ops, for testing the mechanics: y = x * scale + shift, with a
// buffer (named like BatchNorm's, to check qualified names).
struct Affine : Module {
    Tensor scale, shift, running_mean;
    explicit Affine(std::size_t n, tg::real s = 1) {
        scale = register_parameter("scale", Tensor::full({n}, s));
        shift = register_parameter("shift", Tensor::zeros({n}));
        running_mean = register_buffer("running_mean", Tensor::zeros({n}));
    }
    Tensor forward(const Tensor& x) override { return tg::add(tg::mul(x, scale), shift); }
    std::string type_name() const override { return "Affine"; }
    std::string extra_repr() const override { return std::to_string(scale.numel()); }
};

// features = Sequential(Affine, Affine), head = Affine: the nesting of a small CNN.
struct Net : Module {
    std::shared_ptr<Sequential> features;
    std::shared_ptr<Affine> head;
    explicit Net(std::size_t n = 3) {
        features = register_module("features", Sequential(Affine(n, 2), Affine(n, 3)));
        head = register_module("head", Affine(n, 5));
    }
    Tensor forward(const Tensor& x) override { return (*head)((*features)(x)); }
    std::string type_name() const override { return "Net"; }
};

std::vector<std::string> names_of(const tg::nn::NamedTensors& named) {
    std::vector<std::string> out;
    for (const auto& [name, t] : named)
        out.push_back(name);
    return out;
}

using tgtest::TempDir;

// Gives every parameter and buffer distinct values, so a round trip is a real test.
void scramble(Module& m, tg::real base) {
    tg::real v = base;
    for (auto& [name, t] : m.state_dict()) {
        for (auto& x : t.value())
            x = (v += tg::real(0.37));
    }
}

}  // namespace

TEST_CASE("qualified names of parameters, buffers and modules") {
    Net net;
    CHECK(names_of(net.named_parameters()) ==
          std::vector<std::string>{"features.0.scale", "features.0.shift", "features.1.scale",
                                   "features.1.shift", "head.scale", "head.shift"});
    CHECK(names_of(net.named_buffers()) == std::vector<std::string>{"features.0.running_mean",
                                                                    "features.1.running_mean",
                                                                    "head.running_mean"});
    // The state dict goes module by module: parameters, then buffers.
    CHECK(names_of(net.state_dict()) ==
          std::vector<std::string>{"features.0.scale", "features.0.shift",
                                   "features.0.running_mean", "features.1.scale",
                                   "features.1.shift", "features.1.running_mean", "head.scale",
                                   "head.shift", "head.running_mean"});
    std::vector<std::string> modules;
    for (auto& [name, m] : net.named_modules())
        modules.push_back(name + ":" + m->type_name());
    CHECK(modules == std::vector<std::string>{":Net", "features:Sequential", "features.0:Affine",
                                              "features.1:Affine", "head:Affine"});
    // Each module knows its place, and the tensors carry their names (shown by Tape::print).
    CHECK((*net.features)[1].name() == "features.1");
    CHECK(net.features->at<Affine>(1).running_mean.name() == "features.1.running_mean");
    // Names relative to a submodule, as in PyTorch.
    CHECK(names_of(net.features->named_buffers()) ==
          std::vector<std::string>{"0.running_mean", "1.running_mean"});
    CHECK(net.parameters().size() == 6);
    CHECK(net.parameters()[2].is(net.features->at<Affine>(1).scale));
    CHECK(net.parameters()[0].requires_grad());
    CHECK_FALSE(net.buffers()[0].requires_grad());
}

TEST_CASE("a module shared twice is listed once and its parameters counted once") {
    auto shared = std::make_shared<Affine>(2);
    Sequential seq(shared, shared);
    CHECK(seq.named_modules().size() == 2);
    CHECK(names_of(seq.named_parameters()) == std::vector<std::string>{"0.scale", "0.shift"});
}

TEST_CASE("registration errors name the module and the problem") {
    Affine a(2);
    CHECK_THROWS_WITH_AS(a.register_parameter("scale", Tensor::ones({2})),
                         "Affine: cannot register parameter 'scale': there is already a "
                         "parameter of that name",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(a.register_buffer("a.b", Tensor::ones({2})),
                         doctest::Contains("a name cannot contain '.'"), std::invalid_argument);
    Net net;
    CHECK_THROWS_WITH_AS(net.features->at<Sequential>(0),
                         "Sequential::at: layer 0 is a Affine, not the type requested",
                         std::invalid_argument);
    CHECK_THROWS_AS((*net.features)[2], std::out_of_range);
    Module plain;
    CHECK_THROWS_WITH_AS(plain(Tensor::ones({1})), doctest::Contains("no one-input forward"),
                         std::logic_error);
}

TEST_CASE("Sequential forward applies the layers in order") {
    Sequential seq(Affine(2, 2), Affine(2, 3));
    seq.at<Affine>(1).shift.value() = Array{1, -1};
    // (x * 2) * 3 + [1, -1]
    CHECK(seq(Tensor(Array{1, 2})).value() == Array{7, 11});
    CHECK(seq.size() == 2);
    // push_back returns the layer as its own type; names default to the index.
    Affine& third = seq.push_back(Affine(2, -1));
    CHECK(third.name() == "2");
    auto shared = std::make_shared<Affine>(2);
    Affine& named = seq.push_back("last", shared);
    CHECK(&named == shared.get());
    CHECK(shared->scale.name() == "last.scale");
    CHECK(seq(Tensor(Array{1, 2})).value() == Array{-7, -11});
}

TEST_CASE("train() and eval() recurse into every descendant") {
    Net net;
    CHECK(net.is_training());
    net.eval();
    for (const auto& named : net.named_modules())  // (clang 14: no structured binding here)
        CHECK_MESSAGE(!named.second->is_training(), named.first);
    net.features->train();
    CHECK_FALSE(net.is_training());
    CHECK(net.features->at<Affine>(0).is_training());
    CHECK_FALSE(net.head->is_training());
}

TEST_CASE("EvalGuard restores every module's own mode, also when an exception is thrown") {
    Net net;
    net.features->at<Affine>(1).eval();  // mixed modes: everything training except features.1
    std::map<std::string, bool> before;
    for (auto& [name, m] : net.named_modules())
        before[name] = m->is_training();
    try {
        tg::nn::EvalGuard guard(net);
        for (const auto& named : net.named_modules())
            CHECK_MESSAGE(!named.second->is_training(), named.first);
        throw std::runtime_error("evaluation failed");
    } catch (const std::runtime_error&) {
    }
    for (const auto& named : net.named_modules())
        CHECK_MESSAGE(named.second->is_training() == before[named.first], named.first);
    CHECK_FALSE(net.features->at<Affine>(1).is_training());
}

TEST_CASE("forward hooks receive the qualified name, the input and the output") {
    Net net(2);
    std::vector<std::string> calls;
    std::map<std::string, Array> outputs;
    auto handle = net.register_forward_hook_all(
        [&](const std::string& name, const Tensor& in, const Tensor& out) {
            calls.push_back(name);
            outputs[name] = out.value();
            if (name == "features.1") CHECK(in.value() == Array{2, 4});  // features.0's output
        });
    const Tensor y = net(Tensor(Array{1, 2}));
    // Hooks run after each forward: the innermost modules finish first.
    CHECK(calls == std::vector<std::string>{"features.0", "features.1", "features", "head", ""});
    CHECK(outputs["features.0"] == Array{2, 4});
    CHECK(outputs["features"] == Array{6, 12});
    CHECK(outputs[""] == y.value());
    CHECK(y.value() == Array{30, 60});

    // A hook on one module; removing the first set leaves it alone.
    int head_calls = 0;
    auto head_handle =
        net.head->register_forward_hook([&](const std::string& name, const Tensor&, const Tensor&) {
            CHECK(name == "head");
            ++head_calls;
        });
    handle.remove();
    calls.clear();
    net(Tensor(Array{1, 2}));
    CHECK(calls.empty());
    CHECK(head_calls == 1);
    head_handle.remove();
    head_handle.remove();  // a second remove does nothing
    net(Tensor(Array{1, 2}));
    CHECK(head_calls == 1);
}

TEST_CASE("freeze stops gradients, unfreeze restores them; zero_grad clears them") {
    Net net(2);
    net.features->freeze();
    CHECK_FALSE(net.features->at<Affine>(0).scale.requires_grad());
    CHECK(net.head->scale.requires_grad());
    {
        tg::Tape tape;
        Tensor y = net(Tensor(Array{1, 2}));
        tape.backward(y, Array{1, 1});
    }
    CHECK_FALSE(net.features->at<Affine>(0).scale.has_grad());
    // d(y)/d(head.scale) = features(x) = [6, 12]
    CHECK(net.head->scale.grad() == Array{6, 12});
    net.unfreeze();
    for (auto& p : net.parameters())
        CHECK(p.requires_grad());
    net.zero_grad();
    CHECK(net.head->scale.grad() == Array{0, 0});
    net.zero_grad(/*set_to_none=*/true);
    CHECK_FALSE(net.head->scale.has_grad());
}

TEST_CASE("print shows the module tree like PyTorch") {
    Net net;
    std::ostringstream out;
    out << net;
    CHECK(out.str() ==
          "Net(\n"
          "  (features): Sequential(\n"
          "    (0): Affine(3)\n"
          "    (1): Affine(3)\n"
          "  )\n"
          "  (head): Affine(3)\n"
          ")\n");  // << ends the line, as Python's print(model) does
}

TEST_CASE("state file round trip: a fresh model gets exactly the saved values") {
    TempDir dir;
    const std::string path = dir.path / "net.tgs";
    Net a;
    scramble(a, tg::real(0.1));
    a.save_state(path);
    CHECK(dir.files() == std::vector<std::string>{"net.tgs"});  // the temporary file is gone

    Net b;
    const Tensor scale_before = b.head->scale;
    b.load_state(path);
    const auto sa = a.state_dict(), sb = b.state_dict();
    REQUIRE(sa.size() == sb.size());
    for (std::size_t i = 0; i < sa.size(); ++i) {
        CHECK_MESSAGE(sa[i].second.value() == sb[i].second.value(), sa[i].first);
    }
    CHECK(b.head->scale.is(scale_before));  // loaded in place: optimisers keep their handles
    CHECK(b.head->scale.requires_grad());

    // Saving over an existing file replaces it.
    scramble(a, tg::real(7));
    a.save_state(path);
    b.load_state(path);
    CHECK(b.head->shift.value() == a.head->shift.value());
    CHECK(dir.files() == std::vector<std::string>{"net.tgs"});
}

TEST_CASE("state file layout: magic, version, count, entries, CRC-32") {
    TempDir dir;
    const std::string path = dir.path / "one.tgs";
    tg::nn::write_state_file(path, {{"w", Tensor(Array{{1.5, -2}})}});
    std::ifstream in(path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // 8 magic + 4 version + 8 count + (8 + 1 name) + (8 + 2 * 8 shape) + 2 * 8 values + 4 crc
    CHECK(bytes.size() == 8 + 4 + 8 + 9 + 24 + 16 + 4);
    CHECK(bytes.substr(0, 8) == std::string("TGSTATE\0", 8));
    CHECK(bytes[8] == 1);               // version 1, little-endian
    CHECK(bytes.substr(28, 1) == "w");  // after the u64 name length
    CHECK(bytes.substr(53, 8) == std::string("\0\0\0\0\0\0\xf8\x3f", 8));  // 1.5 as float64
}

TEST_CASE("loading a mismatching state names the first mismatch and changes nothing") {
    TempDir dir;
    const std::string path = dir.path / "net3.tgs";
    Net three(3);
    three.save_state(path);

    Net four(4);
    scramble(four, tg::real(0.5));
    const auto before = four.state_dict();
    std::vector<Array> values;
    for (auto& [name, t] : before)
        values.push_back(t.value());
    CHECK_THROWS_WITH_AS(four.load_state(path),
                         ("load_state(" + path +
                          "): load_state_dict: 'features.0.scale' has shape [3] in the state, "
                          "the model expects [4]")
                             .c_str(),
                         std::invalid_argument);
    for (std::size_t i = 0; i < before.size(); ++i) {
        CHECK_MESSAGE(before[i].second.value() == values[i], before[i].first);
    }

    // Missing and unexpected names. Only the last entry is wrong, so everything before it
    // would have been assigned by a loader that does not validate first.
    auto state = three.state_dict();
    state.pop_back();
    Net other(3);
    scramble(other, tg::real(9));
    const Array shift_before = other.head->shift.value();
    CHECK_THROWS_WITH_AS(other.load_state_dict(state),
                         "load_state_dict: missing 'head.running_mean' [3] (the model has it, the "
                         "state does not)",
                         std::invalid_argument);
    CHECK(other.head->shift.value() == shift_before);
    state.emplace_back("head.running_mean", Tensor::zeros({3}));
    state.emplace_back("head.extra", Tensor::zeros({1}));
    CHECK_THROWS_WITH_AS(other.load_state_dict(state),
                         "load_state_dict: unexpected 'head.extra' [1] (the state has it, the "
                         "model does not)",
                         std::invalid_argument);
    CHECK(other.head->shift.value() == shift_before);
}

TEST_CASE("a failed save leaves no partial or temporary file behind") {
    TempDir dir;
    Net net;
    // Into a directory that does not exist: nothing can be created.
    const std::string missing = dir.path / "no_such_dir" / "net.tgs";
    CHECK_THROWS_WITH_AS(net.save_state(missing), doctest::Contains(missing.c_str()),
                         std::runtime_error);
    CHECK(dir.files().empty());
    // Over a directory: the temporary file is written, the rename fails, the file is removed
    // and what was there is untouched.
    const fs::path target = dir.path / "occupied";
    fs::create_directories(target / "inside");
    CHECK_THROWS_WITH_AS(net.save_state(target), doctest::Contains("cannot rename"),
                         std::runtime_error);
    CHECK(dir.files() == std::vector<std::string>{"occupied"});
    CHECK(fs::is_directory(target / "inside"));
}

TEST_CASE("a truncated or corrupt state file is rejected with the file name and byte offset") {
    TempDir dir;
    const std::string path = dir.path / "net.tgs";
    Net net;
    scramble(net, tg::real(1));
    net.save_state(path);
    std::ifstream in(path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    in.close();
    const std::string bad = dir.path / "bad.tgs";
    const auto write_bad = [&](const std::string& content) {
        std::ofstream(bad, std::ios::binary | std::ios::trunc) << content;
    };

    // Every possible truncation fails cleanly, naming the file and an offset.
    Net fresh;
    const Array before = fresh.head->scale.value();
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        write_bad(bytes.substr(0, n));
        try {
            fresh.load_state(bad);
            FAIL("a file truncated to " << n << " bytes was accepted");
        } catch (const std::runtime_error& e) {
            const std::string what = e.what();
            CHECK_MESSAGE(what.find(bad) != std::string::npos, what);
            CHECK_MESSAGE(what.find("at byte offset") != std::string::npos, what);
        }
    }
    CHECK(fresh.head->scale.value() == before);

    // The exact message for a cut inside the first tensor's values.
    // (8 magic + 4 version + 8 count + 8 + 16 name + 8 + 8 shape: the values start at 60)
    write_bad(bytes.substr(0, 63));
    CHECK_THROWS_WITH_AS(fresh.load_state(bad),
                         ("read_state_file(" + bad +
                          "): truncated or corrupt file: the values of 'features.0.scale' [3] "
                          "needs 24 bytes, only 3 remain at byte offset 60")
                             .c_str(),
                         std::runtime_error);

    // A flipped bit in a value is caught by the checksum.
    std::string flipped = bytes;
    flipped[60] = static_cast<char>(flipped[60] ^ 0x10);
    write_bad(flipped);
    CHECK_THROWS_WITH_AS(fresh.load_state(bad), doctest::Contains("checksum mismatch"),
                         std::runtime_error);
    CHECK(fresh.head->scale.value() == before);

    write_bad("PK\x03\x04 not a checkpoint at all");
    CHECK_THROWS_WITH_AS(fresh.load_state(bad), doctest::Contains("magic header"),
                         std::runtime_error);
    write_bad(bytes + "x");
    CHECK_THROWS_WITH_AS(fresh.load_state(bad),
                         doctest::Contains("unexpected data after the checksum"),
                         std::runtime_error);
    CHECK_THROWS_WITH_AS(fresh.load_state(dir.path / "absent.tgs"),
                         doctest::Contains("cannot open"), std::runtime_error);
}
