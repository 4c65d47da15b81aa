// kl_to_standard_normal: the closed-form KL divergence of a diagonal Gaussian from N(0, 1).
//   e = -0.5 (1 + v - mu^2 - e^v);  de/dmu = mu,  de/dv = 0.5 (e^v - 1)
#include <cmath>

#include "autograd/ops.hpp"
#include "autograd/ops/common.hpp"
#include "autograd/ops/loss_reduction.hpp"

namespace ag {
using detail::input;
using detail::upstream;

// The backward rules, each defined right after its forward.
static void kl_backward(Tape& t, const Node& n);

Var kl_to_standard_normal(Var mu, Var logvar, Reduction reduction) {
  detail::require_same_shape("kl_to_standard_normal", mu, logvar);
  const float* m = mu.value().data();
  const float* v = logvar.value().data();
  return detail::reduced_loss("kl_to_standard_normal", {mu, logvar}, mu.shape(), reduction,
                              kl_backward, [=](std::size_t i) {
                                return -0.5F * (1.0F + v[i] - m[i] * m[i] - std::exp(v[i]));
                              });
}
static void kl_backward(Tape& t, const Node& n) {
  Node& mu = input(t, n, 0);
  Node& logvar = input(t, n, 1);
  const float* m = mu.value().data();
  const float* v = logvar.value().data();
  const std::size_t count = mu.value().size();
  if (mu.requires_grad) {
    float* dm = mu.grad().data();
    for (std::size_t i = 0; i < count; ++i) dm[i] += upstream(n, i) * m[i];
  }
  if (logvar.requires_grad) {
    float* dv = logvar.grad().data();
    for (std::size_t i = 0; i < count; ++i) dv[i] += upstream(n, i) * 0.5F * (std::exp(v[i]) - 1.0F);
  }
}

}  // namespace ag
