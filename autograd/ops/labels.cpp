// one_hot and argmax: between class indices and tensors. Neither has a gradient (indices
// are not differentiable), so their nodes never require one.
#include <cmath>

#include <fmt/format.h>

#include "autograd/ops.hpp"
#include "autograd/ops/axes.hpp"
#include "autograd/ops/common.hpp"

namespace ag {

/// Records a node that no gradient flows through.
static Node& record_constant(const char* name, Var input, const Shape& shape) {
  Node& out = input.tape().record(name, {input}, shape, nullptr);
  out.requires_grad = false;
  return out;
}

Var one_hot(Var indices, std::size_t num_classes) {
  if (indices.dim() != 1)
    throw ShapeError(fmt::format("one_hot: indices {} must be one-dimensional", to_string(indices.shape())));
  Node& out = record_constant("one_hot", indices, {indices.numel(), num_classes});
  out.own_value.fill(0.0F);
  const float* idx = indices.value().data();
  for (std::size_t i = 0; i < indices.numel(); ++i) {
    if (!(idx[i] >= 0.0F) || idx[i] != std::floor(idx[i]) || idx[i] >= static_cast<float>(num_classes))
      throw ShapeError(fmt::format("one_hot: index {} is not a whole number in [0, {})", idx[i], num_classes));
    out.own_value.data()[i * num_classes + static_cast<std::size_t>(idx[i])] = 1.0F;
  }
  return indices.tape().last();
}

Var argmax(Var x, int axis, bool keepdim) {
  const std::size_t a = detail::checked_axis("argmax", axis, x.dim());
  const Shape& s = x.value().shape();
  if (s[a] == 0) throw ShapeError(fmt::format("argmax: axis {} of {} is empty", axis, to_string(s)));
  Shape out_shape;
  for (std::size_t d = 0; d < s.size(); ++d)
    if (d != a) out_shape.push_back(s[d]);
    else if (keepdim) out_shape.push_back(1);
  Node& out = record_constant("argmax", x, out_shape);
  const detail::ReductionPlan p = detail::plan_reduction(s, 1U << a);
  const std::size_t step = detail::strides_of(s)[a];
  const float* px = x.value().data();
  detail::for_each_output(p, [&](std::size_t o, std::size_t base) {
    std::size_t best = 0;  // the first maximum (or NaN), as PyTorch
    for (std::size_t k = 1; k < s[a]; ++k)
      if (detail::beats(px[base + k * step], px[base + best * step])) best = k;
    out.own_value.data()[o] = static_cast<float>(best);
  });
  return x.tape().last();
}

}  // namespace ag
