// relu, sigmoid, tanh, softplus, log_sigmoid, leaky_relu, elu, gelu, silu: forward in a form that cannot overflow,
// with dy/dx beside it.
#include <algorithm>
#include <cmath>
#include <numbers>

#include "autograd/kernels/vector_math.hpp"
#include "autograd/ops.hpp"
#include "autograd/ops/elementwise.hpp"
#include "autograd/stable_math.hpp"

namespace ag {
using detail::unary_backward;
using detail::unary_forward;

// The backward rules, each defined right after its forward.
static void relu_backward(Tape& t, const Node& n);
static void sigmoid_backward(Tape& t, const Node& n);
static void tanh_backward(Tape& t, const Node& n);
static void softplus_backward(Tape& t, const Node& n);
static void log_sigmoid_backward(Tape& t, const Node& n);
static void leaky_relu_backward(Tape& t, const Node& n);
static void elu_backward(Tape& t, const Node& n);
static void gelu_backward(Tape& t, const Node& n);
static void silu_backward(Tape& t, const Node& n);

// y = max(x, 0) (NaN stays NaN), dy/dx = [x > 0] (and 1 at NaN, as PyTorch passes it on)
Var relu(Var x) {
  Var y = unary_forward("relu", x, relu_backward, [](float v) { return std::max(v, 0.0F); });
  y.tape().node(y).writes_fresh = true;
  return y;
}
// The backward passes g except where x <= 0 (PyTorch's threshold_backward) rather
// than multiplying g by the 0 / 1 derivative: a select vectorizes, the product did not (g++
// keeps g * 0 for NaN's sake), and the ReLU mask is the VAE's most frequent backward.
static void relu_backward(Tape& t, const Node& n) {
  Node& x = detail::input(t, n, 0);
  if (!x.requires_grad) return;
  const float* in = x.value().data();
  const float* g = n.grad().data();
  float* dx = x.grad().data();
  const bool fresh = detail::fresh(n, 0);
  detail::elementwise_for(n.value().size(), [=](std::size_t begin, std::size_t end) {
    if (fresh)
      detail::relu_mask_add<true>(in + begin, g + begin, dx + begin, end - begin);
    else
      detail::relu_mask_add<false>(in + begin, g + begin, dx + begin, end - begin);
  });
}

// y = 1 / (1 + e^-x), dy/dx = y (1 - y)
Var sigmoid(Var x) {  // vectorized (vector_math.cpp): the last op of every picture the model draws
  Tape& tape = x.tape();
  Node& out = tape.record("sigmoid", {x}, x.shape(), sigmoid_backward);
  vec::sigmoid(x.value().data(), out.own_value.data(), out.own_value.size());
  return tape.last();
}
static void sigmoid_backward(Tape& t, const Node& n) {
  unary_backward(t, n, [](float, float y) { return y * (1.0F - y); });
}

// y = tanh x, dy/dx = 1 - y^2
Var tanh(Var x) {
  return unary_forward("tanh", x, tanh_backward, [](float v) { return std::tanh(v); });
}
static void tanh_backward(Tape& t, const Node& n) {
  unary_backward(t, n, [](float, float y) { return 1.0F - y * y; });
}

// y = log(1 + e^x), dy/dx = sigmoid(x)
Var softplus(Var x) { return unary_forward("softplus", x, softplus_backward, stable::softplus); }
static void softplus_backward(Tape& t, const Node& n) {
  unary_backward(t, n, [](float x, float) { return stable::sigmoid(x); });
}

// y = log sigmoid(x) = -softplus(-x), dy/dx = sigmoid(-x)
Var log_sigmoid(Var x) {
  return unary_forward("log_sigmoid", x, log_sigmoid_backward,
                       [](float v) { return -stable::softplus(-v); });
}
static void log_sigmoid_backward(Tape& t, const Node& n) {
  unary_backward(t, n, [](float x, float) { return stable::sigmoid(-x); });
}

// ---- activations with a setting (stored as the op's attribute) ----

namespace {
struct SlopeAttrs {
  float slope;  // leaky_relu's negative slope, elu's alpha
};
}  // namespace

// y = x for x > 0, slope x otherwise;  dy/dx = 1 or slope
Var leaky_relu(Var x, float negative_slope) {
  Var y = unary_forward("leaky_relu", x, leaky_relu_backward,
                        [negative_slope](float v) { return v > 0.0F ? v : negative_slope * v; });
  y.tape().node(y).set_attrs(SlopeAttrs{negative_slope});
  return y;
}
static void leaky_relu_backward(Tape& t, const Node& n) {
  const float slope = n.attrs<SlopeAttrs>().slope;
  unary_backward(t, n, [slope](float x, float) { return x > 0.0F ? 1.0F : slope; });
}

// y = x for x > 0, alpha (e^x - 1) otherwise;  dy/dx = 1 or alpha e^x
Var elu(Var x, float alpha) {
  Var y = unary_forward("elu", x, elu_backward,
                        [alpha](float v) { return v > 0.0F ? v : alpha * std::expm1(v); });
  y.tape().node(y).set_attrs(SlopeAttrs{alpha});
  return y;
}
static void elu_backward(Tape& t, const Node& n) {
  const float alpha = n.attrs<SlopeAttrs>().slope;
  // (x <= 0, not !(x > 0): a NaN input passes the gradient on, as PyTorch's elu_backward)
  // alpha e^x, as PyTorch's, rather than y + alpha: that is 0 once e^x - 1 rounds to -1 (x
  // below -17), which made an infinite g NaN where PyTorch's is infinite.
  unary_backward(t, n, [alpha](float x, float) { return x <= 0.0F ? alpha * std::exp(x) : 1.0F; });
}

// y = x Phi(x) with Phi the standard normal CDF (PyTorch's exact gelu);
// dy/dx = Phi(x) + x phi(x)
static float normal_cdf(float x) { return 0.5F * std::erfc(-x * std::numbers::sqrt2_v<float> / 2.0F); }
Var gelu(Var x) {
  return unary_forward("gelu", x, gelu_backward, [](float v) { return v * normal_cdf(v); });
}
static void gelu_backward(Tape& t, const Node& n) {
  unary_backward(t, n, [](float x, float) {
    const float pdf = std::exp(-0.5F * x * x) * std::numbers::inv_sqrtpi_v<float> / std::numbers::sqrt2_v<float>;
    return normal_cdf(x) + x * pdf;
  });
}

// y = x sigmoid(x);  dy/dx = s (1 + x (1 - s))
Var silu(Var x) {
  return unary_forward("silu", x, silu_backward, [](float v) { return v * stable::sigmoid(v); });
}
static void silu_backward(Tape& t, const Node& n) {
  unary_backward(t, n, [](float x, float) {
    const float s = stable::sigmoid(x);
    return s * (1.0F + x * (1.0F - s));
  });
}

}  // namespace ag
