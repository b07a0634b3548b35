// web/bn_live.hpp — the chapter page's live BatchNorm figure, as a C API over tapegrad's own
// code: tg::normal draws the batch, the reference kernel (src/ops/kernels/reference/
// batch_norm.cpp) normalises it and updates the running statistics, tg::viz::histogram bins it.
// Compiled twice from the same source: to WebAssembly by emscripten for the page
// (scripts/build_live.sh) and natively into bn_live_check, which writes the values the page's
// self-check compares the browser's results with. One state, one thread; every function
// returns 0, or -1 with bnl_error() saying why.
#pragma once

#include <cstddef>

extern "C" {

/// The features per example, as the chapter's figure: x is [B, 64].
int bnl_features();
/// x [B, 64] from N(mean, scale²) drawn by tg::Generator(seed) (2 ≤ B ≤ 4096, scale > 0).
int bnl_draw(int B, double mean, double scale, double seed);
/// The current x (B·64 floats), writable: the self-check loads the native build's x here.
float* bnl_x();
int bnl_batch();
/// BatchNorm in training mode on the current x with the same γ, β for every feature, then
/// `bins`-bin histograms of all of x and all of y, each over its own range (the chapter's).
int bnl_normalise(double gamma, double beta, int bins);
const float* bnl_y();
const double* bnl_mean();    // μ_B per feature [64]
const double* bnl_var();     // σ²_B per feature [64] (biased)
const double* bnl_invstd();  // 1/sqrt(σ²_B + ε) [64]
int bnl_bins();
const double* bnl_x_edges();  // bins + 1
const double* bnl_x_density();
const double* bnl_y_edges();
const double* bnl_y_density();
/// The noise of the batch statistics: `draws` batches of B from one tg::Generator(seed);
/// μ_B and σ²_B of every feature of every batch (draws·64 values each), their `bins`-bin
/// histograms, and their means and sample variances (tg::viz::mean, tg::viz::variance).
int bnl_noise(int B, int draws, double mean, double scale, double seed, int bins);
int bnl_noise_count();
const double* bnl_noise_mu();
const double* bnl_noise_var();
const double* bnl_noise_mu_edges();
const double* bnl_noise_mu_density();
const double* bnl_noise_var_edges();
const double* bnl_noise_var_density();
/// [mean of μ_B, variance of μ_B, mean of σ²_B, variance of σ²_B] over all draws and features.
const double* bnl_noise_summary();
/// Training-mode steps on fresh batches of B (one tg::Generator(seed)), starting from PyTorch's
/// running_mean = 0, running_var = 1: per step, feature 0's μ_B, σ²_B·B/(B − 1) and its
/// running_mean, running_var after the update (batch_norm_update_running, momentum).
int bnl_running(int B, int steps, double momentum, double mean, double scale, double seed);
int bnl_steps();
const double* bnl_step_mu();
const double* bnl_step_var_unbiased();
const float* bnl_running_mean();
const float* bnl_running_var();
/// Why the last call returned -1 ("" after a success).
const char* bnl_error();
}
