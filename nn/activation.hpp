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

/// x, or negative_slope x below 0
class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(float negative_slope = 0.01F) : negative_slope_(negative_slope) {}
  ag::Var forward(ag::Var x) override { return ag::leaky_relu(x, negative_slope_); }
  std::string describe() const override { return "LeakyReLU(negative_slope=" + std::to_string(negative_slope_) + ")"; }

 private:
  float negative_slope_;
};

/// x Phi(x), the exact form (PyTorch's default)
class GELU : public Module {
 public:
  ag::Var forward(ag::Var x) override { return ag::gelu(x); }
  std::string describe() const override { return "GELU()"; }
};

/// x sigmoid(x)
class SiLU : public Module {
 public:
  ag::Var forward(ag::Var x) override { return ag::silu(x); }
  std::string describe() const override { return "SiLU()"; }
};

/// x itself (a placeholder, e.g. where a layer is optional)
class Identity : public Module {
 public:
  ag::Var forward(ag::Var x) override { return x; }
  std::string describe() const override { return "Identity()"; }
};

}  // namespace nn
