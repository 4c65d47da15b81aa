#include "optim/optimizer.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <utility>

#include <xtensor/xbuilder.hpp>

#include <fmt/format.h>

#include "autograd/kernels/parallel.hpp"

namespace optim {

static void check_lr(double lr) {
  if (!(lr >= 0.0) || !std::isfinite(lr))
    throw std::invalid_argument(fmt::format("optimizer: invalid learning rate {}", lr));
}

static std::vector<ParamGroup> one_group(std::vector<ag::Parameter*> params) {
  std::vector<ParamGroup> groups(1);
  groups[0].params = std::move(params);
  return groups;
}

Optimizer::Optimizer(std::vector<ag::Parameter*> params, double lr) : Optimizer(one_group(std::move(params)), lr) {}

Optimizer::Optimizer(std::vector<ParamGroup> groups, double lr) : lr_(lr), initial_lr_(lr) {
  check_lr(lr);
  for (std::size_t g = 0; g < groups.size(); ++g) {
    if (groups[g].lr) check_lr(*groups[g].lr);
    if (groups[g].weight_decay && !(*groups[g].weight_decay >= 0.0))
      throw std::invalid_argument(fmt::format("optimizer: group {} has invalid weight_decay {}", g, *groups[g].weight_decay));
    groups_.push_back({groups[g].lr, groups[g].weight_decay});
    for (ag::Parameter* p : groups[g].params) {
      params_.push_back(p);
      group_of_.push_back(g);
    }
  }
  // A parameter listed twice would be updated twice per step.
  std::set<const ag::Parameter*> seen;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    if (params_[i] == nullptr)
      throw std::invalid_argument(fmt::format("optimizer: parameter {} is null", i));
    if (!seen.insert(params_[i]).second)
      throw std::invalid_argument(fmt::format("optimizer: parameter {} is listed twice", i));
  }
}

void Optimizer::set_lr(double lr) {
  check_lr(lr);
  lr_ = lr;
}

double Optimizer::lr(std::size_t index) const {
  const std::optional<double>& own = groups_[group_of_[index]].lr;
  if (!own) return lr_;
  return initial_lr_ == 0.0 ? *own : *own * (lr_ / initial_lr_);
}

double Optimizer::weight_decay(std::size_t index, double fallback) const {
  return groups_[group_of_[index]].weight_decay.value_or(fallback);
}

std::size_t Optimizer::add_buffer(std::string name) {
  Buffer b{std::move(name), {}};
  for (const ag::Parameter* p : params_) b.arrays.push_back(xt::zeros<float>(p->value.shape()));
  buffers_.push_back(std::move(b));
  return buffers_.size() - 1;
}

// Checked before the first write of a step, so a bad parameter cannot leave the others
// updated and the step counted.
void Optimizer::check_shapes() const {
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const ag::Shape value = ag::shape_of(params_[i]->value);
    if (ag::shape_of(params_[i]->grad) != value)
      throw std::logic_error(fmt::format(
          "optimizer: parameter {} has value {} but gradient {}; has it been through a tape?", i,
          ag::to_string(value), ag::to_string(ag::shape_of(params_[i]->grad))));
    for (const Buffer& b : buffers_)
      if (ag::shape_of(b.arrays[i]) != value)
        throw std::logic_error(
            fmt::format("optimizer: parameter {} changed shape to {} after the optimizer was built",
                        i, ag::to_string(value)));
  }
}

void Optimizer::step() {
  check_shapes();
  for (ag::Parameter* p : params_) p->settle_grad();  // zeros where defer_zero_grad left them owed
  ++steps_;
  for (std::size_t i = 0; i < params_.size(); ++i) update(i, *params_[i]);
}

void Optimizer::zero_grad() {
  // The fills of the large weights are split across threads, as the updates are.
  constexpr std::size_t kMinElementsPerThread = 65536;
  for (ag::Parameter* p : params_) {
    if (ag::shape_of(p->grad) != ag::shape_of(p->value)) p->grad.resize(p->value.shape());
    float* g = p->grad.data();
    ag::parallel_for(p->grad.size(), kMinElementsPerThread,
                     [g](std::size_t begin, std::size_t end) { std::fill(g + begin, g + end, 0.0F); });
    p->grad_zero_pending = false;
  }
}

void Optimizer::defer_zero_grad() {
  for (ag::Parameter* p : params_) p->defer_zero_grad();
}

static std::string array_name(std::size_t param, const std::string& buffer) {
  return fmt::format("{}.{}", param, buffer);
}

OptimizerState Optimizer::state() const {
  OptimizerState s;
  s.scalars["step"] = static_cast<double>(steps_);
  s.scalars["lr"] = lr_;
  for (const Buffer& b : buffers_)
    for (std::size_t i = 0; i < b.arrays.size(); ++i) s.arrays[array_name(i, b.name)] = b.arrays[i];
  return s;
}

void Optimizer::load_state(const OptimizerState& state) {
  auto scalar = [&](const char* name) {
    auto it = state.scalars.find(name);
    if (it == state.scalars.end())
      throw StateError(fmt::format("optimizer load_state: scalar '{}' is missing", name));
    return it->second;
  };
  const double step = scalar("step");
  const double lr = scalar("lr");
  if (!(step >= 0.0) || step != std::floor(step) || step > 0x1.0p53)
    throw StateError(fmt::format("optimizer load_state: 'step' = {} is not a step count", step));
  if (!(lr >= 0.0) || !std::isfinite(lr))
    throw StateError(fmt::format("optimizer load_state: 'lr' = {} is not a learning rate", lr));
  for (const auto& [name, value] : state.scalars)
    if (name != "step" && name != "lr")
      throw StateError(fmt::format("optimizer load_state: unexpected scalar '{}'", name));

  std::set<std::string> expected;
  for (const Buffer& b : buffers_)
    for (std::size_t i = 0; i < b.arrays.size(); ++i) {
      const std::string name = array_name(i, b.name);
      expected.insert(name);
      auto it = state.arrays.find(name);
      if (it == state.arrays.end())
        throw StateError(fmt::format("optimizer load_state: array '{}' is missing", name));
      if (ag::shape_of(it->second) != ag::shape_of(b.arrays[i]))
        throw StateError(fmt::format("optimizer load_state: array '{}' has shape {}, expected {}",
                                     name, ag::to_string(ag::shape_of(it->second)),
                                     ag::to_string(ag::shape_of(b.arrays[i]))));
    }
  for (const auto& [name, array] : state.arrays)
    if (!expected.contains(name))
      throw StateError(fmt::format(
          "optimizer load_state: unexpected array '{}' (state of another optimizer?)", name));

  steps_ = static_cast<std::size_t>(step);
  lr_ = lr;
  for (Buffer& b : buffers_)
    for (std::size_t i = 0; i < b.arrays.size(); ++i)
      b.arrays[i] = state.arrays.at(array_name(i, b.name));
}

}  // namespace optim
