// Flatten and Unflatten: layers that only change the shape, as torch.nn's.
//
//   nn::Flatten()                 [B, C, H, W] -> [B, C*H*W]
//   nn::Unflatten(1, {1, 28, 28})  [B, 784] -> [B, 1, 28, 28]
#pragma once

#include <string>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "autograd/ops.hpp"
#include "nn/module.hpp"

namespace nn {

class Flatten : public Module {
 public:
  explicit Flatten(int start_dim = 1, int end_dim = -1) : start_(start_dim), end_(end_dim) {}
  ag::Var forward(ag::Var x) override { return ag::flatten(x, start_, end_); }
  std::string describe() const override { return fmt::format("Flatten(start_dim={}, end_dim={})", start_, end_); }

 private:
  int start_, end_;
};

class Unflatten : public Module {
 public:
  Unflatten(int dim, ag::Shape sizes) : dim_(dim), sizes_(std::move(sizes)) {}
  ag::Var forward(ag::Var x) override {
    const ag::Shape& s = x.value().shape();
    const long rank = static_cast<long>(s.size());
    if (dim_ < -rank || dim_ >= rank)
      throw ag::ShapeError(fmt::format("Unflatten: dim {} is out of range for {}", dim_, ag::to_string(s)));
    const std::size_t d = static_cast<std::size_t>(dim_ < 0 ? dim_ + rank : dim_);
    if (ag::numel(sizes_) != s[d])
      throw ag::ShapeError(fmt::format("Unflatten: dimension {} of {} has {} elements, not {} = ({})", dim_,
                                       ag::to_string(s), s[d], ag::numel(sizes_), fmt::join(sizes_, ", ")));
    ag::Shape out;
    for (std::size_t k = 0; k < s.size(); ++k) {
      if (k != d) out.push_back(s[k]);
      else for (std::size_t n : sizes_) out.push_back(n);
    }
    return ag::reshape(x, out);
  }
  std::string describe() const override {
    return fmt::format("Unflatten(dim={}, unflattened_size=({}))", dim_, fmt::join(sizes_, ", "));
  }

 private:
  int dim_;
  ag::Shape sizes_;
};

}  // namespace nn
