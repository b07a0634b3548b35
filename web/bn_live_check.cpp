// web/bn_live_check.cpp — the native side of the chapter page's self-check: runs the live
// figure's functions (bn_live.cpp, the same source emscripten compiles for the page) on fixed
// cases and writes every result to OUT/bn_live_native.json. The page runs the same cases in
// the browser's WebAssembly and compares (scripts/ci/page_live.sh reads its verdict):
// doubles must be bit-identical, floats within 1 ulp.
//
//     ./build/release/examples/bn_live_check out/ch310
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>

#include "bn_live.hpp"

namespace {

std::string num(double v) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", v);  // round-trips a double exactly
    return buf;
}

template <class T>
std::string list(const T* p, int n) {
    std::string s = "[";
    for (int i = 0; i < n; ++i)
        s += (i ? "," : "") + num(static_cast<double>(p[i]));
    return s + "]";
}

void check(int status) {
    if (status != 0) {
        std::cerr << "bn_live_check: " << bnl_error() << "\n";
        std::exit(1);
    }
}

struct Case {
    int B;
    double mean, scale, gamma, beta, seed;
};

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: bn_live_check OUT_DIR   (writes OUT_DIR/bn_live_native.json)\n";
        return 2;
    }
    const std::string path = std::string(argv[1]) + "/bn_live_native.json";
    const int F = bnl_features(), bins = 40;
    std::string json = "{\"features\": " + std::to_string(F) +
                       ", \"bins\": " + std::to_string(bins) + ",\n \"forward\": [\n";
    const Case cases[] = {{2, 5, 3, 1, 0, 0}, {8, 5, 3, 1, 0, 1}, {512, -2, 0.5, 2, 1, 7}};
    bool first = true;
    for (const Case& c : cases) {
        check(bnl_draw(c.B, c.mean, c.scale, c.seed));
        check(bnl_normalise(c.gamma, c.beta, bins));
        const int n = c.B * F, e = bnl_bins() + 1;
        json += std::string(first ? "" : ",\n") + "  {\"B\": " + std::to_string(c.B) +
                ", \"mean\": " + num(c.mean) + ", \"scale\": " + num(c.scale) +
                ", \"gamma\": " + num(c.gamma) + ", \"beta\": " + num(c.beta) +
                ", \"seed\": " + num(c.seed) + ",\n   \"x\": " + list(bnl_x(), n) +
                ",\n   \"y\": " + list(bnl_y(), n) +
                ",\n   \"batch_mean\": " + list(bnl_mean(), F) +
                ",\n   \"batch_var\": " + list(bnl_var(), F) +
                ",\n   \"invstd\": " + list(bnl_invstd(), F) +
                ",\n   \"x_edges\": " + list(bnl_x_edges(), e) +
                ",\n   \"x_density\": " + list(bnl_x_density(), e - 1) +
                ",\n   \"y_edges\": " + list(bnl_y_edges(), e) +
                ",\n   \"y_density\": " + list(bnl_y_density(), e - 1) + "}";
        first = false;
    }
    check(bnl_noise(8, 50, 5, 3, 3, bins));
    const int m = bnl_noise_count(), e = bins + 1;
    json +=
        "],\n \"noise\": {\"B\": 8, \"draws\": 50, \"mean\": 5, \"scale\": 3, \"seed\": 3,\n"
        "   \"mu\": " +
        list(bnl_noise_mu(), m) + ",\n   \"var\": " + list(bnl_noise_var(), m) +
        ",\n   \"mu_edges\": " + list(bnl_noise_mu_edges(), e) +
        ",\n   \"mu_density\": " + list(bnl_noise_mu_density(), e - 1) +
        ",\n   \"var_edges\": " + list(bnl_noise_var_edges(), e) +
        ",\n   \"var_density\": " + list(bnl_noise_var_density(), e - 1) +
        ",\n   \"summary\": " + list(bnl_noise_summary(), 4) + "},\n";
    check(bnl_running(16, 30, 0.1, 5, 3, 4));
    const int s = bnl_steps();
    json +=
        " \"running\": {\"B\": 16, \"steps\": 30, \"momentum\": 0.1, \"mean\": 5, \"scale\": 3, "
        "\"seed\": 4,\n   \"step_mu\": " +
        list(bnl_step_mu(), s) + ",\n   \"step_var\": " + list(bnl_step_var_unbiased(), s) +
        ",\n   \"running_mean\": " + list(bnl_running_mean(), s) +
        ",\n   \"running_var\": " + list(bnl_running_var(), s) + "}}\n";
    std::ofstream out(path);
    out << json;
    out.close();
    if (!out) {
        std::cerr << "bn_live_check: cannot write " << path << "\n";
        return 1;
    }
    std::cout << "bn_live_check: wrote " << path << "\n";
    return 0;
}
