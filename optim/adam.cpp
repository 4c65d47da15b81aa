#include "optim/adam.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

namespace optim {

static AdamOptions checked(AdamOptions o) {
  auto in_unit = [](double beta) { return beta >= 0.0 && beta < 1.0; };
  if (!in_unit(o.beta1) || !in_unit(o.beta2))
    throw std::invalid_argument(
        fmt::format("Adam: betas must lie in [0, 1), got {} and {}", o.beta1, o.beta2));
  if (!(o.eps >= 0.0)) throw std::invalid_argument(fmt::format("Adam: invalid eps {}", o.eps));
  if (!(o.weight_decay >= 0.0))
    throw std::invalid_argument(fmt::format("Adam: invalid weight_decay {}", o.weight_decay));
  return o;
}

static std::vector<ParamGroup> one_group(std::vector<ag::Parameter*> params) {
  return {ParamGroup{std::move(params), {}, {}}};
}

Adam::Adam(std::vector<ag::Parameter*> params, AdamOptions options)
    : Adam(one_group(std::move(params)), options, false) {}

Adam::Adam(std::vector<ParamGroup> groups, AdamOptions options) : Adam(std::move(groups), options, false) {}

Adam::Adam(std::vector<ParamGroup> groups, AdamOptions options, bool decoupled_weight_decay)
    : Optimizer(std::move(groups), options.lr),
      options_(checked(options)),
      decoupled_(decoupled_weight_decay),
      exp_avg_(add_buffer("exp_avg")),
      exp_avg_sq_(add_buffer("exp_avg_sq")) {
  if (options_.amsgrad) max_exp_avg_sq_ = add_buffer("max_exp_avg_sq");
}

static AdamOptions as_adam(const AdamWOptions& o) { return {o.lr, o.beta1, o.beta2, o.eps, o.weight_decay, o.amsgrad}; }

AdamW::AdamW(std::vector<ag::Parameter*> params, AdamWOptions o) : Adam(one_group(std::move(params)), as_adam(o), true) {}

AdamW::AdamW(std::vector<ParamGroup> groups, AdamWOptions o) : Adam(std::move(groups), as_adam(o), true) {}

void Adam::update(std::size_t index, ag::Parameter& p) {
  // Per-step constants in double, as PyTorch computes them in Python floats; the loop is float.
  const double t = static_cast<double>(step_count());
  const double correction1 = 1.0 - std::pow(options_.beta1, t);
  const double correction2 = 1.0 - std::pow(options_.beta2, t);
  const double lr = this->lr(index), weight_decay = this->weight_decay(index, options_.weight_decay);
  const auto step_size = static_cast<float>(lr / correction1);
  const auto sqrt_correction2 = static_cast<float>(std::sqrt(correction2));
  const auto b1 = static_cast<float>(options_.beta1);
  const auto b2 = static_cast<float>(options_.beta2);
  const auto one_minus_b1 = static_cast<float>(1.0 - options_.beta1);
  const auto one_minus_b2 = static_cast<float>(1.0 - options_.beta2);
  const auto eps = static_cast<float>(options_.eps);
  const auto l2 = decoupled_ ? 0.0F : static_cast<float>(weight_decay);
  const auto shrink = decoupled_ ? static_cast<float>(1.0 - lr * weight_decay) : 1.0F;

  float* w = p.value.data();
  const float* g = p.grad.data();
  float* m = buffer(exp_avg_, index).data();
  float* v = buffer(exp_avg_sq_, index).data();
  const std::size_t n = p.value.size();
  // One pass over the parameter. It vectorizes because the project builds with
  // -fno-math-errno (meson.build): otherwise std::sqrt must stay a call that may set errno.
  if (!options_.amsgrad) {
    for (std::size_t i = 0; i < n; ++i) {
      const float d = g[i] + l2 * w[i];
      m[i] = b1 * m[i] + one_minus_b1 * d;
      v[i] = b2 * v[i] + one_minus_b2 * d * d;
      w[i] = shrink * w[i] - step_size * m[i] / (std::sqrt(v[i]) / sqrt_correction2 + eps);
    }
    return;
  }
  float* v_max = buffer(max_exp_avg_sq_, index).data();
  for (std::size_t i = 0; i < n; ++i) {
    const float d = g[i] + l2 * w[i];
    m[i] = b1 * m[i] + one_minus_b1 * d;
    v[i] = b2 * v[i] + one_minus_b2 * d * d;
    v_max[i] = std::max(v_max[i], v[i]);
    w[i] = shrink * w[i] - step_size * m[i] / (std::sqrt(v_max[i]) / sqrt_correction2 + eps);
  }
}

}  // namespace optim
