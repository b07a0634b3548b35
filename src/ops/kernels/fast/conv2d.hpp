// What the fast conv2d kernels have beyond the pair in ../conv2d.hpp: the direct kernels' limits,
// the block-size knob and the GEMM versions (see conv2d.cpp).
#pragma once

#include <cstddef>

#include "../conv2d.hpp"
#include "../shapes.hpp"
#include "tapegrad/config.hpp"

namespace tg::kernels::fast {

/// The direct kernels take layers with at most this many numbers per filter, C kH kW, and at
/// most this many filters, O (see conv2d.cpp for the rule and docs/performance.md for the
/// measurements behind it).
inline constexpr std::size_t kMaxDirectFilter = 150;
inline constexpr std::size_t kMaxDirectFilters = 16;

/// How many images the GEMM kernels put in one block (blocks are what threads share; dW and db
/// are summed per block, then the blocks in order). 0, the default: chosen from the shapes
/// alone, enough images for 2^22 multiply-adds per block. The tests set 1 to run many blocks.
/// Never depends on the thread count, so neither do the numbers.
inline std::size_t conv2d_images_per_block = 0;

/// Whether conv2d_forward and conv2d_backward may take the kernels with lanes across channels
/// (conv2d_lanes.hpp) where their rules pick them; false: the direct kernels as before them (a
/// before/after in one binary: bench_tapegrad --no-lanes). Never depends on the thread count.
inline bool conv2d_use_lanes = true;

/// True if conv2d_backward computes dW and db with the lanes kernels (for a layer it runs
/// directly): at most two registers of filters and filters of at least kMinLanesFilter numbers.
bool conv2d_backward_weight_takes_lanes(const Conv2dShape& s);

/// True if conv2d_backward computes dx with the lanes kernels: at most two registers of input
/// channels, and at least half a register of them.
bool conv2d_backward_input_takes_lanes(const Conv2dShape& s);

/// The shortest filter, C kH kW, whose weight gradient the lanes kernels compute (below it the
/// transposition of g per image costs more than the lanes save: see conv2d.cpp).
inline constexpr std::size_t kMinLanesFilter = 64;

/// Whether conv2d_forward and conv2d_backward may take the kernels for one input channel
/// (conv2d_one_channel.hpp) where their rule picks them; false: the kernels as before them (a
/// before/after in one binary). Never depends on the thread count.
inline bool conv2d_use_one_channel = true;

/// True if conv2d_forward computes y, and conv2d_backward dW and db, with the kernels for one
/// input channel (conv2d_one_channel.hpp): C = 1, 3x3 filters, within the direct rule, at least
/// one SIMD vector of output columns (see conv2d.cpp for the measurements).
bool conv2d_takes_one_channel(const Conv2dShape& s);

/// True if conv2d_forward computes y with the lanes kernels (conv2d_lanes.hpp; lanes across
/// output channels): at most two registers of filters, each at least kMinLanesFilter long.
bool conv2d_forward_takes_lanes(const Conv2dShape& s);

/// True if conv2d_forward runs the direct kernels (conv2d_direct.hpp) for this layer, false if
/// im2col + GEMM per image. Depends on the layer's shape alone.
bool conv2d_forward_takes_direct(const Conv2dShape& s);

/// The same for conv2d_backward (dx, dW and db together).
bool conv2d_backward_takes_direct(const Conv2dShape& s);

/// conv2d_forward by im2col + one GEMM per image, whatever the shape (for benchmarks and tests).
void conv2d_gemm_forward(real* y, const real* x, const real* weight, const real* bias,
                         const Conv2dShape& s);

/// conv2d_backward by im2col + GEMM per image, whatever the shape.
void conv2d_gemm_backward(real* dx, real* dweight, real* dbias, const real* dy, const real* x,
                          const real* weight, const Conv2dShape& s);

}  // namespace tg::kernels::fast
