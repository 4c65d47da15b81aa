// Conv2d and ConvTranspose2d: the convolution layers, as torch.nn's, on NCHW tensors.
//
// Layouts, names and initialization follow PyTorch, so state dicts load both ways:
//   Conv2d           weight [out, in, kh, kw], bias [out]
//   ConvTranspose2d  weight [in, out, kh, kw], bias [out]
// Both draw the weight and the bias from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's
// kaiming_uniform with a = sqrt(5), and its bias rule), where fan_in is weight.size(1) kh kw:
// in kh kw for Conv2d, but out kh kw for ConvTranspose2d, whose weight is stored transposed.
//
//   nn::Conv2d conv(1, 32, 4, rng, {.stride = 2, .padding = 1});
//   ag::Var h = conv(x);   // x [B, 1, 28, 28] -> h [B, 32, 14, 14]
#pragma once

#include <cstddef>
#include <string>

#include "autograd/ops.hpp"
#include "autograd/random.hpp"
#include "nn/module.hpp"

namespace nn {

class Conv2d : public Module {
 public:
  Conv2d(std::size_t in_channels, std::size_t out_channels, ag::Size2 kernel_size, ag::Rng& rng,
         const ag::Conv2dOptions& options = {}, bool bias = true);

  /// [B, in, H, W] -> [B, out, Ho, Wo], one node on x's tape.
  ag::Var forward(ag::Var x) override;
  /// With `next` a ReLU: both as one node (Conv2dOptions::relu).
  ag::Var forward_fused(ag::Var x, const Module& next) override;
  std::string describe() const override;

  ag::Parameter& weight;  // [out, in, kh, kw]
  ag::Parameter* bias;    // [out]; nullptr when built with bias = false
  const ag::Conv2dOptions options;
};

class ConvTranspose2d : public Module {
 public:
  ConvTranspose2d(std::size_t in_channels, std::size_t out_channels, ag::Size2 kernel_size, ag::Rng& rng,
                  const ag::ConvTranspose2dOptions& options = {}, bool bias = true);

  /// [B, in, H, W] -> [B, out, Ho, Wo], one node on x's tape.
  ag::Var forward(ag::Var x) override;
  /// With `next` a ReLU: both as one node (ConvTranspose2dOptions::relu).
  ag::Var forward_fused(ag::Var x, const Module& next) override;
  std::string describe() const override;

  ag::Parameter& weight;  // [in, out, kh, kw]
  ag::Parameter* bias;    // [out]; nullptr when built with bias = false
  const ag::ConvTranspose2dOptions options;
};

}  // namespace nn
