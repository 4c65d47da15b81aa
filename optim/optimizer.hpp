// Optimizer: the base of every update rule, as torch.optim.Optimizer.
//
// It holds the parameters to update (owned elsewhere, usually by a module), the learning
// rate, the number of steps taken, and per-parameter buffers (momentum, moment estimates).
// A subclass states its rule for one parameter in update(); step() runs it over all of them.
//
//   optim::Adam opt(model.parameters(), {.lr = 1e-3});
//   for (...) {
//     opt.zero_grad();              // (or defer_zero_grad(): the same, cheaper)
//     tape.backward(loss);
//     opt.step();
//   }
//
// state() / load_state() export and import everything that evolves during training, so a
// run resumed from a checkpoint continues exactly as the uninterrupted one would.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "autograd/array.hpp"
#include "autograd/parameter.hpp"

namespace optim {

/// An optimizer's resumable state. Scalars: "step" (steps taken) and "lr". Arrays: one per
/// parameter and buffer, named "<parameter index>.<buffer>", e.g. "0.exp_avg", "3.momentum_buffer".
struct OptimizerState {
  std::map<std::string, double> scalars;
  std::map<std::string, ag::Array> arrays;
};

/// Thrown by load_state when the state does not fit this optimizer (another optimizer type,
/// other parameters); the message names the entry and the optimizer is left unchanged.
class StateError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A parameter group, as in PyTorch: parameters with their own learning rate and weight decay
/// (e.g. no decay on biases and norms). Unset settings are the optimizer's.
///
///   optim::AdamW opt({{.params = weights}, {.params = biases_and_norms, .weight_decay = 0.0}},
///                    {.lr = 1e-3, .weight_decay = 0.05});
struct ParamGroup {
  std::vector<ag::Parameter*> params{};
  std::optional<double> lr{};            // when set, schedules scale it as they scale the optimizer's
  std::optional<double> weight_decay{};
};

class Optimizer {
 public:
  /// `params` must be distinct and non-null; each needs a gradient of its value's shape
  /// by the time step() runs (a tape gives it one).
  Optimizer(std::vector<ag::Parameter*> params, double lr);
  /// Parameter groups; parameters are numbered group after group.
  Optimizer(std::vector<ParamGroup> groups, double lr);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;
  Optimizer(Optimizer&&) = default;
  Optimizer& operator=(Optimizer&&) = default;

  /// Applies one update to every parameter from its current gradient.
  void step();
  /// Sets every parameter's gradient to zero.
  void zero_grad();
  /// The same without a pass over the gradients (ag::Parameter::defer_zero_grad, as
  /// PyTorch's zero_grad(set_to_none=True)): the next backward writes each gradient instead of
  /// adding to it, and step() and clip_grad_norm see zeros wherever none flowed. For training
  /// loops; code that writes gradients by hand calls zero_grad().
  void defer_zero_grad();

  /// The optimizer's learning rate (what schedules set); lr(index) is a parameter's own.
  double lr() const { return lr_; }
  void set_lr(double lr);
  /// Parameter `index`'s learning rate: its group's, scaled as the optimizer's has been
  /// since construction (so a schedule moves every group alike), or the optimizer's.
  double lr(std::size_t index) const;
  /// Parameter `index`'s weight decay: its group's, or `fallback`.
  double weight_decay(std::size_t index, double fallback) const;
  /// Steps taken so far (0 before the first).
  std::size_t step_count() const { return steps_; }
  const std::vector<ag::Parameter*>& parameters() const { return params_; }

  OptimizerState state() const;
  /// Restores a state from state(). Every entry this optimizer needs must be present with
  /// its shape, and nothing else; otherwise throws StateError before changing anything.
  void load_state(const OptimizerState& state);

 protected:
  /// Declares a per-parameter buffer named `name`, zeros shaped like each parameter;
  /// returns the handle to pass to buffer(). Call from the subclass's constructor.
  std::size_t add_buffer(std::string name);
  ag::Array& buffer(std::size_t handle, std::size_t param) {
    return buffers_[handle].arrays[param];
  }
  /// The update of parameter `index`. step_count() already includes this step (1 on the first).
  virtual void update(std::size_t index, ag::Parameter& p) = 0;

 private:
  struct Buffer {
    std::string name;
    std::vector<ag::Array> arrays;  // one per parameter
  };
  void check_shapes() const;

  struct GroupSettings {
    std::optional<double> lr, weight_decay;
  };
  std::vector<ag::Parameter*> params_;
  std::vector<std::size_t> group_of_;  // per parameter
  std::vector<GroupSettings> groups_;
  double lr_, initial_lr_;
  std::size_t steps_ = 0;
  std::vector<Buffer> buffers_;
};

}  // namespace optim
