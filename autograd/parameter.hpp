// Parameter: a trainable array that outlives the tape.
//
// Modules own parameters; each step they enter the tape through `tape.parameter(p)`,
// which makes a leaf that reads `value` in place and accumulates into `grad`.
#pragma once

#include <utility>

#include <xtensor/xbuilder.hpp>

#include "autograd/array.hpp"

namespace ag {

struct Parameter {
  Array value;
  Array grad;  // same shape as value; zeroed by zero_grad(), filled by backward

  Parameter() = default;
  explicit Parameter(Array v) : value(std::move(v)), grad(xt::zeros<float>(value.shape())) {}
  void zero_grad() {
    grad.resize(value.shape());
    grad.fill(0.0F);
  }
  std::size_t numel() const { return value.size(); }
};

}  // namespace ag
