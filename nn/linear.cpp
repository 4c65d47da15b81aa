#include "nn/linear.hpp"

#include <cmath>
#include <stdexcept>
#include <typeinfo>

#include <fmt/format.h>

#include "autograd/ops.hpp"
#include "nn/activation.hpp"
#include "nn/init.hpp"

namespace nn {

// PyTorch draws the weight by kaiming_uniform with a = sqrt(5), whose bound works out to
// sqrt(2 / 6) * sqrt(3 / in) = 1 / sqrt(in), and the bias from the same interval. We state
// the bound directly.
static float default_bound(std::size_t in_features) {
  if (in_features == 0) throw std::invalid_argument("Linear: in_features must be positive");
  return static_cast<float>(1.0 / std::sqrt(static_cast<double>(in_features)));
}

static ag::Array uniform_array(ag::Shape shape, ag::Rng& rng, float bound) {
  ag::Array a(shape);
  init::uniform(a, rng, -bound, bound);
  return a;
}

static ag::Parameter* make_bias(Module& m, std::size_t in, std::size_t out, ag::Rng& rng,
                                bool with_bias) {
  if (!with_bias) return nullptr;
  return &m.register_parameter("bias", uniform_array({1, out}, rng, default_bound(in)), {out});
}

// The weight is drawn before the bias, as in PyTorch (the draws themselves differ: another
// generator).
Linear::Linear(std::size_t in_features, std::size_t out_features, ag::Rng& rng, bool with_bias)
    : weight(register_parameter(
          "weight", uniform_array({out_features, in_features}, rng, default_bound(in_features)))),
      bias(make_bias(*this, in_features, out_features, rng, with_bias)) {}

// The parameters are recorded weight first, then bias, on every compiler (the order of a call's
// arguments is unspecified).
static ag::Var apply(ag::Var x, ag::Parameter& weight, ag::Parameter* bias, const ag::LinearOptions& o) {
  ag::Tape& tape = x.tape();
  ag::Var w = tape.parameter(weight);
  if (bias) {
    ag::Var b = tape.parameter(*bias);
    return ag::linear(x, w, b, o);
  }
  return ag::linear(x, w, o);
}

ag::Var Linear::forward(ag::Var x) { return apply(x, weight, bias, {}); }

ag::Var Linear::forward_fused(ag::Var x, const Module& next) {
  if (typeid(next) != typeid(ReLU)) return {};
  return apply(x, weight, bias, {.relu = true});
}

std::string Linear::describe() const {
  return fmt::format("Linear(in_features={}, out_features={}, bias={})", in_features(),
                     out_features(), bias != nullptr);
}

}  // namespace nn
