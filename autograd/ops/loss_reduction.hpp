// Plumbing shared by the losses: an elementwise loss e[i], folded by a Reduction.
// The node keeps the reduction and its scale (1, 1/count or 1/rows) as its LossAttrs, so a
// backward rule asks `upstream(node, i)` for d loss / d e[i] and multiplies by de/dinput.
#pragma once

#include <initializer_list>

#include "autograd/ops.hpp"

namespace ag::detail {

struct LossAttrs {
  Reduction reduction;
  float scale;  // what the reduction multiplies the sum by
};

inline float reduction_scale(Reduction r, const Shape& s) {
  switch (r) {
    case Reduction::mean: return 1.0F / static_cast<float>(numel(s));
    case Reduction::batch_mean: return 1.0F / static_cast<float>(s.empty() ? 1 : s[0]);
    default: return 1.0F;
  }
}

/// The shape of a loss: the elementwise shape, or [1, 1] once reduced.
inline Shape loss_shape(Reduction r, const Shape& s) { return r == Reduction::none ? s : Shape{1, 1}; }

/// Records `name` over inputs of shape `s` whose elementwise loss is `elem(i)`.
template <class E>
Var reduced_loss(const char* name, std::initializer_list<Var> inputs, const Shape& s, Reduction r,
                 BackwardFn backward, E elem) {
  Tape& tape = inputs.begin()->tape();
  const bool none = r == Reduction::none;
  Node& out = tape.record(name, inputs, loss_shape(r, s), backward);
  const float scale = reduction_scale(r, s);
  out.set_attrs(LossAttrs{r, scale});
  float* y = out.own_value.data();
  const std::size_t n = numel(s);
  if (none) {
    for (std::size_t i = 0; i < n; ++i) y[i] = elem(i);
  } else {
    double total = 0.0;  // in double: these sums run over whole batches of pixels
    for (std::size_t i = 0; i < n; ++i) total += elem(i);
    y[0] = static_cast<float>(total * scale);
  }
  return tape.last();
}

/// d loss / d e[i] for a node made by reduced_loss.
/// (Reads the attributes per element: the backward loops are not the hot path, except
/// bce_with_logits', which reads them once.)
inline float upstream(const Node& n, std::size_t i) {
  const LossAttrs a = n.attrs<LossAttrs>();
  return a.reduction == Reduction::none ? n.grad().data()[i] : n.grad().data()[0] * a.scale;
}

}  // namespace ag::detail
