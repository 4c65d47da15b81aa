// exp, log, log1p, expm1, square, sqrt, rsqrt, reciprocal, pow, abs, clamp, sin, cos: each forward
// with its derivative dy/dx written from (x, y).
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "autograd/ops.hpp"
#include "autograd/ops/elementwise.hpp"

namespace ag {
using detail::unary_backward;
using detail::unary_forward;

// The backward rules, each defined right after its forward.
static void exp_backward(Tape& t, const Node& n);
static void log_backward(Tape& t, const Node& n);
static void square_backward(Tape& t, const Node& n);
static void sqrt_backward(Tape& t, const Node& n);
static void pow_backward(Tape& t, const Node& n);
static void abs_backward(Tape& t, const Node& n);
static void clamp_backward(Tape& t, const Node& n);
static void log1p_backward(Tape& t, const Node& n);
static void expm1_backward(Tape& t, const Node& n);
static void rsqrt_backward(Tape& t, const Node& n);
static void reciprocal_backward(Tape& t, const Node& n);
static void sin_backward(Tape& t, const Node& n);
static void cos_backward(Tape& t, const Node& n);

// y = e^x, dy/dx = y
Var exp(Var x) {
  return unary_forward("exp", x, exp_backward, [](float v) { return std::exp(v); });
}
static void exp_backward(Tape& t, const Node& n) {
  unary_backward(t, n, [](float, float y) { return y; });
}

// y = log x, dy/dx = 1/x
Var log(Var x) {
  return unary_forward("log", x, log_backward, [](float v) { return std::log(v); });
}
static void log_backward(Tape& t, const Node& n) {
  unary_backward(t, n, [](float x, float) { return 1.0F / x; });
}

// y = log(1 + x), exact for small x, dy/dx = 1 / (1 + x)
Var log1p(Var x) {
  return unary_forward("log1p", x, log1p_backward, [](float v) { return std::log1p(v); });
}
static void log1p_backward(Tape& t, const Node& n) {
  unary_backward(t, n, [](float x, float) { return 1.0F / (1.0F + x); });
}

// y = e^x - 1, exact for small x, dy/dx = y + 1
Var expm1(Var x) {
  return unary_forward("expm1", x, expm1_backward, [](float v) { return std::expm1(v); });
}
static void expm1_backward(Tape& t, const Node& n) {
  unary_backward(t, n, [](float, float y) { return y + 1.0F; });
}

// y = x^2, dy/dx = 2x
Var square(Var x) {
  return unary_forward("square", x, square_backward, [](float v) { return v * v; });
}
static void square_backward(Tape& t, const Node& n) {
  unary_backward(t, n, [](float x, float) { return 2.0F * x; });
}

// y = sqrt x, dy/dx = 1 / (2y)
Var sqrt(Var x) {
  return unary_forward("sqrt", x, sqrt_backward, [](float v) { return std::sqrt(v); });
}
static void sqrt_backward(Tape& t, const Node& n) {
  unary_backward(t, n, [](float, float y) { return 0.5F / y; });
}

// y = 1 / sqrt x, dy/dx = -y^3 / 2
Var rsqrt(Var x) {
  return unary_forward("rsqrt", x, rsqrt_backward, [](float v) { return 1.0F / std::sqrt(v); });
}
static void rsqrt_backward(Tape& t, const Node& n) {
  unary_backward(t, n, [](float, float y) { return -0.5F * y * y * y; });
}

// y = 1 / x, dy/dx = -y^2
Var reciprocal(Var x) {
  return unary_forward("reciprocal", x, reciprocal_backward, [](float v) { return 1.0F / v; });
}
static void reciprocal_backward(Tape& t, const Node& n) {
  unary_backward(t, n, [](float, float y) { return -y * y; });
}

// y = x^p, dy/dx = p x^(p - 1)
struct PowAttrs {
  float p;
};
// x^p as PyTorch's pow computes it: 0.5 as sqrt and -0.5 as 1 / sqrt, which differ from
// std::pow at -inf (NaN, not inf) and at -0 (-0 and -inf, not 0 and inf); 2, 3, -1 and -2
// as products and quotients (the same values within rounding, and the same infinities).
static float torch_pow(float x, float p) {
  if (p == 0.5F) return std::sqrt(x);
  if (p == -0.5F) return 1.0F / std::sqrt(x);
  if (p == 2.0F) return x * x;
  if (p == 3.0F) return x * x * x;
  if (p == -1.0F) return 1.0F / x;
  if (p == -2.0F) return 1.0F / (x * x);
  return std::pow(x, p);
}
Var pow(Var x, float p) {
  Var y = unary_forward("pow", x, pow_backward, [p](float v) { return torch_pow(v, p); });
  y.tape().node(y).set_attrs(PowAttrs{p});
  return y;
}
static void pow_backward(Tape& t, const Node& n) {
  const float p = n.attrs<PowAttrs>().p;
  // x^0 is 1 everywhere: its gradient is 0 (PyTorch's zeros_like), also at 0, NaN and
  // infinities and for a NaN or infinite g, where g * 0 * x^-1 would be NaN.
  if (p == 0.0F) return;
  unary_backward(t, n, [p](float x, float) { return p * torch_pow(x, p - 1.0F); });
}

// y = |x|, dy/dx = sign(x) (0 at 0, as in PyTorch)
Var abs(Var x) {
  return unary_forward("abs", x, abs_backward, [](float v) { return std::abs(v); });
}
static void abs_backward(Tape& t, const Node& n) {
  unary_backward(t, n, [](float x, float) { return x > 0.0F ? 1.0F : x < 0.0F ? -1.0F : 0.0F; });
}

// y = min(max(x, lo), hi), dy/dx = 1 for lo <= x <= hi and 0 outside
struct ClampAttrs {
  float lo, hi;
};
Var clamp(Var x, float lo, float hi) {
  // lo above hi gives hi everywhere (gradient 0), as torch.clamp; a NaN bound is refused.
  if (std::isnan(lo) || std::isnan(hi)) throw std::invalid_argument(fmt::format("clamp: a bound is NaN ({}, {})", lo, hi));
  Var y = unary_forward("clamp", x, clamp_backward, [lo, hi](float v) { return std::min(std::max(v, lo), hi); });
  y.tape().node(y).set_attrs(ClampAttrs{lo, hi});
  return y;
}
static void clamp_backward(Tape& t, const Node& n) {
  const ClampAttrs a = n.attrs<ClampAttrs>();
  // where(lo <= x <= hi, g, 0), as PyTorch's clamp_backward: 0 outside even for a NaN or
  // infinite g
  detail::unary_masked_backward(
      t, n, [a](float x, float) { return x >= a.lo && x <= a.hi; }, [](float, float) { return 1.0F; });
}

// y = sin x, dy/dx = cos x
Var sin(Var x) {
  return unary_forward("sin", x, sin_backward, [](float v) { return std::sin(v); });
}
static void sin_backward(Tape& t, const Node& n) {
  unary_backward(t, n, [](float x, float) { return std::cos(x); });
}

// y = cos x, dy/dx = -sin x
Var cos(Var x) {
  return unary_forward("cos", x, cos_backward, [](float v) { return std::cos(v); });
}
static void cos_backward(Tape& t, const Node& n) {
  unary_backward(t, n, [](float x, float) { return -std::sin(x); });
}

}  // namespace ag
