// Plumbing shared by the losses: an elementwise loss e[i], folded by a Reduction.
// The node keeps the reduction in attr[0] and its scale (1, 1/count or 1/rows) in scalar,
// so a backward rule asks `upstream(node, i)` for d loss / d e[i] and multiplies by de/dinput.
#pragma once

#include <initializer_list>

#include "autograd/ops.hpp"

namespace ag::detail {

inline float reduction_scale(Reduction r, Shape s) {
  switch (r) {
    case Reduction::mean: return 1.0F / static_cast<float>(s[0] * s[1]);
    case Reduction::batch_mean: return 1.0F / static_cast<float>(s[0]);
    default: return 1.0F;
  }
}

/// Records `name` over inputs of shape `s` whose elementwise loss is `elem(i)`.
template <class E>
Var reduced_loss(const char* name, std::initializer_list<Var> inputs, Shape s, Reduction r,
                 BackwardFn backward, E elem) {
  Tape& tape = inputs.begin()->tape();
  const bool none = r == Reduction::none;
  Node& out = tape.record(name, inputs, none ? s : Shape{1, 1}, backward);
  out.attr[0] = static_cast<std::size_t>(r);
  out.scalar = reduction_scale(r, s);
  float* y = out.own_value.data();
  const std::size_t n = s[0] * s[1];
  if (none) {
    for (std::size_t i = 0; i < n; ++i) y[i] = elem(i);
  } else {
    double total = 0.0;  // in double: these sums run over whole batches of pixels
    for (std::size_t i = 0; i < n; ++i) total += elem(i);
    y[0] = static_cast<float>(total * out.scalar);
  }
  return tape.last();
}

/// d loss / d e[i] for a node made by reduced_loss.
inline float upstream(const Node& n, std::size_t i) {
  return static_cast<Reduction>(n.attr[0]) == Reduction::none ? n.grad().data()[i]
                                                               : n.grad().data()[0] * n.scalar;
}

}  // namespace ag::detail
