// Learning-rate schedules: the learning rate as a pure function of the step (or epoch)
// number t, counted from 0. Being stateless, a schedule needs nothing in a checkpoint:
// a resumed run just asks for lr(t) at its current t.
//
//   optim::LinearWarmup schedule(500, optim::CosineAnnealingLR(1e-3, 9500));
//   for (std::size_t t = 0; t < 10000; ++t) {
//     schedule.apply(opt, t);   // sets opt's learning rate to schedule.lr(t)
//     ...                       // forward, backward, opt.step()
//   }
//
// The caller chooses the unit: call apply once per step or once per epoch.
#pragma once

#include <concepts>
#include <cstddef>
#include <memory>
#include <utility>

#include "optim/optimizer.hpp"

namespace optim {

class Schedule {
 public:
  virtual ~Schedule() = default;
  /// The learning rate at step t.
  virtual double lr(std::size_t t) const = 0;
  /// Sets `optimizer`'s learning rate to lr(t) and returns it.
  double apply(Optimizer& optimizer, std::size_t t) const;
};

/// lr(t) = value.
class ConstantLR : public Schedule {
 public:
  explicit ConstantLR(double value) : value_(value) {}
  double lr(std::size_t) const override { return value_; }

 private:
  double value_;
};

/// lr(t) = base_lr * gamma^floor(t / step_size), as torch.optim.lr_scheduler.StepLR:
/// with (0.1, 30, 0.1) steps 0-29 use 0.1, steps 30-59 use 0.01, ...
class StepLR : public Schedule {
 public:
  StepLR(double base_lr, std::size_t step_size, double gamma = 0.1);
  double lr(std::size_t t) const override;

 private:
  double base_lr_;
  std::size_t step_size_;
  double gamma_;
};

/// Half a cosine from base_lr at t = 0 down to eta_min at t = t_max, as
/// torch.optim.lr_scheduler.CosineAnnealingLR (SGDR without restarts):
///   lr(t) = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / t_max)) / 2.
/// After t_max it stays at eta_min (PyTorch's curve would rise again).
class CosineAnnealingLR : public Schedule {
 public:
  CosineAnnealingLR(double base_lr, std::size_t t_max, double eta_min = 0.0);
  double lr(std::size_t t) const override;

 private:
  double base_lr_;
  std::size_t t_max_;
  double eta_min_;
};

/// A linear ramp over the first `warmup_steps` steps up to where another schedule starts,
/// then that schedule, shifted to begin when the ramp ends:
///   lr(t) = after.lr(0) * (t + 1) / warmup_steps   for t < warmup_steps
///   lr(t) = after.lr(t - warmup_steps)             afterwards.
/// The first step already moves (lr > 0) and the last ramp step reaches the peak.
/// Standalone, LinearWarmup(w, peak_lr) ramps up to peak_lr and stays there.
class LinearWarmup : public Schedule {
 public:
  LinearWarmup(std::size_t warmup_steps, double peak_lr);
  template <std::derived_from<Schedule> S>
  LinearWarmup(std::size_t warmup_steps, S after)
      : warmup_steps_(warmup_steps), after_(std::make_shared<S>(std::move(after))) {}
  double lr(std::size_t t) const override;

 private:
  std::size_t warmup_steps_;
  std::shared_ptr<const Schedule> after_;  // shared, so a LinearWarmup can be copied
};

}  // namespace optim
