// Gradient clipping by global norm, as torch.nn.utils.clip_grad_norm_.
//
//   tape.backward(loss);
//   double norm = optim::clip_grad_norm(model.parameters(), 5.0);   // before opt.step()
#pragma once

#include <vector>

#include "autograd/parameter.hpp"

namespace optim {

/// The L2 norm of all gradients taken together: sqrt(sum over every element of g^2),
/// accumulated in double.
double grad_norm(const std::vector<ag::Parameter*>& params);

/// Computes total = grad_norm(params); when max_norm / (total + 1e-6) < 1 it multiplies
/// every gradient by that factor (PyTorch's rule: the 1e-6 keeps it finite at zero), so
/// that the clipped norm is just under max_norm. Returns `total`, measured before clipping.
/// A non-finite total (an inf or nan gradient) is returned with the gradients left as they
/// are, so the caller can see it and skip the step; PyTorch would scale them to nan.
double clip_grad_norm(const std::vector<ag::Parameter*>& params, double max_norm);

}  // namespace optim
