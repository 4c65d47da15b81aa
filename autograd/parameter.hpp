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
  // Set by defer_zero_grad: the gradient is zero, whatever `grad` holds (see there).
  bool grad_zero_pending = false;

  Parameter() = default;
  explicit Parameter(Array v) : value(std::move(v)), grad(xt::zeros<float>(value.shape())) {}
  void zero_grad() {
    grad.resize(value.shape());
    grad.fill(0.0F);
    grad_zero_pending = false;
  }
  /// zero_grad without its pass over memory, as PyTorch's zero_grad(set_to_none=True): the
  /// gradient counts as zero from now on but `grad` keeps its old values until the next
  /// backward writes its first contribution over them (instead of adding it to zeros: the same
  /// bits) or settle_grad() fills the zeros. Tape::backward settles every parameter it passes,
  /// and the optimizers, clipping and the gradient allreduce settle what they read, so a
  /// training loop sees zeros wherever no gradient flowed. Code that reads or writes `grad`
  /// itself, without a backward in between, calls settle_grad() first.
  void defer_zero_grad() {
    if (shape_of(grad) != shape_of(value)) grad.resize(value.shape());
    grad_zero_pending = true;
  }
  /// Fills the zeros that defer_zero_grad postponed, if no backward has written them.
  void settle_grad() {
    if (grad_zero_pending) [[unlikely]] {
      grad.fill(0.0F);
      grad_zero_pending = false;
    }
  }
  std::size_t numel() const { return value.size(); }
};

}  // namespace ag
