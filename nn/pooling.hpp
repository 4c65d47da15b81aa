// MaxPool2d, AvgPool2d and Upsample: parameter-free layers over NCHW tensors, as torch.nn's
// (stride defaults to the kernel size; AvgPool2d counts padding as zeros; Upsample is nearest).
//
//   nn::MaxPool2d pool(2);     // [B, C, 28, 28] -> [B, C, 14, 14]
//   nn::Upsample up(2);        // [B, C, 14, 14] -> [B, C, 28, 28]
#pragma once

#include <string>

#include <fmt/format.h>

#include "autograd/ops.hpp"
#include "nn/module.hpp"

namespace nn {

/// What MaxPool2d and AvgPool2d share: a window, and the op that pools it.
class Pool2dLayer : public Module {
 public:
  using PoolOp = ag::Var (*)(ag::Var, ag::Size2, ag::Size2, ag::Size2);
  Pool2dLayer(const char* name, PoolOp op, ag::Size2 kernel_size, ag::Size2 stride, ag::Size2 padding)
      : name_(name), op_(op), kernel_(kernel_size), stride_(stride.h ? stride : kernel_size), padding_(padding) {}
  ag::Var forward(ag::Var x) override { return op_(x, kernel_, stride_, padding_); }
  std::string describe() const override {
    return fmt::format("{}(kernel_size=({}, {}), stride=({}, {}), padding=({}, {}))", name_, kernel_.h, kernel_.w,
                       stride_.h, stride_.w, padding_.h, padding_.w);
  }

 private:
  const char* name_;
  PoolOp op_;
  ag::Size2 kernel_, stride_, padding_;
};

class MaxPool2d : public Pool2dLayer {
 public:
  explicit MaxPool2d(ag::Size2 kernel_size, ag::Size2 stride = 0, ag::Size2 padding = 0)
      : Pool2dLayer("MaxPool2d", ag::max_pool2d, kernel_size, stride, padding) {}
};

class AvgPool2d : public Pool2dLayer {
 public:
  explicit AvgPool2d(ag::Size2 kernel_size, ag::Size2 stride = 0, ag::Size2 padding = 0)
      : Pool2dLayer("AvgPool2d", ag::avg_pool2d, kernel_size, stride, padding) {}
};

/// Nearest-neighbour upsampling by a whole-number factor per axis.
class Upsample : public Module {
 public:
  explicit Upsample(ag::Size2 scale_factor) : scale_(scale_factor) {}
  ag::Var forward(ag::Var x) override { return ag::upsample_nearest2d(x, scale_); }
  std::string describe() const override {
    return fmt::format("Upsample(scale_factor=({}, {}), mode='nearest')", scale_.h, scale_.w);
  }

 private:
  ag::Size2 scale_;
};

}  // namespace nn
