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

Var layer_norm(Var x, Var weight, Var bias, float eps, std::size_t dims) {
  if (dims == 1) return affine(normalize(x, -1, eps), weight, bias);
  if (dims == 0 || dims > x.dim())
    throw ShapeError(fmt::format("layer_norm: cannot normalise over the last {} dimensions of {}", dims,
                                 to_string(x.shape())));
  // Over the last `dims` dimensions = over the last one of x with those flattened into it.
  const Shape& shape = x.shape();
  Shape flat(shape.begin(), shape.end() - static_cast<long>(dims));
  flat.push_back(numel(shape) / std::max<std::size_t>(1, numel(flat)));
  return affine(reshape(normalize(reshape(x, flat), -1, eps), shape), weight, bias);
}

Var batch_norm(Var x, Array& running_mean, Array& running_var, Var weight, Var bias, bool training,
               float momentum, float eps) {
  const std::size_t channels = x.dim() >= 2 ? x.shape()[1] : 0;
  if ((x.dim() != 2 && x.dim() != 3) || running_mean.size() != channels || running_var.size() != channels)
    throw ShapeError(fmt::format("batch_norm: input {} must be [B, C] or [B, C, L] with running statistics of C "
                                 "elements, got {} and {}",
                                 to_string(x.shape()), to_string(running_mean.shape()), to_string(running_var.shape())));
  // [B, C, L]: statistics per channel over the batch and the length; [C] values meet x as [1, C, 1].
  const bool sequence = x.dim() == 3;
  const Shape per_channel = sequence ? Shape{1, channels, 1} : Shape{1, channels};
  if (sequence) {
    if (weight.valid()) weight = reshape(weight, per_channel);
    if (bias.valid()) bias = reshape(bias, per_channel);
  }
  if (!training) {
    Tape& tape = x.tape();
    Var m = tape.constant(running_mean), v = tape.constant(running_var);
    if (m.dim() == 1) m = reshape(m, per_channel), v = reshape(v, per_channel);
    return affine((x - m) / sqrt(v + eps), weight, bias);
  }
  const std::size_t count = numel(x.shape()) / std::max<std::size_t>(1, channels);  // values per channel
  if (count < 2)
    throw ShapeError(fmt::format("batch_norm: training needs more than one value per channel, got {}", to_string(x.shape())));
  Var batch_mean, batch_var;
  Var y = sequence ? normalize(x, {0, 2}, eps, &batch_mean, &batch_var) : normalize(x, 0, eps, &batch_mean, &batch_var);
  // running = (1 - momentum) running + momentum * batch, with the unbiased variance, as PyTorch.
  const float n = static_cast<float>(count), unbias = n / (n - 1.0F);
  for (std::size_t c = 0; c < channels; ++c) {
    running_mean.data()[c] = (1.0F - momentum) * running_mean.data()[c] + momentum * batch_mean.value().data()[c];
    running_var.data()[c] = (1.0F - momentum) * running_var.data()[c] + momentum * unbias * batch_var.value().data()[c];
  }
  return affine(y, weight, bias);
}

}  // namespace ag
