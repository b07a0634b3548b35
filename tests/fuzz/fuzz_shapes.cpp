// libFuzzer target: shape arithmetic with sizes near 2^63 (issue 24's overflow class).
//
// Input: an op chosen by the first byte, then sizes: a byte below 0xc0 is a small size (0-4),
// one above picks a size near an overflow boundary (2^31 - 1, 2^32, sqrt(2^63), 2^62, 2^63 + 3,
// SIZE_MAX, max_numel, ...), 0xff reads 8 raw bytes. Ops: Tensor::zeros/ones/full, reshape,
// broadcasting add, matmul, sum over a dim, transpose, conv2d (padding and stride near 2^31,
// 2^63), max_pool2d, nn::Linear, a DataLoader over images of rows x cols pixels; op 7 is conv2d
// forward and backward with each kernel set, op 10 nn::Linear forward and backward.
// Only what the library promises to refuse is ever large: an input tensor is built only when it
// really holds at most 4096 elements (a 0 among huge sizes holds none), a sum only when its
// output does too (summing away a 0 leaves a real array), matmul only with sizes <= 4096, a Linear
// only when its weight has at most 2^16 elements or more than max_numel, a conv2d/max_pool2d only
// when its output would hold more than max_numel elements or its work is small (computed here in
// 128 bits). Promises checked: each call returns a tensor whose element count is the product of its
// shape and whose non-zero sizes multiply to at most max_numel, or throws std::length_error,
// std::invalid_argument or std::runtime_error with a message; UBSan (signed overflow in
// xtensor's strides) and ASan watch the rest.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "fuzz_input.hpp"
#include "tapegrad/data/dataset.hpp"
#include "tapegrad/data/loader.hpp"
#include "tapegrad/kernels.hpp"
#include "tapegrad/nn/linear.hpp"
#include "tapegrad/ops/conv.hpp"
#include "tapegrad/ops/elementwise.hpp"
#include "tapegrad/ops/linalg.hpp"
#include "tapegrad/ops/pool.hpp"
#include "tapegrad/ops/reduce.hpp"
#include "tapegrad/ops/shape.hpp"
#include "tapegrad/tape.hpp"
#include "tapegrad/tensor.hpp"

namespace {

__extension__ typedef unsigned __int128 u128;  // (__extension__: -Wpedantic)
__extension__ typedef __int128 i128;
const u128 kMax = tg::max_numel;

std::size_t size_from(tgfuzz::Input& in) {
    static const std::size_t kNear[] = {(std::size_t{1} << 31) - 1,
                                        std::size_t{1} << 31,
                                        (std::size_t{1} << 32) - 1,
                                        std::size_t{1} << 32,
                                        std::size_t{1} << 33,
                                        3037000499,  // ⌊sqrt(2^63)⌋
                                        3037000500,
                                        std::size_t{1} << 40,
                                        std::size_t{1} << 61,
                                        std::size_t{1} << 62,
                                        (std::size_t{1} << 63) - 1,
                                        std::size_t{1} << 63,
                                        (std::size_t{1} << 63) + 3,
                                        SIZE_MAX,
                                        SIZE_MAX / 2,
                                        tg::max_numel,
                                        tg::max_numel + 1,
                                        tg::max_numel / 2 + 1,
                                        tg::max_numel / 3 + 1,
                                        65536,
                                        4096};
    const std::uint8_t b = in.byte();
    if (b < 0xc0) return b % 5;
    if (b == 0xff) return static_cast<std::size_t>(in.u64());
    return kNear[(b - 0xc0) % (sizeof kNear / sizeof kNear[0])];
}

tg::Shape shape_from(tgfuzz::Input& in, std::size_t max_rank = 4) {
    tg::Shape s(in.byte() % (max_rank + 1));
    for (auto& d : s)
        d = size_from(in);
    return s;
}

// The true element count, in 128 bits, saturated (every size below 2^64).
u128 count(const tg::Shape& s) {
    u128 n = 1;
    for (const auto d : s) {
        n *= d;
        if (n > (u128{1} << 100)) return u128{1} << 100;
    }
    return n;
}
u128 nonzero_product(const tg::Shape& s) {
    u128 n = 1;
    for (const auto d : s) {
        if (d != 0) n *= d;
        if (n > (u128{1} << 100)) return u128{1} << 100;
    }
    return n;
}
bool buildable(const tg::Shape& s) {
    return count(s) <= 4096 && nonzero_product(s) <= kMax;
}

void check_result(const tg::Tensor& t, const char* op) {
    const tg::Shape s = t.shape();
    if (nonzero_product(s) > kMax)
        tgfuzz::broken(std::string(op) +
                       ": a result whose non-zero sizes exceed max_numel: " + tg::shape_str(s));
    if (count(s) != t.numel())
        tgfuzz::broken(std::string(op) + ": a result whose shape " + tg::shape_str(s) +
                       " does not match its " + std::to_string(t.numel()) + " elements");
}

// After backward: every leaf has a gradient of its own shape.
void check_grads(const std::vector<tg::Tensor>& leaves, const char* op) {
    for (const tg::Tensor& t : leaves) {
        if (!t.has_grad() || t.grad().shape() != t.value().shape())
            tgfuzz::broken(std::string(op) + ": no gradient of shape " + tg::shape_str(t.shape()));
    }
}

// Sets the kernel set for one scope (the fuzzer runs every input in one process).
class KernelsGuard {
  public:
    explicit KernelsGuard(tg::Kernels k) : saved_(tg::kernels_in_use()) { tg::set_kernels(k); }
    ~KernelsGuard() { tg::set_kernels(saved_); }
    KernelsGuard(const KernelsGuard&) = delete;
    KernelsGuard& operator=(const KernelsGuard&) = delete;

