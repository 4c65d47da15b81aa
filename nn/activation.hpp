// Activation layers: parameter-free modules around the elementwise ops, so that they can
// sit in a Sequential. Each keeps its input's shape.
//
//   nn::Sequential mlp(nn::Linear(2, 16, rng), nn::ReLU(), nn::Linear(16, 1, rng), nn::Sigmoid());
#pragma once

#include <string>

#include "autograd/ops.hpp"
#include "nn/module.hpp"

namespace nn {

/// max(x, 0)
class ReLU : public Module {
 public:
  ag::Var forward(ag::Var x) override { return ag::relu(x); }
  std::string describe() const override { return "ReLU()"; }
};

/// 1 / (1 + e^-x)
class Sigmoid : public Module {
 public:
  ag::Var forward(ag::Var x) override { return ag::sigmoid(x); }
  std::string describe() const override { return "Sigmoid()"; }
};

/// tanh(x)
class Tanh : public Module {
 public:
  ag::Var forward(ag::Var x) override { return ag::tanh(x); }
  std::string describe() const override { return "Tanh()"; }
};

}  // namespace nn
