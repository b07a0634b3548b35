// tests/chapter_cnn.hpp — the chapter's LeNet-style CNN with BatchNorm2d after each convolution,
// for the tests that train it (tests/test_parallel.cpp, tests/dist/test_data_parallel.cpp):
//
//   [N, 1, 28, 28] → Conv2d(1, 6, 5, pad 2) → BatchNorm2d(6) → ReLU → MaxPool2d(2)
//                  → Conv2d(6, 16, 5) → BatchNorm2d(16) → ReLU → MaxPool2d(2) → Flatten
//                  → Linear(400, 120) → ReLU → Linear(120, 84) → ReLU → Linear(84, 10)
//
// The programs build it with examples/common's make_cnn (which also has the other norms,
// Dropout and init scales); the tests have their own, as they do not link the example code:
// that is compiled against the float library only, and these tests run in float64 too.
#pragma once

#include "tapegrad/nn/nn.hpp"
#include "tapegrad/random.hpp"

namespace tgtest {

/// The CNN above, its weights drawn from `gen` in layer order (BatchNorm2d draws nothing).
inline tg::nn::Sequential chapter_cnn(tg::Generator& gen) {
    using namespace tg::nn;
    // Braces, not parentheses: a braced list is evaluated left to right, so the layers draw
    // their weights in layer order (a function's arguments may be evaluated in any order).
    return Sequential{Conv2d(1, 6, 5, {.padding = 2, .generator = &gen}),
                      BatchNorm2d(6),
                      ReLU(),
                      MaxPool2d(2),
                      Conv2d(6, 16, 5, {.generator = &gen}),
                      BatchNorm2d(16),
                      ReLU(),
                      MaxPool2d(2),
                      Flatten(),
                      Linear(16 * 5 * 5, 120, {.generator = &gen}),
                      ReLU(),
                      Linear(120, 84, {.generator = &gen}),
                      ReLU(),
                      Linear(84, 10, {.generator = &gen})};
}

}  // namespace tgtest
