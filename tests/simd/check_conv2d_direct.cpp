// The direct convolution kernels against a plain loop in double, compiled for another SIMD
// width than the build machine's (scripts/ci/simd_widths.sh builds it for SSE2, AVX2 and
// the native set, float and double): the unit tests run only the width of the CI machine.
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>
#include "../../src/ops/kernels/fast/conv2d_direct.hpp"
#include "tapegrad/parallel.hpp"
using tg::real;
using S = tg::kernels::fast::DirectConvShape;
int main() {
    std::mt19937 rng(1);
    std::uniform_real_distribution<double> u(-1, 1);
    std::uniform_int_distribution<int> d(1, 7);
    int bad = 0;
    for (int t = 0; t < 300; ++t) {
        S s{};
        s.n = 1 + rng() % 10;
        s.c = 1 + rng() % 5;
        s.o = 1 + rng() % 19;
        s.kh = 1 + rng() % 5;
        s.kw = d(rng);
        const std::size_t pad = rng() % std::min(s.kh, s.kw);
        s.pad_h = s.pad_w = pad;
        s.h = std::max<std::size_t>(s.kh > 2 * pad ? s.kh - 2 * pad : 1, 1 + rng() % 14);
        s.w = std::max<std::size_t>(s.kw > 2 * pad ? s.kw - 2 * pad : 1, 1 + rng() % 14);
        if (!tg::kernels::fast::conv2d_direct_supports(s, 1)) {
            std::printf("unsupported?\n");
            return 1;
        }
        const std::size_t oh = s.oh(), ow = s.ow();
        std::vector<real> x(s.n * s.c * s.h * s.w), w(s.o * s.c * s.kh * s.kw), b(s.o),
            g(s.n * s.o * oh * ow);
        for (auto* v : {&x, &w, &b, &g})
            for (auto& e : *v)
                e = static_cast<real>(u(rng));
        std::vector<double> y0(g.size()), dx0(x.size(), 0), dw0(w.size(), 0), db0(s.o, 0);
        for (std::size_t n = 0; n < s.n; ++n)
            for (std::size_t o = 0; o < s.o; ++o)
                for (std::size_t i = 0; i < oh; ++i)
                    for (std::size_t j = 0; j < ow; ++j) {
                        const std::size_t yi = ((n * s.o + o) * oh + i) * ow + j;
                        double acc = b[o];
                        db0[o] += g[yi];
                        for (std::size_t c = 0; c < s.c; ++c)
                            for (std::size_t p = 0; p < s.kh; ++p)
                                for (std::size_t q = 0; q < s.kw; ++q) {
                                    const long hi = (long)(i + p) - (long)pad,
                                               wj = (long)(j + q) - (long)pad;
                                    if (hi < 0 || wj < 0 || hi >= (long)s.h || wj >= (long)s.w)
                                        continue;
                                    const std::size_t xi = ((n * s.c + c) * s.h + hi) * s.w + wj,
                                                      wi = ((o * s.c + c) * s.kh + p) * s.kw + q;
                                    acc += (double)w[wi] * x[xi];
                                    dx0[xi] += (double)w[wi] * g[yi];
                                    dw0[wi] += (double)g[yi] * x[xi];
                                }
                        y0[yi] = acc;
                    }
        std::vector<real> y(g.size()), dx(x.size()), dw(w.size(), 0), db(s.o, 0);
        tg::kernels::fast::conv2d_direct_forward(s, x.data(), w.data(), b.data(), y.data());
        tg::kernels::fast::conv2d_direct_backward_input(s, g.data(), w.data(), dx.data());
        tg::kernels::fast::conv2d_direct_backward_weight(s, x.data(), g.data(), dw.data(),
                                                         db.data());
        auto cmp = [&](const std::vector<real>& a, const std::vector<double>& e, const char* what) {
            double scale = 1;
            for (double v : e)
                scale = std::max(scale, std::fabs(v));
            for (std::size_t i = 0; i < a.size(); ++i)
                if (std::fabs(a[i] - e[i]) > 1e-5 * scale * 4) {
                    ++bad;
                    std::printf("%s mismatch t=%d i=%zu %g vs %g\n", what, t, i, (double)a[i],
                                e[i]);
                    return;
                }
        };
        cmp(y, y0, "y");
        cmp(dx, dx0, "dx");
        cmp(dw, dw0, "dw");
        cmp(db, db0, "db");
    }
    std::printf("%s: %d bad of 300 shapes\n", tg::kernels::fast::conv2d_direct_simd(), bad);
    return bad != 0;
}
