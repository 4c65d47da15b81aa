// SGD: stochastic gradient descent with optional momentum, dampening, Nesterov momentum and
// L2 weight decay, with torch.optim.SGD's update. For gradient g of parameter w at step t:
//
//   d = g + weight_decay * w
//   b = d                                  at t = 1
//   b = momentum * b + (1 - dampening) * d at t > 1          (only when momentum != 0)
//   d = nesterov ? d + momentum * b : b                       (only when momentum != 0)
//   w = w - lr * d
//
//   optim::SGD opt(model.parameters(), {.lr = 0.1, .momentum = 0.9, .nesterov = true});
#pragma once

#include <vector>

#include "optim/optimizer.hpp"

namespace optim {

struct SGDOptions {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;  // needs momentum > 0 and dampening = 0, as in PyTorch
};

class SGD : public Optimizer {
 public:
  explicit SGD(std::vector<ag::Parameter*> params, SGDOptions options = {});
  /// (A braced list of parameters is one group, not a list of groups.)
  SGD(std::initializer_list<ag::Parameter*> params, SGDOptions options = {})
      : SGD(std::vector<ag::Parameter*>(params), options) {}
  /// Parameter groups with their own lr and weight decay.
  SGD(std::vector<ParamGroup> groups, SGDOptions options);

 protected:
  void update(std::size_t index, ag::Parameter& p) override;

 private:
  SGDOptions options_;
  std::size_t momentum_buffer_ = 0;  // handle of "momentum_buffer"; kept only with momentum
};

}  // namespace optim
