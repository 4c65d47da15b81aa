// exp, log, square, sqrt: each forward with its derivative dy/dx written from (x, y).
#include <cmath>

#include "autograd/ops.hpp"
#include "autograd/ops/elementwise.hpp"

namespace ag {
using detail::unary_backward;
using detail::unary_forward;

// y = e^x, dy/dx = y
static void exp_backward(Tape& t, const Node& n) {
  unary_backward(t, n, [](float, float y) { return y; });
}
Var exp(Var x) {
  return unary_forward("exp", x, exp_backward, [](float v) { return std::exp(v); });
}

// y = log x, dy/dx = 1/x
static void log_backward(Tape& t, const Node& n) {
  unary_backward(t, n, [](float x, float) { return 1.0F / x; });
}
Var log(Var x) {
  return unary_forward("log", x, log_backward, [](float v) { return std::log(v); });
}

// y = x^2, dy/dx = 2x
static void square_backward(Tape& t, const Node& n) {
  unary_backward(t, n, [](float x, float) { return 2.0F * x; });
}
Var square(Var x) {
  return unary_forward("square", x, square_backward, [](float v) { return v * v; });
}

// y = sqrt x, dy/dx = 1 / (2y)
static void sqrt_backward(Tape& t, const Node& n) {
  unary_backward(t, n, [](float, float y) { return 0.5F / y; });
}
Var sqrt(Var x) {
  return unary_forward("sqrt", x, sqrt_backward, [](float v) { return std::sqrt(v); });
}

}  // namespace ag
