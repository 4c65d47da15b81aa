// Losses, each as an elementwise formula e(...) with its partial derivatives, folded by a
// Reduction (see ops/loss_reduction.hpp).
#include <algorithm>
#include <cmath>
#include <numbers>

#include "autograd/ops.hpp"
#include "autograd/ops/elementwise.hpp"
#include "autograd/ops/loss_reduction.hpp"
#include "autograd/stable_math.hpp"
#include "autograd/kernels/vector_math.hpp"

namespace ag {
using detail::input;
using detail::reduced_loss;
using detail::require_same_shape;
using detail::upstream;

// The backward rules, each defined right after its forward.
static void bce_with_logits_backward(Tape& t, const Node& n);
static void mse_loss_backward(Tape& t, const Node& n);
static void gaussian_nll_backward(Tape& t, const Node& n);

// ---- bce_with_logits: e = softplus(l) - l t;  de/dl = sigmoid(l) - t,  de/dt = -l ----
// The forward keeps sigmoid(l) on the node (saved), so the backward needs no exponential.
// It is the VAE's hottest elementwise op, so unlike the other losses it does not go through
// reduced_loss: its forward is one vectorized pass (vector_math.cpp) and its backward loops
// are written for the compiler to vectorize.

// dl = (fresh ? 0 : dl) + scale (sig - y), in loops of restrict pointers the compiler vectorizes.
static void bce_scaled_difference(bool fresh, float scale, const float* __restrict sig, const float* __restrict y,
                                  float* __restrict dl, std::size_t n) {
  if (fresh)
    for (std::size_t i = 0; i < n; ++i) dl[i] = 0.0F + scale * (sig[i] - y[i]);
  else
    for (std::size_t i = 0; i < n; ++i) dl[i] += scale * (sig[i] - y[i]);
}

Var bce_with_logits(Var logits, Var targets, Reduction reduction) {
  require_same_shape("bce_with_logits", logits, targets);
  const Shape s = logits.shape();
  const bool elementwise = reduction == Reduction::none;
  Tape& tape = logits.tape();
  Node& out = tape.record("bce_with_logits", {logits, targets}, detail::loss_shape(reduction, s),
                          bce_with_logits_backward);
  const float scale = detail::reduction_scale(reduction, s);
  out.set_attrs(detail::LossAttrs{reduction, scale});
  out.writes_fresh = true;
  if (shape_of(out.saved) != s) out.saved.resize(s);
  const double total = vec::bce_with_logits(logits.value().data(), targets.value().data(),
                                            elementwise ? out.own_value.data() : nullptr,
                                            out.saved.data(), numel(s));
  if (!elementwise) out.own_value.data()[0] = static_cast<float>(total * scale);
  return tape.last();
}
static void bce_with_logits_backward(Tape& t, const Node& n) {
  Node& logits = input(t, n, 0);
  Node& targets = input(t, n, 1);
  const float* l = logits.value().data();
  const float* y = targets.value().data();
  const float* sig = n.saved.data();
  const std::size_t count = logits.value().size();
  const detail::LossAttrs a = n.attrs<detail::LossAttrs>();
  const bool elementwise = a.reduction == Reduction::none;
  const float* g = n.grad().data();
  const float scale = elementwise ? 1.0F : g[0] * a.scale;
  // A fresh gradient (writes_fresh) starts from 0 instead of what the buffer holds.
  if (logits.requires_grad) {
    float* dl = logits.grad().data();
    if (elementwise) {
      if (detail::fresh(n, 0)) std::fill_n(dl, count, 0.0F);
      for (std::size_t i = 0; i < count; ++i) dl[i] += g[i] * (sig[i] - y[i]);
    } else {  // the VAE's case, [B, 784]: on all threads
      const bool fresh = detail::fresh(n, 0);
      detail::elementwise_for(count, [=](std::size_t begin, std::size_t end) {
        bce_scaled_difference(fresh, scale, sig + begin, y + begin, dl + begin, end - begin);
      });
    }
  }
  if (targets.requires_grad) {
    float* dy = targets.grad().data();
    if (detail::fresh(n, 1)) std::fill_n(dy, count, 0.0F);
    for (std::size_t i = 0; i < count; ++i) dy[i] -= upstream(n, i) * l[i];
  }
}

// ---- mse_loss: e = (p - t)^2;  de/dp = 2 (p - t),  de/dt = -2 (p - t) ----

Var mse_loss(Var prediction, Var target, Reduction reduction) {
  require_same_shape("mse_loss", prediction, target);
  const float* p = prediction.value().data();
  const float* y = target.value().data();
  return reduced_loss("mse_loss", {prediction, target}, prediction.shape(), reduction,
                      mse_loss_backward, [=](std::size_t i) {
                        const float d = p[i] - y[i];
                        return d * d;
                      });
}
static void mse_loss_backward(Tape& t, const Node& n) {
  Node& pred = input(t, n, 0);
  Node& target = input(t, n, 1);
  const float* p = pred.value().data();
  const float* y = target.value().data();
  const std::size_t count = pred.value().size();
  if (pred.requires_grad) {
    float* dp = pred.grad().data();
    for (std::size_t i = 0; i < count; ++i) dp[i] += upstream(n, i) * 2.0F * (p[i] - y[i]);
  }
  if (target.requires_grad) {
    float* dy = target.grad().data();
    for (std::size_t i = 0; i < count; ++i) dy[i] -= upstream(n, i) * 2.0F * (p[i] - y[i]);
  }
}

// ---- gaussian_nll: e = 0.5 (log 2pi + v + (x - m)^2 e^-v) ----
//   de/dx = (x - m) e^-v,  de/dm = -(x - m) e^-v,  de/dv = 0.5 (1 - (x - m)^2 e^-v)

static constexpr float kLog2Pi = 1.8378770664093453F;

Var gaussian_nll(Var x, Var mean, Var logvar, Reduction reduction) {
  require_same_shape("gaussian_nll", x, mean);
  if (logvar.shape() != x.shape()) logvar = broadcast_to(logvar, x.shape());
  const float* px = x.value().data();
  const float* pm = mean.value().data();
  const float* pv = logvar.value().data();
  return reduced_loss("gaussian_nll", {x, mean, logvar}, x.shape(), reduction,
                      gaussian_nll_backward, [=](std::size_t i) {
                        const float d = px[i] - pm[i];
                        return 0.5F * (kLog2Pi + pv[i] + d * d * std::exp(-pv[i]));
                      });
}
static void gaussian_nll_backward(Tape& t, const Node& n) {
  Node& x = input(t, n, 0);
  Node& m = input(t, n, 1);
  Node& v = input(t, n, 2);
  const float* px = x.value().data();
  const float* pm = m.value().data();
  const float* pv = v.value().data();
  const std::size_t count = x.value().size();
  for (std::size_t i = 0; i < count; ++i) {
    const float g = upstream(n, i);
    const float scaled = (px[i] - pm[i]) * std::exp(-pv[i]);
    if (x.requires_grad) x.grad().data()[i] += g * scaled;
    if (m.requires_grad) m.grad().data()[i] -= g * scaled;
    if (v.requires_grad) v.grad().data()[i] += g * 0.5F * (1.0F - (px[i] - pm[i]) * scaled);
  }
}

}  // namespace ag
