#include "nn/normalization.hpp"

#include <fmt/format.h>
#include <xtensor/xbuilder.hpp>

#include "autograd/ops.hpp"

namespace nn {

static ag::Array filled(std::size_t n, float value) {
  ag::Array a({n});
  a.fill(value);
  return a;
}

LayerNorm::LayerNorm(std::size_t normalized_shape, float eps, bool elementwise_affine)
    : weight(elementwise_affine ? &register_parameter("weight", filled(normalized_shape, 1.0F)) : nullptr),
      bias(elementwise_affine ? &register_parameter("bias", filled(normalized_shape, 0.0F)) : nullptr),
      size_(normalized_shape),
      eps_(eps) {}

ag::Var LayerNorm::forward(ag::Var x) {
  if (x.dim() == 0 || x.cols() != size_)
    throw ag::ShapeError(fmt::format("{}: input {} must end in {}", describe(), ag::to_string(x.shape()), size_));
  ag::Tape& tape = x.tape();
  // Weight before bias on every compiler: the order of a call's arguments is unspecified.
  const ag::Var w = weight ? tape.parameter(*weight) : ag::Var();
  const ag::Var b = bias ? tape.parameter(*bias) : ag::Var();
  return ag::layer_norm(x, w, b, eps_);
}

std::string LayerNorm::describe() const {
  return fmt::format("LayerNorm(({},), eps={}, elementwise_affine={})", size_, eps_, weight != nullptr);
}

BatchNorm1d::BatchNorm1d(std::size_t num_features, float eps, float momentum)
    : weight(register_parameter("weight", filled(num_features, 1.0F))),
      bias(register_parameter("bias", filled(num_features, 0.0F))),
      running_mean(register_buffer("running_mean", filled(num_features, 0.0F))),
      running_var(register_buffer("running_var", filled(num_features, 1.0F))),
      num_batches_tracked(register_buffer("num_batches_tracked", ag::Array(ag::Shape{}))),
      eps_(eps),
      momentum_(momentum) {}

ag::Var BatchNorm1d::forward(ag::Var x) {
  ag::Tape& tape = x.tape();
  const ag::Var w = tape.parameter(weight);  // before the bias on every compiler
  const ag::Var b = tape.parameter(bias);
  ag::Var y = ag::batch_norm(x, running_mean, running_var, w, b, is_training(), momentum_, eps_);
  if (is_training()) num_batches_tracked.data()[0] += 1.0F;
  return y;
}

std::string BatchNorm1d::describe() const {
  return fmt::format("BatchNorm1d({}, eps={}, momentum={})", running_mean.size(), eps_, momentum_);
}

}  // namespace nn
