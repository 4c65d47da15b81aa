// broadcast_to, and the elementwise ops built on it: add, sub, mul, div, minimum, maximum,
// where; neg and the ops with a constant scalar.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "autograd/ops.hpp"
#include "autograd/ops/axes.hpp"
#include "autograd/ops/elementwise.hpp"

namespace ag {
using detail::binary_backward;
using detail::binary_forward;
using detail::input;
using detail::unary_backward;
using detail::unary_forward;

// The backward rules, each defined right after its forward.
static void broadcast_to_backward(Tape& t, const Node& n);
static void add_backward(Tape& t, const Node& n);
static void sub_backward(Tape& t, const Node& n);
static void mul_backward(Tape& t, const Node& n);
static void div_backward(Tape& t, const Node& n);
static void minimum_backward(Tape& t, const Node& n);
static void maximum_backward(Tape& t, const Node& n);
static void where_backward(Tape& t, const Node& n);
static void neg_backward(Tape& t, const Node& n);
static void add_scalar_backward(Tape& t, const Node& n);
static void mul_scalar_backward(Tape& t, const Node& n);

// ---- broadcast_to: y[i...] = x[i... with x's size-1 dimensions at 0];
//      dx = g summed over the repeated dimensions (in double: one value repeated 10^6 times
//      gets a gradient of 10^6 terms) ----

/// x's shape padded with leading 1s to `rank`.
static Shape padded(const Shape& x, std::size_t rank) {
  Shape p(rank - x.size(), 1);
  p.insert(p.end(), x.begin(), x.end());
  return p;
}

Var broadcast_to(Var x, const Shape& shape) {
  const Shape& from_raw = x.value().shape();
  bool fits = from_raw.size() <= shape.size();
  const Shape from = fits ? padded(from_raw, shape.size()) : from_raw;
  for (std::size_t d = 0; fits && d < shape.size(); ++d) fits = from[d] == shape[d] || from[d] == 1;
  if (!fits)
    throw ShapeError(fmt::format("broadcast_to: cannot broadcast {} to {}", to_string(from_raw),
                                 to_string(shape)));
  Tape& tape = x.tape();
  Node& out = tape.record("broadcast_to", {x}, shape, broadcast_to_backward);
  // Walk the result in order, reading x with stride 0 along the repeated dimensions.
  const auto st = detail::strides_of(from);
  detail::Loop loop;
  for (std::size_t d = 0; d < shape.size(); ++d) loop.push(shape[d], from[d] == 1 ? 0 : st[d]);
  const float* px = x.value().data();
  float* y = out.own_value.data();
  std::size_t i = 0;
  detail::for_each_offset(loop, [&](std::size_t off) { y[i++] = px[off]; });
  return tape.last();
}
static void broadcast_to_backward(Tape& t, const Node& n) {
  Node& x = input(t, n, 0);
  if (!x.requires_grad) return;
  const Shape& out = n.value().shape();
  const Shape from = padded(x.value().shape(), out.size());
  std::uint32_t repeated = 0;
  for (std::size_t d = 0; d < out.size(); ++d)
    if (from[d] == 1 && out[d] != 1) repeated |= 1U << d;
  // The kept dimensions of the plan are x's own, in x's order.
  detail::sum_reduce(n.grad().data(), detail::plan_reduction(out, repeated), 1.0, x.grad().data(), true);
}

Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b) {
  const std::size_t rank = std::max(a.size(), b.size());
  const Shape pa = padded(a, rank), pb = padded(b, rank);
  Shape out(rank);
  for (std::size_t d = 0; d < rank; ++d) {
    if (pa[d] == pb[d] || pb[d] == 1) {
      out[d] = pa[d];
    } else if (pa[d] == 1) {
      out[d] = pb[d];
    } else {
      throw ShapeError(fmt::format("{}: shapes {} and {} do not broadcast (aligned at the last "
                                   "dimension, each must be equal, or 1 in one of them)",
                                   op, to_string(a), to_string(b)));
    }
  }
  return out;
}

/// Brings a and b to their common shape, recording broadcast_to only where needed.
static void broadcast_pair(const char* op, Var& a, Var& b) {
  if (&a.tape() != &b.tape())
    throw std::logic_error(fmt::format("{}: operands live on different tapes", op));
  if (a.value().shape() == b.value().shape()) return;
  const Shape s = broadcast_shapes(op, a.value().shape(), b.value().shape());
  if (a.value().shape() != s) a = broadcast_to(a, s);
  if (b.value().shape() != s) b = broadcast_to(b, s);
}

// ---- the binary ops: y = f(a, b) with df/da and df/db ----

Var add(Var a, Var b) {
  broadcast_pair("add", a, b);
  return binary_forward("add", a, b, add_backward, [](float x, float y) { return x + y; });
}
static void add_backward(Tape& t, const Node& n) {
  binary_backward(t, n, [](float, float, float) { return 1.0F; },
                  [](float, float, float) { return 1.0F; });
}

Var sub(Var a, Var b) {
  broadcast_pair("sub", a, b);
  return binary_forward("sub", a, b, sub_backward, [](float x, float y) { return x - y; });
}
static void sub_backward(Tape& t, const Node& n) {
  binary_backward(t, n, [](float, float, float) { return 1.0F; },
                  [](float, float, float) { return -1.0F; });
}

