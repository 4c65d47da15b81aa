// Scalar functions in the forms that stay finite for every finite input. Ops and fused
// kernels share these so that the numerics are decided in one place.
#pragma once

#include <algorithm>
#include <cmath>

namespace ag::stable {

/// 1 / (1 + e^-x), evaluated through e^-|x| so the exponential never overflows.
inline float sigmoid(float x) {
  const float e = std::exp(-std::abs(x));
  return x >= 0.0F ? 1.0F / (1.0F + e) : e / (1.0F + e);
}

/// log(1 + e^x) = max(x, 0) + log1p(e^-|x|).
inline float softplus(float x) { return std::max(x, 0.0F) + std::log1p(std::exp(-std::abs(x))); }

}  // namespace ag::stable
