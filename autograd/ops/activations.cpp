// relu, sigmoid, tanh, softplus, log_sigmoid: forward in a form that cannot overflow,
// with dy/dx beside it.
#include <algorithm>
#include <cmath>

#include "autograd/ops.hpp"
#include "autograd/ops/elementwise.hpp"
#include "autograd/stable_math.hpp"

namespace ag {
using detail::unary_backward;
using detail::unary_forward;

// y = max(x, 0), dy/dx = [x > 0]
static void relu_backward(Tape& t, const Node& n) {
  unary_backward(t, n, [](float x, float) { return x > 0.0F ? 1.0F : 0.0F; });
}
Var relu(Var x) {
  return unary_forward("relu", x, relu_backward, [](float v) { return std::max(v, 0.0F); });
}

// y = 1 / (1 + e^-x), dy/dx = y (1 - y)
static void sigmoid_backward(Tape& t, const Node& n) {
  unary_backward(t, n, [](float, float y) { return y * (1.0F - y); });
}
Var sigmoid(Var x) { return unary_forward("sigmoid", x, sigmoid_backward, stable::sigmoid); }

// y = tanh x, dy/dx = 1 - y^2
static void tanh_backward(Tape& t, const Node& n) {
  unary_backward(t, n, [](float, float y) { return 1.0F - y * y; });
}
Var tanh(Var x) {
  return unary_forward("tanh", x, tanh_backward, [](float v) { return std::tanh(v); });
}

// y = log(1 + e^x), dy/dx = sigmoid(x)
static void softplus_backward(Tape& t, const Node& n) {
  unary_backward(t, n, [](float x, float) { return stable::sigmoid(x); });
}
Var softplus(Var x) { return unary_forward("softplus", x, softplus_backward, stable::softplus); }

// y = log sigmoid(x) = -softplus(-x), dy/dx = sigmoid(-x)
static void log_sigmoid_backward(Tape& t, const Node& n) {
  unary_backward(t, n, [](float x, float) { return stable::sigmoid(-x); });
}
Var log_sigmoid(Var x) {
  return unary_forward("log_sigmoid", x, log_sigmoid_backward,
                       [](float v) { return -stable::softplus(-v); });
}

}  // namespace ag
