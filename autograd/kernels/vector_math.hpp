// Hand-vectorized (xsimd) loops for the few transcendental kernels that dominate a VAE
// step, and the sigmoid that ends every reconstruction or sample. g++ does not vectorize
// std::exp / std::log1p calls, so a scalar loop over a [128, 784] batch of logits costs more
// than the matrix products around it.
#pragma once

#include <cstddef>

namespace ag::vec {

/// For logits l and targets y (n each): writes sigmoid(l) to `sigmoid`, and the binary
/// cross-entropy from logits softplus(l) - l y to `loss` unless it is nullptr; returns the
/// sum of the losses (accumulated in double across blocks).
double bce_with_logits(const float* l, const float* y, float* loss, float* sigmoid, std::size_t n);

/// y = sigmoid(x) for n values, through e^-|x| (no overflow), on all threads when n is large.
void sigmoid(const float* x, float* y, std::size_t n);

}  // namespace ag::vec
