// tapegrad/tapegrad.hpp — everything, for programs that want one include.
#pragma once

#include "tapegrad/config.hpp"
#include "tapegrad/gradcheck.hpp"
#include "tapegrad/ops/elementwise.hpp"
#include "tapegrad/random.hpp"
#include "tapegrad/tape.hpp"
#include "tapegrad/tensor.hpp"
