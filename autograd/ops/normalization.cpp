// layer_norm and batch_norm, written with the other ops: the gradient through the mean and
// the variance (the batch statistics, in batch_norm's training mode) then comes from their
// rules, and nothing new needs a backward rule of its own.
//   y = (x - mean) / sqrt(var + eps) * weight + bias,  var the biased variance (as PyTorch)
#include <fmt/format.h>

#include "autograd/ops.hpp"

namespace ag {

/// (x - mean) / sqrt(var + eps) over `axes`, with the statistics kept with size 1.
static Var normalize(Var x, Axes axes, float eps, Var* mean_out = nullptr, Var* var_out = nullptr) {
  Var mean_x = mean(x, axes, true);
  Var centered = x - mean_x;
  Var var = mean(square(centered), axes, true);
  if (mean_out) *mean_out = mean_x;
  if (var_out) *var_out = var;
  return centered / sqrt(var + eps);
}

static Var affine(Var y, Var weight, Var bias) {
  if (weight.valid()) y = y * weight;
  if (bias.valid()) y = y + bias;
  return y;
}

Var layer_norm(Var x, Var weight, Var bias, float eps) {
  return affine(normalize(x, -1, eps), weight, bias);
}

Var batch_norm(Var x, Array& running_mean, Array& running_var, Var weight, Var bias, bool training,
               float momentum, float eps) {
  if (x.dim() != 2 || running_mean.size() != x.cols() || running_var.size() != x.cols())
    throw ShapeError(fmt::format("batch_norm: input {} must be [B, C] with running statistics of C elements, got {} and {}",
                                 to_string(x.shape()), to_string(running_mean.shape()), to_string(running_var.shape())));
  if (!training) {
    Tape& tape = x.tape();
    Var m = tape.constant(running_mean), v = tape.constant(running_var);
    if (m.dim() == 1) m = reshape(m, {1, x.cols()}), v = reshape(v, {1, x.cols()});
    return affine((x - m) / sqrt(v + eps), weight, bias);
  }
  if (x.rows() < 2)
    throw ShapeError(fmt::format("batch_norm: training needs more than one example per batch, got {}", to_string(x.shape())));
  Var batch_mean, batch_var;
  Var y = normalize(x, 0, eps, &batch_mean, &batch_var);
  // running = (1 - momentum) running + momentum * batch, with the unbiased variance, as PyTorch.
  const float n = static_cast<float>(x.rows()), unbias = n / (n - 1.0F);
  for (std::size_t c = 0; c < x.cols(); ++c) {
    running_mean.data()[c] = (1.0F - momentum) * running_mean.data()[c] + momentum * batch_mean.value().data()[c];
    running_var.data()[c] = (1.0F - momentum) * running_var.data()[c] + momentum * unbias * batch_var.value().data()[c];
  }
  return affine(y, weight, bias);
}

}  // namespace ag
