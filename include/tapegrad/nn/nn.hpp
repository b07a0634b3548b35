// tapegrad/nn/nn.hpp — every layer, for programs that want the whole of tg::nn in one include.
#pragma once

#include "tapegrad/nn/activation.hpp"
#include "tapegrad/nn/batchnorm_utils.hpp"
#include "tapegrad/nn/conv.hpp"
#include "tapegrad/nn/dropout.hpp"
#include "tapegrad/nn/init.hpp"
#include "tapegrad/nn/linear.hpp"
#include "tapegrad/nn/loss.hpp"
#include "tapegrad/nn/module.hpp"
#include "tapegrad/nn/normalization.hpp"
#include "tapegrad/nn/pool.hpp"
#include "tapegrad/nn/sequential.hpp"
#include "tapegrad/nn/state_file.hpp"
