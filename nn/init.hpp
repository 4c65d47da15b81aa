// Initializers: fill a parameter's array in place, as torch.nn.init does.
//
// For a weight stored [out, in] (PyTorch's nn.Linear layout) fan_in = in (the columns) and
// fan_out = out (the rows). The scaled schemes pick the spread so that activations (or
// gradients) keep roughly unit variance from layer to layer; U(-b, b) has variance b^2 / 3.
//
//   ag::Parameter w(ag::Array({400, 784}));
//   nn::init::xavier_uniform(w.value, rng);            // U(-b, b), b = sqrt(6 / (784 + 400))
//   nn::init::kaiming_normal(w.value, rng);            // N(0, 2 / 784): for ReLU layers
#pragma once

#include <cstddef>

#include "autograd/array.hpp"
#include "autograd/random.hpp"

namespace nn::init {

/// Which fan a Kaiming initializer preserves: `in` keeps forward activations' variance,
/// `out` keeps backward gradients'.
enum class Fan { in, out };

/// fan_in = cols, fan_out = rows of an [out, in] weight.
std::size_t fan_in(const ag::Array& weight);
std::size_t fan_out(const ag::Array& weight);

/// Every element from U(lo, hi).
void uniform(ag::Array& a, ag::Rng& rng, float lo, float hi);
/// Every element from N(mean, stddev^2).
void normal(ag::Array& a, ag::Rng& rng, float mean = 0.0F, float stddev = 1.0F);
void zeros(ag::Array& a);
void constant(ag::Array& a, float value);

/// Glorot & Bengio (2010): U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)).
void xavier_uniform(ag::Array& a, ag::Rng& rng, float gain = 1.0F);
/// Glorot & Bengio (2010): N(0, s^2) with s = gain * sqrt(2 / (fan_in + fan_out)).
void xavier_normal(ag::Array& a, ag::Rng& rng, float gain = 1.0F);

/// He et al. (2015) for a layer followed by leaky ReLU of negative slope `a` (0: ReLU):
/// gain = sqrt(2 / (1 + a^2)), then U(-b, b) with b = gain * sqrt(3 / fan).
/// PyTorch's nn.Linear uses a = sqrt(5), which gives b = 1 / sqrt(fan_in).
void kaiming_uniform(ag::Array& w, ag::Rng& rng, float a = 0.0F, Fan mode = Fan::in);
/// Same gain, N(0, s^2) with s = gain / sqrt(fan).
void kaiming_normal(ag::Array& w, ag::Rng& rng, float a = 0.0F, Fan mode = Fan::in);

}  // namespace nn::init
