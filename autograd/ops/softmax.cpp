// softmax and log_softmax along an axis, and the classification losses on top of them:
// cross_entropy (from logits, with label smoothing) and nll_loss (from log-probabilities).
// Every exponential is shifted by the maximum along the axis, so none overflows.
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "autograd/ops.hpp"
#include "autograd/ops/axes.hpp"
#include "autograd/ops/common.hpp"
#include "autograd/ops/loss_reduction.hpp"

namespace ag {
using detail::input;

// The backward rules, each defined right after its forward.
static void softmax_backward(Tape& t, const Node& n);
static void log_softmax_backward(Tape& t, const Node& n);
static void cross_entropy_backward(Tape& t, const Node& n);
static void nll_loss_backward(Tape& t, const Node& n);

namespace {
struct SoftmaxAttrs {
  std::uint32_t axis_mask;  // the one axis, as a mask for plan_reduction
};
}  // namespace

/// For each slice along the axis: calls f(base, loop over the slice, max, log of the sum of exp(x - max)).
template <class F>
static void for_each_slice(const float* x, const detail::ReductionPlan& p, F&& f) {
  detail::for_each_output(p, [&](std::size_t, std::size_t base) {
    float m = -std::numeric_limits<float>::infinity();
    detail::for_each_offset(p.reduced, [&](std::size_t r) { m = std::max(m, x[base + r]); });
    double s = 0.0;
    detail::for_each_offset(p.reduced, [&](std::size_t r) { s += std::exp(static_cast<double>(x[base + r] - m)); });
    f(base, m, static_cast<float>(std::log(s)));
  });
}

static Var softmax_like(const char* name, Var x, int axis, BackwardFn backward, bool log) {
  const std::uint32_t mask = 1U << detail::checked_axis(name, axis, x.dim());
  const detail::ReductionPlan p = detail::plan_reduction(x.value().shape(), mask);
  Tape& tape = x.tape();
  Node& out = tape.record(name, {x}, x.value().shape(), backward);
  out.set_attrs(SoftmaxAttrs{mask});
  const float* px = x.value().data();
  float* y = out.own_value.data();
  for_each_slice(px, p, [&](std::size_t base, float m, float log_sum) {
    detail::for_each_offset(p.reduced, [&](std::size_t r) {
      const float v = px[base + r] - m - log_sum;
      y[base + r] = log ? v : std::exp(v);
    });
  });
  return tape.last();
}

/// Calls f(slice, base, y, g, dx) for each slice along the node's axis, when x wants a gradient.
template <class F>
static void backward_per_slice(Tape& t, const Node& n, F&& f) {
  Node& x = input(t, n, 0);
  if (!x.requires_grad) return;
  const detail::ReductionPlan p = detail::plan_reduction(x.value().shape(), n.attrs<SoftmaxAttrs>().axis_mask);
  const float* y = n.value().data();
  const float* g = n.grad().data();
  float* dx = x.grad().data();
  detail::for_each_output(p, [&](std::size_t, std::size_t base) { f(p.reduced, base, y, g, dx); });
}

// y = exp(x - m) / sum;  dx = y (g - sum(g y)) along the axis
Var softmax(Var x, int axis) { return softmax_like("softmax", x, axis, softmax_backward, false); }
static void softmax_backward(Tape& t, const Node& n) {
  backward_per_slice(t, n, [](const detail::Loop& slice, std::size_t base, const float* y, const float* g, float* dx) {
    double dot = 0.0;
    detail::for_each_offset(slice, [&](std::size_t r) { dot += static_cast<double>(g[base + r]) * y[base + r]; });
    detail::for_each_offset(slice, [&](std::size_t r) { dx[base + r] += y[base + r] * (g[base + r] - static_cast<float>(dot)); });
  });
}

// y = x - m - log sum;  dx = g - exp(y) sum(g) along the axis
Var log_softmax(Var x, int axis) { return softmax_like("log_softmax", x, axis, log_softmax_backward, true); }
static void log_softmax_backward(Tape& t, const Node& n) {
  backward_per_slice(t, n, [](const detail::Loop& slice, std::size_t base, const float* y, const float* g, float* dx) {
    double total = 0.0;
    detail::for_each_offset(slice, [&](std::size_t r) { total += g[base + r]; });
    detail::for_each_offset(slice, [&](std::size_t r) { dx[base + r] += g[base + r] - std::exp(y[base + r]) * static_cast<float>(total); });
  });
}

// ---- class indices ----
// As in PyTorch, the classes are dimension 1: scores [B, C] with targets [B], or scores
// [B, C, d1, ...] (a class score per position, e.g. per pixel) with targets [B, d1, ...].
// Target i (row-major over [B, d1, ...]) reads the scores base_i + c * stride, c < C, where
// stride is the product of d1, ... (1 for [B, C]).

struct ClassLayout {
  std::size_t classes, stride;
};

static ClassLayout layout_of(const Shape& scores) {
  return {scores[1], numel(scores) / std::max<std::size_t>(1, scores[0] * scores[1])};
}

// Target i's class c sits at scores[(i / stride) C stride + c stride + i % stride].
static std::size_t class_offset(std::size_t i, std::size_t c, ClassLayout l) {
  return (i / l.stride) * l.classes * l.stride + c * l.stride + i % l.stride;
}

/// Checks scores [B, C, d...] against targets [B, d...] of whole numbers in [0, C).
static ClassLayout check_targets(const char* op, Var scores, Var targets) {
  const Shape& s = scores.shape();
  Shape expected = s;
  if (s.size() >= 2) expected.erase(expected.begin() + 1);
  if (s.size() < 2 || targets.shape() != expected)
    throw ShapeError(fmt::format("{}: expected scores [B, C] and class indices [B] (or [B, C, d1, ...] and "
                                 "[B, d1, ...]), got {} and {}",
                                 op, to_string(s), to_string(targets.shape())));
  const std::size_t classes = s[1];
  for (float v : targets.value())
    if (!(v >= 0.0F) || v != std::floor(v) || v >= static_cast<float>(classes))
      throw ShapeError(fmt::format("{}: class index {} is not a whole number in [0, {})", op, v, classes));
  return layout_of(s);
}

static std::size_t class_of(const Node& targets, std::size_t i) {
  return static_cast<std::size_t>(targets.value().data()[i]);
}

// ---- cross_entropy: l_i = -(1 - e) log p[i, t_i] - (e / C) sum_c log p[i, c], p = softmax ----
//   dl_i / dlogits[i, c] = p[i, c] - q[i, c],  q = (1 - e) onehot(t_i) + e / C
// The forward keeps p on the node (saved).

namespace {
struct CrossEntropyAttrs {
  detail::LossAttrs loss;  // first, so that upstream() reads it
  float smoothing;
};
}  // namespace

Var cross_entropy(Var logits, Var targets, Reduction reduction, float label_smoothing) {
  const ClassLayout layout = check_targets("cross_entropy", logits, targets);
  if (!(label_smoothing >= 0.0F && label_smoothing <= 1.0F))
    throw std::invalid_argument(fmt::format("cross_entropy: label_smoothing {} is not in [0, 1]", label_smoothing));
  const std::size_t classes = layout.classes, stride = layout.stride;
  const Shape per_example = targets.shape();
  Tape& tape = logits.tape();
  Node& out = tape.record("cross_entropy", {logits, targets}, detail::loss_shape(reduction, per_example),
                          cross_entropy_backward);
  const float scale = detail::reduction_scale(reduction, per_example);
  out.set_attrs(CrossEntropyAttrs{{reduction, scale}, label_smoothing});
  if (out.saved.shape() != logits.value().shape()) out.saved.resize(logits.value().shape());
  const float* x = logits.value().data();
  float* p = out.saved.data();
  const Node& target_node = tape.node(targets);
  double total = 0.0;
  const detail::ReductionPlan plan = detail::plan_reduction(logits.value().shape(), 2U);
  std::size_t i = 0;
  for_each_slice(x, plan, [&](std::size_t base, float m, float log_sum) {
    double sum_log_p = 0.0;
    for (std::size_t c = 0; c < classes; ++c) {
      const float log_p = x[base + c * stride] - m - log_sum;
      p[base + c * stride] = std::exp(log_p);
      sum_log_p += log_p;
    }
    const double target_log_p = x[base + class_of(target_node, i) * stride] - m - log_sum;
    // The smoothing term only with smoothing: 0 * (a log-probability of -inf) is NaN, and a
    // logit of -inf at a class other than the target's must leave the loss finite (or +inf).
    const double smoothed = label_smoothing != 0.0F ? label_smoothing * sum_log_p / static_cast<double>(classes) : 0.0;
    const double l = -(1.0 - label_smoothing) * target_log_p - smoothed;
    if (reduction == Reduction::none) out.own_value.data()[i] = static_cast<float>(l);
    total += l;
    ++i;
  });
  if (reduction != Reduction::none) out.own_value.data()[0] = static_cast<float>(total * scale);
  return tape.last();
}
static void cross_entropy_backward(Tape& t, const Node& n) {
  Node& logits = input(t, n, 0);
  if (!logits.requires_grad) return;
  const Node& targets = input(t, n, 1);
  const float e = n.attrs<CrossEntropyAttrs>().smoothing;
  const ClassLayout layout = layout_of(logits.value().shape());
  const std::size_t classes = layout.classes, stride = layout.stride;
  const float* p = n.saved.data();
  float* dx = logits.grad().data();
  const float off = e / static_cast<float>(classes);
  for (std::size_t i = 0; i < targets.value().size(); ++i) {
    const float up = detail::upstream(n, i);
    const std::size_t target = class_of(targets, i);
    const std::size_t base = class_offset(i, 0, layout);
    for (std::size_t c = 0; c < classes; ++c)
      dx[base + c * stride] += up * (p[base + c * stride] - off - (c == target ? 1.0F - e : 0.0F));
  }
}

// ---- nll_loss: l_i = -log_probs[i, t_i];  d l_i / d log_probs[i, t_i] = -1 ----

Var nll_loss(Var log_probs, Var targets, Reduction reduction) {
  const ClassLayout layout = check_targets("nll_loss", log_probs, targets);
  const float* lp = log_probs.value().data();
  const Node& target_node = log_probs.tape().node(targets);
  return detail::reduced_loss("nll_loss", {log_probs, targets}, targets.shape(), reduction, nll_loss_backward,
                              [&](std::size_t i) { return -lp[class_offset(i, class_of(target_node, i), layout)]; });
}
static void nll_loss_backward(Tape& t, const Node& n) {
  Node& log_probs = input(t, n, 0);
  if (!log_probs.requires_grad) return;
  const Node& targets = input(t, n, 1);
  const std::size_t count = targets.value().size();
  const ClassLayout layout = layout_of(log_probs.value().shape());
  float* dx = log_probs.grad().data();
  for (std::size_t i = 0; i < count; ++i) dx[class_offset(i, class_of(targets, i), layout)] -= detail::upstream(n, i);
}

}  // namespace ag
