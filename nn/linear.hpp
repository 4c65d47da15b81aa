// Linear: the fully connected layer y = x Wᵀ + b, as torch.nn.Linear.
//
// Layout and initialization follow PyTorch, so checkpoints and results carry over:
// weight [out, in]; bias stored [1, out] and saved with logical shape [out]; both drawn
// from U(-1/sqrt(in), 1/sqrt(in)).
//
//   nn::Linear fc(784, 400, rng);
//   ag::Var h = fc(x);   // x [B, 784] -> h [B, 400]
#pragma once

#include <cstddef>
#include <string>

#include "autograd/random.hpp"
#include "nn/module.hpp"

namespace nn {

class Linear : public Module {
 public:
  Linear(std::size_t in_features, std::size_t out_features, ag::Rng& rng, bool bias = true);

  /// [B, in] -> [B, out], one fused node on x's tape.
  ag::Var forward(ag::Var x) override;
  /// A ReLU after this layer runs inside its node (ag::LinearOptions::relu), with its bits.
  ag::Var forward_fused(ag::Var x, const Module& next) override;
  std::string describe() const override;

  std::size_t in_features() const { return weight.value.shape()[1]; }
  std::size_t out_features() const { return weight.value.shape()[0]; }

  ag::Parameter& weight;  // [out, in]
  ag::Parameter* bias;    // [1, out]; nullptr when built with bias = false
};

}  // namespace nn
