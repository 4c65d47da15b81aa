#include "optim/clip.hpp"

#include <cmath>
#include <cstddef>

namespace optim {

// Eight running sums rather than one: the additions then do not wait on each other, which
// measured about 3x faster than a single running sum on the VAE's 650k gradients.
// They are double, so the rounding of the total is far below float precision; the order
// is fixed, so the result is deterministic.
static double sum_of_squares(const float* g, std::size_t n) {
  constexpr std::size_t kLanes = 8;
  double lanes[kLanes] = {};
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (std::size_t k = 0; k < kLanes; ++k) lanes[k] += static_cast<double>(g[i + k]) * g[i + k];
  for (; i < n; ++i) lanes[0] += static_cast<double>(g[i]) * g[i];
  double sum = 0.0;
  for (double lane : lanes) sum += lane;
  return sum;
}

double grad_norm(const std::vector<ag::Parameter*>& params) {
  double total = 0.0;
  for (ag::Parameter* p : params) {
    p->settle_grad();  // zeros where defer_zero_grad left them owed
    total += sum_of_squares(p->grad.data(), p->grad.size());
  }
  return std::sqrt(total);
}

double clip_grad_norm(const std::vector<ag::Parameter*>& params, double max_norm) {
  const double total = grad_norm(params);
  if (!std::isfinite(total)) return total;
  const double factor = max_norm / (total + 1e-6);
  if (factor < 1.0) {
    const auto f = static_cast<float>(factor);
    for (ag::Parameter* p : params) {
      float* g = p->grad.data();
      const std::size_t n = p->grad.size();
      for (std::size_t i = 0; i < n; ++i) g[i] *= f;
    }
  }
  return total;
}

}  // namespace optim
