// The whole public nn API: include this one header.
#pragma once

#include "nn/activation.hpp"
#include "nn/checkpoint.hpp"  // save_module / load_module (safetensors)
#include "nn/conv.hpp"
#include "nn/dropout.hpp"
#include "nn/embedding.hpp"
#include "nn/init.hpp"
#include "nn/linear.hpp"
#include "nn/module.hpp"
#include "nn/normalization.hpp"
#include "nn/pooling.hpp"
#include "nn/reshape_layers.hpp"
#include "nn/sequential.hpp"
#include "nn/state_dict.hpp"
#include "nn/training_state.hpp"  // save/restore a whole training run
