// Dropout: zeroes each element with probability p in training mode (scaling the rest by
// 1/(1-p)); the identity after eval(). The masks are drawn from the generator given at
// construction, which must outlive the layer.
//
//   nn::Dropout drop(0.2F, rng);
//   ag::Var h = drop(x);   // [...] -> [...]
#pragma once

#include <string>

#include <fmt/format.h>

#include "autograd/ops.hpp"
#include "nn/module.hpp"

namespace nn {

class Dropout : public Module {
 public:
  Dropout(float p, ag::Rng& rng) : p_(p), rng_(&rng) {
    if (!(p >= 0.0F && p <= 1.0F)) throw std::invalid_argument(fmt::format("Dropout: p = {} is not in [0, 1]", p));
  }
  ag::Var forward(ag::Var x) override { return ag::dropout(x, p_, *rng_, is_training()); }
  std::string describe() const override { return fmt::format("Dropout(p={})", p_); }

 private:
  float p_;
  ag::Rng* rng_;
};

}  // namespace nn
