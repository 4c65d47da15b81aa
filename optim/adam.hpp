// Adam and AdamW, with torch.optim.Adam's and torch.optim.AdamW's updates. For gradient g of
// parameter w at step t (m and v start at zero):
//
//   Adam:  d = g + weight_decay * w            (L2 penalty folded into the gradient)
//   AdamW: d = g;  w = w * (1 - lr * weight_decay)   (decoupled decay, Loshchilov & Hutter)
//   m = beta1 * m + (1 - beta1) * d
//   v = beta2 * v + (1 - beta2) * d^2
//   m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t)      (bias corrections)
//   AMSGrad: v_hat uses the largest v so far (buffer "max_exp_avg_sq"), so steps never grow
//   back when the gradient's variance falls (Reddi et al.)
//   w = w - lr * m_hat / (sqrt(v_hat) + eps)
//
// The last line is computed as PyTorch does it:
//   w = w - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps).
//
//   optim::Adam adam(model.parameters(), {.lr = 1e-3});
//   optim::AdamW adamw(model.parameters(), {.lr = 1e-3, .weight_decay = 0.05});
#pragma once

#include <vector>

#include "optim/optimizer.hpp"

namespace optim {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  // L2: added to the gradient, so it passes through m and v
  bool amsgrad = false;
};

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;  // decoupled: shrinks w directly, PyTorch's default
  bool amsgrad = false;
};

class Adam : public Optimizer {
 public:
  explicit Adam(std::vector<ag::Parameter*> params, AdamOptions options = {});
  /// (A braced list of parameters is one group, not a list of groups.)
  Adam(std::initializer_list<ag::Parameter*> params, AdamOptions options = {})
      : Adam(std::vector<ag::Parameter*>(params), options) {}
  /// Parameter groups with their own lr and weight decay.
  Adam(std::vector<ParamGroup> groups, AdamOptions options);

 protected:
  Adam(std::vector<ParamGroup> groups, AdamOptions options, bool decoupled_weight_decay);
  void update(std::size_t index, ag::Parameter& p) override;

 private:
  AdamOptions options_;
  bool decoupled_;
  std::size_t exp_avg_;     // handle of m, "exp_avg" as PyTorch names it
  std::size_t exp_avg_sq_;  // handle of v, "exp_avg_sq"
  std::size_t max_exp_avg_sq_ = 0;  // with amsgrad: the largest v so far
};

class AdamW : public Adam {
 public:
  explicit AdamW(std::vector<ag::Parameter*> params, AdamWOptions options = {});
  /// (A braced list of parameters is one group, not a list of groups.)
  AdamW(std::initializer_list<ag::Parameter*> params, AdamWOptions options = {})
      : AdamW(std::vector<ag::Parameter*>(params), options) {}
  AdamW(std::vector<ParamGroup> groups, AdamWOptions options);
};

}  // namespace optim
