// A student's program, debugged against an installed tapegrad (tests/debuggers/consumer/).
#include <tapegrad/tapegrad.hpp>

// gdb stops here (break look_here) and prints main's t, model and sgd.
[[gnu::noinline]] void look_here(const tg::Tensor& t) {
    (void)t;
}

int main() {
    tg::Tensor t(tg::Array{{1.0f, 2.0f, 3.0f}, {4.0f, 5.0f, 6.0f}}, true, "t");
    tg::nn::Sequential model{tg::nn::Linear(3, 4), tg::nn::BatchNorm1d(4)};
    tg::optim::SGD sgd(model.parameters(), {.lr = 0.1, .momentum = 0.9});
    look_here(t);
    return 0;
}
