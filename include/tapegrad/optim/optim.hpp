// tapegrad/optim/optim.hpp — every optimiser, for programs that want tg::optim in one include.
#pragma once

#include "tapegrad/optim/adam.hpp"
#include "tapegrad/optim/optimizer.hpp"
#include "tapegrad/optim/sgd.hpp"
