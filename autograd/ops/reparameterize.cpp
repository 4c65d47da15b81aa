// The Gaussian sampling node (the reparameterization trick).
//   z = mu + sigma eps, sigma = exp(v / 2), eps ~ N(0, 1) kept on the node
//   dz/dmu = 1,  dz/dv = 0.5 sigma eps;  eps is a constant, so no gradient flows into it.
#include <cmath>

#include <fmt/format.h>

#include "autograd/ops.hpp"
#include "autograd/ops/common.hpp"

namespace ag {
using detail::input;

// The backward rules, each defined right after its forward.
static void reparameterize_backward(Tape& t, const Node& n);

// Records the node with an uninitialized eps buffer, which the caller fills, then z.
static Node& record_sample(Var mu, Var logvar) {
  detail::require_same_shape("reparameterize", mu, logvar);
  Node& out = mu.tape().record("reparameterize", {mu, logvar}, mu.shape(), reparameterize_backward);
  if (shape_of(out.saved) != mu.shape()) out.saved.resize(mu.shape());
  return out;
}

static Var finish_sample(Var mu, Var logvar, Node& out) {
  const float* m = mu.value().data();
  const float* v = logvar.value().data();
  const float* eps = out.saved.data();
  float* z = out.own_value.data();
  for (std::size_t i = 0; i < out.own_value.size(); ++i) z[i] = m[i] + std::exp(0.5F * v[i]) * eps[i];
  return mu.tape().last();
}

Var reparameterize(Var mu, Var logvar, Rng& rng) {
  Node& out = record_sample(mu, logvar);
  rng.fill_normal(out.saved);
  return finish_sample(mu, logvar, out);
}

Var reparameterize(Var mu, Var logvar, const Array& eps) {
  if (shape_of(eps) != mu.shape())
    throw ShapeError(fmt::format("reparameterize: eps {} must match mu {}",
                                 to_string(shape_of(eps)), to_string(mu.shape())));
  Node& out = record_sample(mu, logvar);
  std::copy(eps.begin(), eps.end(), out.saved.begin());
  return finish_sample(mu, logvar, out);
}
static void reparameterize_backward(Tape& t, const Node& n) {
  Node& mu = input(t, n, 0);
  Node& logvar = input(t, n, 1);
  const float* g = n.grad().data();
  const float* eps = n.saved.data();
  const float* v = logvar.value().data();
  const std::size_t count = n.value().size();
  if (mu.requires_grad) {
    float* dm = mu.grad().data();
    for (std::size_t i = 0; i < count; ++i) dm[i] += g[i];
  }
  if (logvar.requires_grad) {
    float* dv = logvar.grad().data();
    for (std::size_t i = 0; i < count; ++i) dv[i] += g[i] * 0.5F * std::exp(0.5F * v[i]) * eps[i];
  }
}

}  // namespace ag
