#include "nn/normalization.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <xtensor/xbuilder.hpp>

#include "autograd/ops.hpp"

namespace nn {

static ag::Array filled(const ag::Shape& shape, float value) {
  ag::Array a(shape);
  a.fill(value);
  return a;
}

static ag::Array filled(std::size_t n, float value) { return filled(ag::Shape{n}, value); }

LayerNorm::LayerNorm(std::size_t normalized_shape, float eps, bool elementwise_affine)
    : LayerNorm(std::vector<std::size_t>{normalized_shape}, eps, elementwise_affine) {}

LayerNorm::LayerNorm(const std::vector<std::size_t>& normalized_shape, float eps, bool elementwise_affine)
    : weight(nullptr), bias(nullptr), shape_(normalized_shape.begin(), normalized_shape.end()), eps_(eps) {
  if (shape_.empty()) throw ag::ShapeError("LayerNorm: normalized_shape must name at least one dimension");
  if (elementwise_affine) {
    weight = &register_parameter("weight", filled(shape_, 1.0F));
    bias = &register_parameter("bias", filled(shape_, 0.0F));
  }
}

ag::Var LayerNorm::forward(ag::Var x) {
  const ag::Shape& s = x.shape();
  if (s.size() < shape_.size() || !std::equal(shape_.begin(), shape_.end(), s.end() - static_cast<long>(shape_.size())))
    throw ag::ShapeError(fmt::format("{}: input {} must end in {}", describe(), ag::to_string(s), ag::to_string(shape_)));
  ag::Tape& tape = x.tape();
  // Weight before bias on every compiler: the order of a call's arguments is unspecified.
  const ag::Var w = weight ? tape.parameter(*weight) : ag::Var();
  const ag::Var b = bias ? tape.parameter(*bias) : ag::Var();
  return ag::layer_norm(x, w, b, eps_, shape_.size());
}

std::string LayerNorm::describe() const {
  // PyTorch's form: a tuple, "(5,)" for one dimension.
  return fmt::format("LayerNorm(({}{}), eps={}, elementwise_affine={})", fmt::join(shape_, ", "),
                     shape_.size() == 1 ? "," : "", eps_, weight != nullptr);
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
