// LayerNorm and BatchNorm1d, with PyTorch's parameter and buffer names, shapes and
// initialisation (weight ones, bias zeros), so state dicts load both ways.
//
//   nn::LayerNorm norm(400);       // [..., 400] normalised over the last dimension
//   nn::LayerNorm plane({28, 28}); // [..., 28, 28] normalised over the last two (weight [28, 28])
//   nn::BatchNorm1d bn(400);       // [B, 400] or [B, 400, L]; batch statistics in training, running ones after eval()
//   bn.state_dict();               // weight, bias, running_mean, running_var, num_batches_tracked
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "nn/module.hpp"

namespace nn {

class LayerNorm : public Module {
 public:
  explicit LayerNorm(std::size_t normalized_shape, float eps = 1e-5F, bool elementwise_affine = true);
  /// Over the last normalized_shape.size() dimensions, which must be these sizes.
  explicit LayerNorm(const std::vector<std::size_t>& normalized_shape, float eps = 1e-5F,
                     bool elementwise_affine = true);
  ag::Var forward(ag::Var x) override;
  std::string describe() const override;

  ag::Parameter* weight;  // normalized_shape ([D]), nullptr without elementwise_affine
  ag::Parameter* bias;    // normalized_shape

 private:
  ag::Shape shape_;
  float eps_;
};

class BatchNorm1d : public Module {
 public:
  explicit BatchNorm1d(std::size_t num_features, float eps = 1e-5F, float momentum = 0.1F);
  /// [B, C] -> [B, C], or [B, C, L] -> [B, C, L] (statistics over B and L). In training
  /// mode it also updates the running statistics.
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
