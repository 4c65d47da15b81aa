// LayerNorm and BatchNorm1d, with PyTorch's parameter and buffer names, shapes and
// initialisation (weight ones, bias zeros), so state dicts load both ways.
//
//   nn::LayerNorm norm(400);       // [..., 400] normalised over the last dimension
//   nn::BatchNorm1d bn(400);       // [B, 400]; batch statistics in training, running ones after eval()
//   bn.state_dict();               // weight, bias, running_mean, running_var, num_batches_tracked
#pragma once

#include <cstddef>
#include <string>

#include "nn/module.hpp"

namespace nn {

class LayerNorm : public Module {
 public:
  explicit LayerNorm(std::size_t normalized_shape, float eps = 1e-5F, bool elementwise_affine = true);
  ag::Var forward(ag::Var x) override;
  std::string describe() const override;

  ag::Parameter* weight;  // [D], nullptr without elementwise_affine
  ag::Parameter* bias;    // [D]

 private:
  std::size_t size_;
  float eps_;
};

class BatchNorm1d : public Module {
 public:
  explicit BatchNorm1d(std::size_t num_features, float eps = 1e-5F, float momentum = 0.1F);
  /// [B, C] -> [B, C]. In training mode it also updates the running statistics.
  ag::Var forward(ag::Var x) override;
  std::string describe() const override;

  ag::Parameter& weight;  // [C]
  ag::Parameter& bias;    // [C]
  ag::Array& running_mean;         // [C], buffer
  ag::Array& running_var;          // [C], buffer
  ag::Array& num_batches_tracked;  // [], buffer (an integer count, stored as a float)

 private:
  float eps_, momentum_;
};

}  // namespace nn
