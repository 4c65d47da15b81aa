#include "optim/sgd.hpp"

#include <stdexcept>
#include <utility>

#include <fmt/format.h>

namespace optim {

static SGDOptions checked(SGDOptions o) {
  if (!(o.momentum >= 0.0))
    throw std::invalid_argument(fmt::format("SGD: invalid momentum {}", o.momentum));
  if (!(o.weight_decay >= 0.0))
    throw std::invalid_argument(fmt::format("SGD: invalid weight_decay {}", o.weight_decay));
  if (o.nesterov && (o.momentum <= 0.0 || o.dampening != 0.0))
    throw std::invalid_argument("SGD: Nesterov momentum needs momentum > 0 and zero dampening");
  return o;
}

SGD::SGD(std::vector<ag::Parameter*> params, SGDOptions options)
    : SGD(std::vector<ParamGroup>{ParamGroup{std::move(params), {}, {}}}, options) {}

SGD::SGD(std::vector<ParamGroup> groups, SGDOptions options)
    : Optimizer(std::move(groups), options.lr), options_(checked(options)) {
  if (options_.momentum != 0.0) momentum_buffer_ = add_buffer("momentum_buffer");
}

void SGD::update(std::size_t index, ag::Parameter& p) {
  const auto lr = static_cast<float>(this->lr(index));
  const auto decay = static_cast<float>(weight_decay(index, options_.weight_decay));
  float* w = p.value.data();
  const float* g = p.grad.data();
  const std::size_t n = p.value.size();

  if (options_.momentum == 0.0) {
    for (std::size_t i = 0; i < n; ++i) w[i] -= lr * (g[i] + decay * w[i]);
    return;
  }
  const auto mu = static_cast<float>(options_.momentum);
  // The first step starts the buffer at d itself: b = 0 * b + 1 * d.
  const bool first = step_count() == 1;
  const float keep = first ? 0.0F : mu;
  const float take = first ? 1.0F : static_cast<float>(1.0 - options_.dampening);
  float* b = buffer(momentum_buffer_, index).data();
  if (options_.nesterov) {
    for (std::size_t i = 0; i < n; ++i) {
      const float d = g[i] + decay * w[i];
      b[i] = keep * b[i] + take * d;
      w[i] -= lr * (d + mu * b[i]);
    }
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      const float d = g[i] + decay * w[i];
      b[i] = keep * b[i] + take * d;
      w[i] -= lr * b[i];
    }
  }
}

}  // namespace optim
