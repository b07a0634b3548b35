// The sizes of one conv2d or pooling call, shared by an op and its two kernels.
#pragma once

#include <algorithm>
#include <cstddef>

namespace tg::kernels {

/// conv2d: x [N, C, H, W], weight [O, C, kH, kW], y [N, O, OH, OW]; stride and padding the
/// same along both axes.
struct Conv2dShape {
    std::size_t n, c, h, w;  // input  [N, C, H, W]
    std::size_t o, kh, kw;   // weight [O, C, kH, kW]
    std::size_t oh, ow;      // output [N, O, OH, OW]
    std::size_t stride, pad;
    std::size_t k() const { return c * kh * kw; }  // length of one filter: rows of im2col
    std::size_t l() const { return oh * ow; }      // output positions per image
};

/// Pooling over k x k windows: x [N, C, H, W] as `planes` = N·C planes [H, W], y planes
/// [OH, OW].
struct Pool2dShape {
    std::size_t planes, h, w;  // input [N, C, H, W] as N C planes [H, W]
    std::size_t oh, ow;        // output planes [OH, OW]
    std::size_t k, stride, pad;
};

/// The rows (or columns) [begin, end) of a plane of size `in` that window i covers along one
/// axis: i·stride − pad ... i·stride − pad + k − 1, clipped to the plane (the padding takes no
/// part).
struct Window {
    std::size_t begin, end;
};
inline Window pool_window(std::size_t i, const Pool2dShape& s, std::size_t in) {
    const std::size_t start = i * s.stride;  // window start + pad (kept unsigned)
    const std::size_t begin = start < s.pad ? 0 : start - s.pad;
    const std::size_t end = std::min(start + s.k - s.pad, in);  // k > pad, so no underflow
    return {begin, end};
}

}  // namespace tg::kernels
