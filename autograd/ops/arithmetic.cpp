// broadcast_to, and the elementwise binary ops built on it: add, sub, mul, div; neg and
// the ops with a constant scalar.
#include <fmt/format.h>

#include "autograd/ops.hpp"
#include "autograd/ops/elementwise.hpp"

namespace ag {
using detail::binary_backward;
using detail::binary_forward;
using detail::input;
using detail::unary_backward;
using detail::unary_forward;

// ---- broadcast_to: y[i, j] = x[i or 0, j or 0];  dx = g summed over the repeated dims ----

static void broadcast_to_backward(Tape& t, const Node& n) {
  Node& x = input(t, n, 0);
  if (!x.requires_grad) return;
  const std::size_t rows = n.value().shape()[0], cols = n.value().shape()[1];
  const bool repeat_rows = x.value().shape()[0] == 1, repeat_cols = x.value().shape()[1] == 1;
  const std::size_t x_cols = x.value().shape()[1];
  const float* g = n.grad().data();
  float* dx = x.grad().data();
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j)
      dx[(repeat_rows ? 0 : i) * x_cols + (repeat_cols ? 0 : j)] += g[i * cols + j];
}

Var broadcast_to(Var x, Shape shape) {
  const Shape from = x.shape();
  for (int d = 0; d < 2; ++d)
    if (from[d] != shape[d] && from[d] != 1)
      throw ShapeError(fmt::format("broadcast_to: cannot broadcast {} to {}", to_string(from),
                                   to_string(shape)));
  Tape& tape = x.tape();
  Node& out = tape.record("broadcast_to", {x}, shape, broadcast_to_backward);
  const float* px = x.value().data();
  float* y = out.own_value.data();
  for (std::size_t i = 0; i < shape[0]; ++i)
    for (std::size_t j = 0; j < shape[1]; ++j)
      y[i * shape[1] + j] = px[(from[0] == 1 ? 0 : i) * from[1] + (from[1] == 1 ? 0 : j)];
  return tape.last();
}

/// The common shape of a and b, or a ShapeError naming the op.
static Shape broadcast_shape(const char* op, Shape a, Shape b) {
  Shape out{};
  for (int d = 0; d < 2; ++d) {
    if (a[d] == b[d] || b[d] == 1) {
      out[d] = a[d];
    } else if (a[d] == 1) {
      out[d] = b[d];
    } else {
      throw ShapeError(fmt::format("{}: shapes {} and {} do not broadcast (each dimension must "
                                   "be equal, or 1 in one of them)",
                                   op, to_string(a), to_string(b)));
    }
  }
  return out;
}

/// Brings a and b to their common shape, recording broadcast_to only where needed.
static void broadcast_pair(const char* op, Var& a, Var& b) {
  if (&a.tape() != &b.tape())
    throw std::logic_error(fmt::format("{}: operands live on different tapes", op));
  const Shape s = broadcast_shape(op, a.shape(), b.shape());
  if (a.shape() != s) a = broadcast_to(a, s);
  if (b.shape() != s) b = broadcast_to(b, s);
}

// ---- the binary ops: y = f(a, b) with df/da and df/db ----

static void add_backward(Tape& t, const Node& n) {
  binary_backward(t, n, [](float, float, float) { return 1.0F; },
                  [](float, float, float) { return 1.0F; });
}
Var add(Var a, Var b) {
  broadcast_pair("add", a, b);
  return binary_forward("add", a, b, add_backward, [](float x, float y) { return x + y; });
}

static void sub_backward(Tape& t, const Node& n) {
  binary_backward(t, n, [](float, float, float) { return 1.0F; },
                  [](float, float, float) { return -1.0F; });
}
Var sub(Var a, Var b) {
  broadcast_pair("sub", a, b);
  return binary_forward("sub", a, b, sub_backward, [](float x, float y) { return x - y; });
}

// y = a b: dy/da = b, dy/db = a
static void mul_backward(Tape& t, const Node& n) {
  binary_backward(t, n, [](float, float b, float) { return b; },
                  [](float a, float, float) { return a; });
}
Var mul(Var a, Var b) {
  broadcast_pair("mul", a, b);
  return binary_forward("mul", a, b, mul_backward, [](float x, float y) { return x * y; });
}

// y = a / b: dy/da = 1/b, dy/db = -a/b^2 = -y/b
static void div_backward(Tape& t, const Node& n) {
  binary_backward(t, n, [](float, float b, float) { return 1.0F / b; },
                  [](float, float b, float y) { return -y / b; });
}
Var div(Var a, Var b) {
  broadcast_pair("div", a, b);
  return binary_forward("div", a, b, div_backward, [](float x, float y) { return x / y; });
}

// ---- unary: -x, x + c, x * c (c is stored on the node) ----

static void neg_backward(Tape& t, const Node& n) {
  unary_backward(t, n, [](float, float) { return -1.0F; });
}
Var neg(Var x) {
  return unary_forward("neg", x, neg_backward, [](float v) { return -v; });
}

static void add_scalar_backward(Tape& t, const Node& n) {
  unary_backward(t, n, [](float, float) { return 1.0F; });
}
Var add_scalar(Var x, float c) {
  Var y = unary_forward("add_scalar", x, add_scalar_backward, [c](float v) { return v + c; });
  y.tape().node(y).scalar = c;
  return y;
}

static void mul_scalar_backward(Tape& t, const Node& n) {
  const float c = n.scalar;
  unary_backward(t, n, [c](float, float) { return c; });
}
Var mul_scalar(Var x, float c) {
  Var y = unary_forward("mul_scalar", x, mul_scalar_backward, [c](float v) { return v * c; });
  y.tape().node(y).scalar = c;
  return y;
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
Var operator/(float c, Var x) { return div(x.tape().constant(Array{{c}}), x); }

}  // namespace ag
