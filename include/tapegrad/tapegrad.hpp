// tapegrad/tapegrad.hpp — everything, for programs that want one include.
#pragma once

// core
#include "tapegrad/atomic_file.hpp"
#include "tapegrad/checkpoint.hpp"
#include "tapegrad/config.hpp"
#include "tapegrad/gradcheck.hpp"
#include "tapegrad/kernels.hpp"
#include "tapegrad/memory.hpp"
#include "tapegrad/metrics.hpp"
#include "tapegrad/parallel.hpp"
#include "tapegrad/print.hpp"
#include "tapegrad/random.hpp"
#include "tapegrad/tape.hpp"
#include "tapegrad/tensor.hpp"

// ops: the functional API
#include "tapegrad/ops/activation.hpp"
#include "tapegrad/ops/conv.hpp"
#include "tapegrad/ops/dropout.hpp"
#include "tapegrad/ops/elementwise.hpp"
#include "tapegrad/ops/linalg.hpp"
#include "tapegrad/ops/linear.hpp"
#include "tapegrad/ops/loss.hpp"
#include "tapegrad/ops/normalization.hpp"
#include "tapegrad/ops/pool.hpp"
#include "tapegrad/ops/reduce.hpp"
#include "tapegrad/ops/shape.hpp"

// nn and optim
#include "tapegrad/nn/nn.hpp"
#include "tapegrad/optim/optim.hpp"

// data
#include "tapegrad/data/dataset.hpp"
#include "tapegrad/data/idx.hpp"
#include "tapegrad/data/loader.hpp"
#include "tapegrad/data/tensor_dataset.hpp"

// viz
#include "tapegrad/viz/viz.hpp"
