// Durability of checkpoint saving under SIGKILL (issue 16; CTest `durability_save_kill`).
//
// A child process saves checkpoints in a loop, generation after generation (every value of
// generation g equals g), and is killed with SIGKILL at a random moment; this repeats
// `kills` times. After every kill the checkpoint must load (its CRC holds) and be one whole
// generation, never older than the last one seen (old-or-new). Temporary files a killed save
// leaves may exist until the next successful save; after the final save nothing but the
// checkpoint may remain in the directory.
//
// usage: durability_save_kill [kills = 30] [seed = 1]; exits 0 when every check held.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <thread>

#include "tapegrad/nn/state_file.hpp"

namespace fs = std::filesystem;

namespace {

// ~2 MB per file (float64 on disk), so a kill often lands inside the write or the fsync.
tg::nn::NamedTensors generation(double g) {
    return {{"features.0.weight", tg::Tensor::full({250000}, static_cast<tg::real>(g))},
            {"features.1.running_var", tg::Tensor::full({16}, static_cast<tg::real>(g))}};
}

// The generation the file holds; throws if it does not load or mixes generations.
double generation_on_disk(const std::string& path) {
    const tg::nn::NamedTensors s = tg::nn::read_state_file(path);
    const double g = s.at(0).second.value().flat(0);
    for (const auto& [name, t] : s) {
        for (const tg::real v : t.value()) {
            if (v != static_cast<tg::real>(g)) {
                throw std::runtime_error("mixed generations in " + name);
            }
        }
    }
    return g;
}

int temporaries_in(const fs::path& dir) {
    int n = 0;
    for (const auto& e : fs::directory_iterator(dir))
        n += e.path().filename().string().find(".tmp-") != std::string::npos;
    return n;
}

}  // namespace

int main(int argc, char** argv) {
    const int kills = argc > 1 ? std::atoi(argv[1]) : 30;
    const unsigned seed = argc > 2 ? static_cast<unsigned>(std::atoi(argv[2])) : 1u;
    const fs::path dir =
        fs::temp_directory_path() / ("tapegrad_durability_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    const std::string path = (dir / "model.tgs").string();
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> delay_us(0, 60000);

    int failures = 0, max_temps = 0, temps_after_kills = 0;
    double last = 0;
    tg::nn::write_state_file(path, generation(last));
    const auto t0 = std::chrono::steady_clock::now();
    for (int k = 0; k < kills; ++k) {
        const pid_t child = ::fork();
        if (child < 0) {
            std::perror("fork");
            return 2;
        }
        if (child == 0) {  // the saver: generation after generation until killed
            for (double g = last + 1;; g += 1)
                tg::nn::write_state_file(path, generation(g));
        }
        std::this_thread::sleep_for(std::chrono::microseconds(delay_us(rng)));
        ::kill(child, SIGKILL);
        int status = 0;
        ::waitpid(child, &status, 0);
        if (!WIFSIGNALED(status)) {
            std::fprintf(stderr, "kill %d: the saver ended by itself (status %d)\n", k, status);
            ++failures;
        }
        try {
            const double g = generation_on_disk(path);
            if (g < last) {
                std::fprintf(stderr, "kill %d: generation %g on disk, older than %g\n", k, g, last);
                ++failures;
            }
            last = g;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "kill %d: the checkpoint does not load: %s\n", k, e.what());
            ++failures;
        }
        const int temps = temporaries_in(dir);
        temps_after_kills += temps > 0;
        max_temps = std::max(max_temps, temps);
    }
    // The next successful save clears what the killed ones left.
    tg::nn::write_state_file(path, generation(last + 1));
    const int left = temporaries_in(dir);
    if (left != 0) {
        std::fprintf(stderr, "%d temporary files remain after a successful save\n", left);
        ++failures;
    }
    if (generation_on_disk(path) != last + 1) ++failures;
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf(
        "durability: %d kills in %.1f s, last generation %g; a temporary file was present "
        "after %d kills (at most %d at once); %d after the final save; %d failures\n",
        kills, seconds, last, temps_after_kills, max_temps, left, failures);
    fs::remove_all(dir);
    return failures == 0 ? 0 : 1;
}
