#include "optim/schedule.hpp"

#include <cmath>
#include <numbers>
#include <stdexcept>

namespace optim {

double Schedule::apply(Optimizer& optimizer, std::size_t t) const {
  const double value = lr(t);
  optimizer.set_lr(value);
  return value;
}

StepLR::StepLR(double base_lr, std::size_t step_size, double gamma)
    : base_lr_(base_lr), step_size_(step_size), gamma_(gamma) {
  if (step_size == 0) throw std::invalid_argument("StepLR: step_size must be positive");
}

double StepLR::lr(std::size_t t) const {
  return base_lr_ * std::pow(gamma_, static_cast<double>(t / step_size_));
}

CosineAnnealingLR::CosineAnnealingLR(double base_lr, std::size_t t_max, double eta_min)
    : base_lr_(base_lr), t_max_(t_max), eta_min_(eta_min) {
  if (t_max == 0) throw std::invalid_argument("CosineAnnealingLR: t_max must be positive");
}

double CosineAnnealingLR::lr(std::size_t t) const {
  if (t >= t_max_) return eta_min_;
  const double progress = static_cast<double>(t) / static_cast<double>(t_max_);
  return eta_min_ + (base_lr_ - eta_min_) * (1.0 + std::cos(std::numbers::pi * progress)) / 2.0;
}

LinearWarmup::LinearWarmup(std::size_t warmup_steps, double peak_lr)
    : LinearWarmup(warmup_steps, ConstantLR(peak_lr)) {}

double LinearWarmup::lr(std::size_t t) const {
  if (t >= warmup_steps_) return after_->lr(t - warmup_steps_);
  return after_->lr(0) * static_cast<double>(t + 1) / static_cast<double>(warmup_steps_);
}

}  // namespace optim
