// dropout: in training, each element is zeroed with probability p and the survivors scaled by
// 1 / (1 - p), so the expected value is unchanged; in evaluation it is the identity.
//   y = x m,  m[i] = [u_i >= p] / (1 - p) kept on the node (saved);  dx = g m
#include <stdexcept>

#include <fmt/format.h>

#include "autograd/ops.hpp"
#include "autograd/ops/common.hpp"

namespace ag {
using detail::input;

// The backward rules, each defined right after its forward.
static void dropout_backward(Tape& t, const Node& n);

Var dropout(Var x, float p, Rng& rng, bool training) {
  if (!(p >= 0.0F && p <= 1.0F)) throw std::invalid_argument(fmt::format("dropout: p = {} is not in [0, 1]", p));
  if (!training || p == 0.0F) return x;
  Tape& tape = x.tape();
  Node& out = tape.record("dropout", {x}, x.value().shape(), dropout_backward);
  if (out.saved.shape() != x.value().shape()) out.saved.resize(x.value().shape());
  const float keep = p == 1.0F ? 0.0F : 1.0F / (1.0F - p);
  const float* px = x.value().data();
  float* m = out.saved.data();
  float* y = out.own_value.data();
  for (std::size_t i = 0; i < out.own_value.size(); ++i) {
    m[i] = rng.uniform() >= p ? keep : 0.0F;
    y[i] = px[i] * m[i];
  }
  return tape.last();
}
static void dropout_backward(Tape& t, const Node& n) {
  Node& x = input(t, n, 0);
  if (!x.requires_grad) return;
  const float* m = n.saved.data();
  const float* g = n.grad().data();
  float* dx = x.grad().data();
  for (std::size_t i = 0; i < n.value().size(); ++i) dx[i] += g[i] * m[i];
}

}  // namespace ag
