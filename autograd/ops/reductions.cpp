// sum and mean, over everything or along one axis. The gradient of a sum copies the
// upstream gradient back to every element that was summed; a mean also scales by 1/count.
#include <fmt/format.h>

#include "autograd/ops.hpp"
#include "autograd/ops/common.hpp"

namespace ag {
using detail::input;

// Node attributes: attr[0] = axis (0, 1, or 2 for "all"); scalar = 1 for sum, 1/count for mean.
static constexpr std::size_t kAllAxes = 2;

// dx[i, j] += scale * g[the output cell that x[i, j] was summed into]
static void reduce_backward(Tape& t, const Node& n) {
  Node& x = input(t, n, 0);
  if (!x.requires_grad) return;
  const std::size_t rows = x.value().shape()[0], cols = x.value().shape()[1];
  const std::size_t axis = n.attr[0];
  const float* g = n.grad().data();
  float* dx = x.grad().data();
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j) {
      const float gij = axis == kAllAxes ? g[0] : axis == 0 ? g[j] : g[i];
      dx[i * cols + j] += n.scalar * gij;
    }
}

static Var reduce(const char* name, Var x, std::size_t axis, bool is_mean) {
  const std::size_t rows = x.rows(), cols = x.cols();
  const Shape out_shape = axis == kAllAxes ? Shape{1, 1} : axis == 0 ? Shape{1, cols} : Shape{rows, 1};
  const std::size_t count = axis == kAllAxes ? rows * cols : axis == 0 ? rows : cols;
  Tape& tape = x.tape();
  Node& out = tape.record(name, {x}, out_shape, reduce_backward);
  out.attr[0] = axis;
  out.scalar = is_mean ? 1.0F / static_cast<float>(count) : 1.0F;
  // Accumulate in double: a sum of 100k floats would otherwise lose digits.
  const float* px = x.value().data();
  float* y = out.own_value.data();
  if (axis == 0) {
    for (std::size_t j = 0; j < cols; ++j) {
      double s = 0.0;
      for (std::size_t i = 0; i < rows; ++i) s += px[i * cols + j];
      y[j] = static_cast<float>(s * out.scalar);
    }
  } else if (axis == 1) {
    for (std::size_t i = 0; i < rows; ++i) {
      double s = 0.0;
      for (std::size_t j = 0; j < cols; ++j) s += px[i * cols + j];
      y[i] = static_cast<float>(s * out.scalar);
    }
  } else {
    double s = 0.0;
    for (std::size_t i = 0; i < rows * cols; ++i) s += px[i];
    y[0] = static_cast<float>(s * out.scalar);
  }
  return tape.last();
}

static std::size_t checked_axis(const char* op, int axis) {
  if (axis != 0 && axis != 1)
    throw std::invalid_argument(fmt::format("{}: axis must be 0 (rows) or 1 (columns), got {}", op, axis));
  return static_cast<std::size_t>(axis);
}

Var sum(Var x) { return reduce("sum", x, kAllAxes, false); }
Var sum(Var x, int axis) { return reduce("sum", x, checked_axis("sum", axis), false); }
Var mean(Var x) { return reduce("mean", x, kAllAxes, true); }
Var mean(Var x, int axis) { return reduce("mean", x, checked_axis("mean", axis), true); }

}  // namespace ag