// y = a b: dy/da = b, dy/db = a
Var mul(Var a, Var b) {
  broadcast_pair("mul", a, b);
  return binary_forward("mul", a, b, mul_backward, [](float x, float y) { return x * y; });
}
static void mul_backward(Tape& t, const Node& n) {
  binary_backward(t, n, [](float, float b, float) { return b; },
                  [](float a, float, float) { return a; });
}

// y = a / b: dy/da = 1/b, dy/db = -a/b^2 = -y/b
Var div(Var a, Var b) {
  broadcast_pair("div", a, b);
  return binary_forward("div", a, b, div_backward, [](float x, float y) { return x / y; });
}
static void div_backward(Tape& t, const Node& n) {
  binary_backward(t, n, [](float, float b, float) { return 1.0F / b; },
                  [](float, float b, float y) { return -y / b; });
}

// y = min(a, b): the gradient goes to the smaller input, half to each at a tie; a NaN on either
// side is the result and takes the gradient, as in PyTorch (std::min(1, nan) is 1: it hid the NaN).
Var minimum(Var a, Var b) {
  broadcast_pair("minimum", a, b);
  return binary_forward("minimum", a, b, minimum_backward,
                        [](float x, float y) { return std::isnan(y) ? y : std::min(x, y); });
}
static void minimum_backward(Tape& t, const Node& n) {
  // (masked: the larger input gets 0 even for a NaN or infinite g, as PyTorch's masked_fill)
  binary_backward<true>(t, n, [](float a, float b, float) { return a == b ? 0.5F : a >= b ? 0.0F : 1.0F; },
                  [](float a, float b, float) { return a == b ? 0.5F : b >= a ? 0.0F : 1.0F; });
}

Var maximum(Var a, Var b) {
  broadcast_pair("maximum", a, b);
  return binary_forward("maximum", a, b, maximum_backward,
                        [](float x, float y) { return std::isnan(y) ? y : std::max(x, y); });
}
static void maximum_backward(Tape& t, const Node& n) {
  binary_backward<true>(t, n, [](float a, float b, float) { return a == b ? 0.5F : a <= b ? 0.0F : 1.0F; },
                  [](float a, float b, float) { return a == b ? 0.5F : b <= a ? 0.0F : 1.0F; });
}

// ---- where(mask, a, b): a where mask is nonzero, else b; no gradient to the mask ----

Var where(Var mask, Var a, Var b) {
  broadcast_pair("where", a, b);
  broadcast_pair("where", mask, a);
  broadcast_pair("where", a, b);  // mask may have widened a
  Tape& tape = a.tape();
  Node& out = tape.record("where", {mask, a, b}, a.value().shape(), where_backward);
  const float* m = mask.value().data();
  const float* pa = a.value().data();
  const float* pb = b.value().data();
  float* y = out.own_value.data();
  for (std::size_t i = 0; i < out.own_value.size(); ++i) y[i] = m[i] != 0.0F ? pa[i] : pb[i];
  return tape.last();
}
static void where_backward(Tape& t, const Node& n) {
  const float* mask = input(t, n, 0).value().data();
  const float* g = n.grad().data();
  for (int k = 1; k <= 2; ++k) {
    Node& x = input(t, n, k);
    if (!x.requires_grad) continue;
    float* dx = x.grad().data();
    for (std::size_t i = 0; i < n.value().size(); ++i)
      if ((mask[i] != 0.0F) == (k == 1)) dx[i] += g[i];
  }
}

// ---- unary: -x, x + c, x * c (c is the op's attribute) ----

struct ScalarAttrs {
  float c;
};

Var neg(Var x) {
  return unary_forward("neg", x, neg_backward, [](float v) { return -v; });
}
static void neg_backward(Tape& t, const Node& n) {
  unary_backward(t, n, [](float, float) { return -1.0F; });
}

Var add_scalar(Var x, float c) {
  return unary_forward("add_scalar", x, add_scalar_backward, [c](float v) { return v + c; });
}
static void add_scalar_backward(Tape& t, const Node& n) {
  unary_backward(t, n, [](float, float) { return 1.0F; });
}

Var mul_scalar(Var x, float c) {
  Var y = unary_forward("mul_scalar", x, mul_scalar_backward, [c](float v) { return v * c; });
  y.tape().node(y).set_attrs(ScalarAttrs{c});
  return y;
}
static void mul_scalar_backward(Tape& t, const Node& n) {
  const float c = n.attrs<ScalarAttrs>().c;
  unary_backward(t, n, [c](float, float) { return c; });
}

// ---- operators ----
Var operator+(Var a, Var b) { return add(a, b); }
Var operator-(Var a, Var b) { return sub(a, b); }
Var operator*(Var a, Var b) { return mul(a, b); }
Var operator/(Var a, Var b) { return div(a, b); }
Var operator-(Var x) { return neg(x); }
Var operator+(Var x, float c) { return add_scalar(x, c); }
Var operator+(float c, Var x) { return add_scalar(x, c); }
Var operator-(Var x, float c) { return add_scalar(x, -c); }
Var operator-(float c, Var x) { return add_scalar(neg(x), c); }
Var operator*(Var x, float c) { return mul_scalar(x, c); }
Var operator*(float c, Var x) { return mul_scalar(x, c); }
Var operator/(Var x, float c) { return mul_scalar(x, 1.0F / c); }
Var operator/(float c, Var x) { return div(x.tape().constant(Array{c}), x); }

}  // namespace ag