  private:
    tg::Kernels saved_;
};

// The output size of a window op along one axis, or -1 when the window does not fit.
i128 window_out(std::size_t in, std::size_t pad, std::size_t k, std::size_t stride) {
    const i128 span = static_cast<i128>(in) + 2 * static_cast<i128>(pad);
    if (stride == 0 || span < static_cast<i128>(k)) return -1;
    return (span - static_cast<i128>(k)) / static_cast<i128>(stride) + 1;
}

// Whether a window op's output [N, C, OH, OW] is safe to attempt: refused (the window does not
// fit, or beyond max_numel), or small enough to compute: at most 2^out_bits elements and
// 2^mac_bits multiply-adds (`per_output` of them per output element). In between it would
// really be allocated and computed.
bool output_safe(std::size_t n, std::size_t c, i128 oh, i128 ow, u128 per_output, int out_bits = 22,
                 int mac_bits = 26) {
    if (oh < 0 || ow < 0) return true;
    if (oh >= (i128{1} << 64) || ow >= (i128{1} << 64)) return true;
    const tg::Shape s{n, c, static_cast<std::size_t>(oh), static_cast<std::size_t>(ow)};
    if (nonzero_product(s) > kMax) return true;
    return count(s) <= (u128{1} << out_bits) && count(s) * per_output <= (u128{1} << mac_bits);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    tgfuzz::Input in(data, size);
    const int op = in.byte() % 12;
    const char* name = "?";
    try {
        switch (op) {
            case 0: {
                name = "Tensor::zeros";
                const tg::Shape s = shape_from(in);
                if (count(s) > 4096 && nonzero_product(s) <= kMax) return 0;  // really allocates
                check_result(tg::Tensor::zeros(s), name);
                check_result(tg::Tensor::full(s, 2), name);
                break;
            }
            case 1: {
                name = "reshape";
                const tg::Shape s = shape_from(in), t = shape_from(in);
                if (!buildable(s)) return 0;
                check_result(tg::reshape(tg::Tensor::ones(s), t), name);
                break;
            }
            case 2: {
                name = "add (broadcasting)";
                const tg::Shape a = shape_from(in), b = shape_from(in);
                if (!buildable(a) || !buildable(b)) return 0;
                check_result(tg::add(tg::Tensor::ones(a), tg::Tensor::ones(b)), name);
                break;
            }
            case 3: {
                name = "matmul";
                const tg::Shape a = shape_from(in, 3), b = shape_from(in, 3);
                if (!buildable(a) || !buildable(b)) return 0;
                // [m, 0] @ [0, n] is a real [m, n] of zeros: huge sizes only where both are small.
                for (const tg::Shape* s : {&a, &b}) {
                    for (const auto d : *s)
                        if (d > 4096) return 0;
                }
                check_result(tg::matmul(tg::Tensor::ones(a), tg::Tensor::ones(b)), name);
                break;
            }
            case 4: {
                name = "sum over a dim";
                const tg::Shape s = shape_from(in);
                const int dim = static_cast<int>(in.byte() % 9) - 4;
                const bool keep = in.byte() & 1;
                if (!buildable(s)) return 0;
                // Summing away a 0 leaves the other sizes: a real array of zeros, maybe huge.
                tg::Shape out;
                const int rank = static_cast<int>(s.size());
                for (int i = 0; i < rank; ++i) {
                    if (i != (dim < 0 ? dim + rank : dim))
                        out.push_back(s[static_cast<std::size_t>(i)]);
                    else if (keep)
                        out.push_back(1);
                }
                if (count(out) > 4096 && nonzero_product(out) <= kMax) return 0;
                check_result(tg::sum(tg::Tensor::ones(s), {dim}, keep), name);
                break;
            }
            case 5: {
                name = "transpose";
                const tg::Shape s = shape_from(in);
                const int d0 = static_cast<int>(in.byte() % 9) - 4;
                const int d1 = static_cast<int>(in.byte() % 9) - 4;
                if (!buildable(s)) return 0;
                check_result(tg::transpose(tg::Tensor::ones(s), d0, d1), name);
                break;
            }
            case 6:
            case 7: {
                name = op == 6 ? "conv2d" : "conv2d backward";
                const tg::Shape x{size_from(in), size_from(in), size_from(in), size_from(in)};
                const tg::Shape w{size_from(in), x[1], size_from(in), size_from(in)};
                const std::size_t stride = size_from(in), pad = size_from(in);
                if (!buildable(x) || !buildable(w)) return 0;
                const i128 oh = window_out(x[2], pad, w[2], stride);
                const i128 ow = window_out(x[3], pad, w[3], stride);
                // The backward (op 7) runs each kernel set forward and backward (three times the
                // forward's work, twice) and sum's gradient back over y: under the sanitizers
                // the forward's bounds took 2-10 s (0 input channels: [393712, 0, 0, 3] with
                // 787,424 outputs; padding 255: [2, 3, 1, 3] with 519,180 outputs and 18.7 M
                // multiply-adds), libFuzzer timeouts. So 2^18 outputs and 2^23 multiply-adds.
                if (!(op == 6 ? output_safe(x[0], w[0], oh, ow, count(w))
                              : output_safe(x[0], w[0], oh, ow, count(w), 18, 23)))
                    return 0;
                if (op == 6) {
                    check_result(tg::conv2d(tg::Tensor::ones(x), tg::Tensor::ones(w), tg::Tensor{},
                                            stride, pad),
                                 name);
                    break;
                }
                // Forward and backward with each kernel set (their loops differ).
                for (const tg::Kernels k : {tg::Kernels::reference, tg::Kernels::fast}) {
                    const KernelsGuard guard(k);
                    const tg::Tensor xt = tg::Tensor::ones(x, true), wt = tg::Tensor::ones(w, true);
                    tg::Tape tape;
                    const tg::Tensor y = tg::conv2d(xt, wt, tg::Tensor{}, stride, pad);
                    check_result(y, name);
                    tape.backward(tg::sum(y));
                    check_grads({xt, wt}, name);
                }
                break;
            }
            case 8: {
                name = "max_pool2d";
                const tg::Shape x{size_from(in), size_from(in), size_from(in), size_from(in)};
                const std::size_t k = size_from(in), stride = size_from(in), pad = size_from(in);
                if (!buildable(x)) return 0;
                if (!output_safe(x[0], x[1], window_out(x[2], pad, k, stride ? stride : k),
                                 window_out(x[3], pad, k, stride ? stride : k),
                                 static_cast<u128>(k) * k))
                    return 0;
                check_result(tg::max_pool2d(tg::Tensor::ones(x), k, stride, pad), name);
                break;
            }
            case 9:
            case 10: {
                name = "nn::Linear";
                const std::size_t fin = size_from(in), fout = size_from(in), batch = size_from(in);
                const tg::Shape w{fout, fin};
                if ((count(w) > (1u << 16) || fout > (1u << 16)) && nonzero_product(w) <= kMax)
                    return 0;  // the weight or the bias [out] would really be allocated
                tg::nn::Linear layer(fin, fout);
                const tg::Shape x{batch, fin};
                if (!buildable(x) || count({batch, fout}) > (1u << 22)) return 0;
                if (op == 9) {
                    check_result(layer(tg::Tensor::ones(x)), name);
                    break;
                }
                name = "nn::Linear backward";
                const tg::Tensor xt = tg::Tensor::ones(x, true);
                tg::Tape tape;
                const tg::Tensor y = layer(xt);
                check_result(y, name);
                tape.backward(tg::sum(y));
                check_grads({xt, layer.weight, layer.bias}, name);
                break;
            }
            default: {
                name = "DataLoader";
                tg::data::Dataset d;
                d.rows = size_from(in);
                d.cols = size_from(in);
                const std::size_t n = in.byte() % 3;
                d.labels.assign(n, 0);
                d.classes = {"a", "b"};
                if (count({n, d.rows, d.cols}) > 4096) {
                    // The images are not there: the loader must refuse before reading them.
                } else {
                    d.images.assign(static_cast<std::size_t>(count({n, d.rows, d.cols})), 7);
                }
                tg::data::DataLoader loader(
                    d, {.batch_size = static_cast<std::size_t>(1 + in.byte() % 4)});
                for (const auto& [images, labels] : loader.epoch(0))
                    check_result(images, name);
                break;
            }
        }
    } catch (const std::length_error& e) {
        if (std::string(e.what()).empty()) tgfuzz::broken(std::string(name) + ": empty message");
    } catch (const std::invalid_argument& e) {
        if (std::string(e.what()).empty()) tgfuzz::broken(std::string(name) + ": empty message");
    } catch (const std::runtime_error& e) {
        if (std::string(e.what()).empty()) tgfuzz::broken(std::string(name) + ": empty message");
    }
    return 0;
}
