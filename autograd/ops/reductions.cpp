// sum, mean, max, min, var, std and logsumexp over a list of axes. Each output element folds the input
// elements of its "reduced loop" (ops/axes.hpp); each backward rule walks the same loops to
// send the gradient back to those elements.
#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "autograd/ops.hpp"
#include "autograd/ops/axes.hpp"
#include "autograd/ops/common.hpp"

namespace ag {
using detail::input;

// The backward rules, each defined right after its forward.
static void sum_backward(Tape& t, const Node& n);
static void extreme_backward(Tape& t, const Node& n);
static void logsumexp_backward(Tape& t, const Node& n);
static void var_backward(Tape& t, const Node& n);
static void std_backward(Tape& t, const Node& n);

struct ReduceAttrs {
  std::uint32_t axes;  // bitmask of the reduced axes of the input
  double scale;        // 1 for sum, 1/count for mean, var's gradient factor
};

/// The result's shape: the reduced axes removed, or kept with size 1.
static Shape reduced_shape(const Shape& in, std::uint32_t mask, bool keepdim) {
  Shape out;
  for (std::size_t d = 0; d < in.size(); ++d) {
    if (!((mask >> d) & 1U)) out.push_back(in[d]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}

static Node& record_reduction(const char* name, Var x, std::uint32_t mask, bool keepdim, double scale,
                              BackwardFn backward) {
  Node& out = x.tape().record(name, {x}, reduced_shape(x.value().shape(), mask, keepdim), backward);
  out.set_attrs(ReduceAttrs{mask, scale});
  return out;
}

/// What a backward rule of a reduction reads: the plan over x, x, y = f(x), g, and dx.
struct ReductionGrad {
  detail::ReductionPlan plan;
  const float *x, *y, *g;
  float* dx;
};

static ReductionGrad reduction_grad(Node& x, const Node& n) {
  return {detail::plan_reduction(x.value().shape(), n.attrs<ReduceAttrs>().axes), x.value().data(),
          n.value().data(), n.grad().data(), x.grad().data()};
}

static std::uint32_t all_axes(std::size_t rank) { return rank >= 32 ? ~0U : (1U << rank) - 1U; }

// ---- sum and mean: y[o] = scale * sum of x over o's elements;  dx = scale * g[o] ----

static Var sum_like(const char* name, Var x, std::uint32_t mask, bool keepdim, bool is_mean) {
  const detail::ReductionPlan p = detail::plan_reduction(x.value().shape(), mask);
  // The scale is a float, as it always was, so means stay bit-identical.
  const double scale = is_mean ? 1.0F / static_cast<float>(p.reduced.count()) : 1.0;
  Node& out = record_reduction(name, x, mask, keepdim, scale, sum_backward);
  detail::sum_reduce(x.value().data(), p, scale, out.own_value.data(), false);
  return x.tape().last();
}

Var sum(Var x) { return sum_like("sum", x, all_axes(x.dim()), true, false); }
Var sum(Var x, Axes axes, bool keepdim) {
  return sum_like("sum", x, detail::axis_mask("sum", axes, x.dim()), keepdim, false);
}
Var mean(Var x) { return sum_like("mean", x, all_axes(x.dim()), true, true); }
Var mean(Var x, Axes axes, bool keepdim) {
  return sum_like("mean", x, detail::axis_mask("mean", axes, x.dim()), keepdim, true);
}
static void sum_backward(Tape& t, const Node& n) {
  Node& x = input(t, n, 0);
  if (!x.requires_grad) return;
  const ReduceAttrs a = n.attrs<ReduceAttrs>();
  const detail::ReductionPlan p = detail::plan_reduction(x.value().shape(), a.axes);
  const float* g = n.grad().data();
  float* dx = x.grad().data();
  detail::for_each_output(p, [&](std::size_t o, std::size_t base) {
    const float go = static_cast<float>(a.scale) * g[o];
    detail::for_each_offset(p.reduced, [&](std::size_t r) { dx[base + r] += go; });
  });
}

// ---- max and min: y[o] = the largest (smallest) of o's elements;
//      dx = g[o] / k at each of the k elements equal to y[o], as torch.amax / amin ----
// (torch.max(x, dim) sends it all to the index it returns instead, but over a list of axes, as
// here, PyTorch has only amax; max(x) over everything splits a tie as amax does.) A NaN
// maximum (a NaN anywhere in o's elements) gives each of them a NaN gradient: amax's g / 0 * 0.

static Var extreme(const char* name, Var x, Axes axes, bool keepdim, bool largest) {
  const std::uint32_t mask = detail::axis_mask(name, axes, x.dim());
  const detail::ReductionPlan p = detail::plan_reduction(x.value().shape(), mask);
  if (p.reduced.count() == 0)  // (an empty result of a non-empty axis is fine: [0, 3] over axis 1)
    throw ShapeError(fmt::format("{}: cannot take the {} over an empty axis of {}", name,
                                 largest ? "maximum" : "minimum", to_string(x.shape())));
  Node& out = record_reduction(name, x, mask, keepdim, 1.0, extreme_backward);
  const float* px = x.value().data();
  float* y = out.own_value.data();
  const float start = largest ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity();
  detail::for_each_output(p, [&](std::size_t o, std::size_t base) {
    float m = start;
    bool nan = false;
    detail::for_each_offset(p.reduced, [&](std::size_t r) {
      nan = nan || std::isnan(px[base + r]);
      m = largest ? std::max(m, px[base + r]) : std::min(m, px[base + r]);
    });
    y[o] = nan ? std::numeric_limits<float>::quiet_NaN() : m;  // NaN propagates, as in PyTorch
  });
  return x.tape().last();
}
Var max(Var x, Axes axes, bool keepdim) { return extreme("max", x, axes, keepdim, true); }
Var min(Var x, Axes axes, bool keepdim) { return extreme("min", x, axes, keepdim, false); }
static void extreme_backward(Tape& t, const Node& n) {
  Node& x = input(t, n, 0);
  if (!x.requires_grad) return;
  const ReductionGrad r = reduction_grad(x, n);  // (no structured binding: clang 14 cannot capture one)
  detail::for_each_output(r.plan, [&](std::size_t o, std::size_t base) {
    std::size_t ties = 0;
    detail::for_each_offset(r.plan.reduced, [&](std::size_t i) { ties += r.x[base + i] == r.y[o]; });
    const float share = ties ? r.g[o] / static_cast<float>(ties) : std::numeric_limits<float>::quiet_NaN();
    detail::for_each_offset(r.plan.reduced, [&](std::size_t i) {
      if (ties == 0 || r.x[base + i] == r.y[o]) r.dx[base + i] += share;
    });
  });
}

// ---- var: y[o] = the sum of (x - m)^2 over o's elements / max(0, count - correction), m their
//      mean;  dx = 2 / (count - correction) * g[o] * (x - m), as PyTorch's var_backward ----
// An op of its own rather than a composite of mean, sub, square and sum: PyTorch's gradient
// divides by count - correction itself, also where the value divides by 0 (inf) or the
// correction exceeds the count (a finite negative factor), and through the composite's mean
// the infinities met as inf - inf = NaN.

/// The mean of o's elements (in double, rounded to float as the elements are).
static float mean_of(const float* x, const detail::ReductionPlan& p, std::size_t base) {
  double s = 0.0;
  detail::for_each_offset(p.reduced, [&](std::size_t r) { s += x[base + r]; });
  return static_cast<float>(s / static_cast<double>(p.reduced.count()));
}

/// sum((x - m)^2) / divisor over o's elements, in double: var's value, and std's before its
/// square root, so a standard deviation stays finite where the variance passes float's range
/// (std of [1e30, -1e30] is 1.4e30, as PyTorch's, not sqrt(inf)).
static double variance_of(const float* x, const detail::ReductionPlan& p, std::size_t base, double divisor) {
  const float m = mean_of(x, p, base);
  double squares = 0.0;
  detail::for_each_offset(p.reduced, [&](std::size_t r) {
    const float d = x[base + r] - m;
    squares += static_cast<double>(d) * d;
  });
  return squares / divisor;
}

/// var, or std with `root`: y[o] = variance_of(o), or its square root.
static Var spread(const char* name, Var x, Axes axes, bool keepdim, int correction, bool root, BackwardFn backward) {
  const std::uint32_t mask = detail::axis_mask(name, axes, x.dim());
  const detail::ReductionPlan p = detail::plan_reduction(x.value().shape(), mask);
  const long long dof = static_cast<long long>(p.reduced.count()) - correction;
  // PyTorch divides by max(0, count - correction): a single element with Bessel's correction
  // (or none at all) gives 0 / 0 = NaN, as there, rather than an error.
  const double divisor = static_cast<double>(std::max(0LL, dof));
  // the gradient's factor 2 / (count - correction) (inf at 0, negative beyond), a float held
  // exactly in the attributes' double
  Node& out = record_reduction(name, x, mask, keepdim, 2.0F / static_cast<float>(dof), backward);
  const float* px = x.value().data();
  float* y = out.own_value.data();
  detail::for_each_output(p, [&](std::size_t o, std::size_t base) {
    const double v = variance_of(px, p, base, divisor);
    y[o] = static_cast<float>(root ? std::sqrt(v) : v);
  });
  return x.tape().last();
}

/// dx = factor * gv * (x - m), gv = variance_grad(g[o], y[o]) the gradient reaching the variance.
template <class VarianceGrad>
static void spread_backward(Tape& t, const Node& n, VarianceGrad variance_grad) {
  Node& x = input(t, n, 0);
  if (!x.requires_grad) return;
  const ReductionGrad r = reduction_grad(x, n);
  const auto factor = static_cast<float>(n.attrs<ReduceAttrs>().scale);
  detail::for_each_output(r.plan, [&](std::size_t o, std::size_t base) {
    const float m = mean_of(r.x, r.plan, base);
    const float go = factor * variance_grad(r.g[o], r.y[o]);
    detail::for_each_offset(r.plan.reduced, [&](std::size_t i) { r.dx[base + i] += go * (r.x[base + i] - m); });
  });
}

Var var(Var x, Axes axes, bool keepdim, int correction) {
  return spread("var", x, axes, keepdim, correction, false, var_backward);
}
static void var_backward(Tape& t, const Node& n) {
  spread_backward(t, n, [](float g, float) { return g; });
}

// ---- std: y[o] = sqrt(var);  the gradient reaching var is g / (2 y), but 0 where y = 0 ----
// (every element equal), as PyTorch's std_backward masks it: sqrt's rule would send 0 * inf =
// NaN to every element. The mask gives 0 even where g is not finite, as PyTorch's masked_fill does.

Var std(Var x, Axes axes, bool keepdim, int correction) {
  return spread("std", x, axes, keepdim, correction, true, std_backward);
}
static void std_backward(Tape& t, const Node& n) {
  spread_backward(t, n, [](float g, float y) { return y != 0.0F ? g * (0.5F / y) : 0.0F; });
}

// ---- logsumexp: y[o] = m + log sum exp(x - m), m the maximum;  dx = g[o] exp(x - y[o]) ----

Var logsumexp(Var x, Axes axes, bool keepdim) {
  const std::uint32_t mask = detail::axis_mask("logsumexp", axes, x.dim());
  const detail::ReductionPlan p = detail::plan_reduction(x.value().shape(), mask);
  Node& out = record_reduction("logsumexp", x, mask, keepdim, 1.0, logsumexp_backward);
  const float* px = x.value().data();
  float* y = out.own_value.data();
  detail::for_each_output(p, [&](std::size_t o, std::size_t base) {
    float m = -std::numeric_limits<float>::infinity();
    bool nan = false;
    detail::for_each_offset(p.reduced, [&](std::size_t r) {
      nan = nan || std::isnan(px[base + r]);
      m = std::max(m, px[base + r]);
    });
    if (nan || std::isinf(m)) {  // NaN passed on (std::max skips it); all -inf (log 0) or some +inf: m itself
      y[o] = nan ? std::numeric_limits<float>::quiet_NaN() : m;
      return;
    }
    double s = 0.0;
    detail::for_each_offset(p.reduced, [&](std::size_t r) { s += std::exp(static_cast<double>(px[base + r] - m)); });
    y[o] = m + static_cast<float>(std::log(s));
  });
  return x.tape().last();
}
static void logsumexp_backward(Tape& t, const Node& n) {
  Node& x = input(t, n, 0);
  if (!x.requires_grad) return;
  const ReductionGrad r = reduction_grad(x, n);
  detail::for_each_output(r.plan, [&](std::size_t o, std::size_t base) {
    detail::for_each_offset(r.plan.reduced,
                            [&](std::size_t i) { r.dx[base + i] += r.g[o] * std::exp(r.x[base + i] - r.y[o]); });
  });
}

}  // namespace ag
