#include "nn/init.hpp"

#include <cmath>

namespace nn::init {

std::size_t fan_in(const ag::Array& weight) { return weight.shape()[1]; }
std::size_t fan_out(const ag::Array& weight) { return weight.shape()[0]; }

void uniform(ag::Array& a, ag::Rng& rng, float lo, float hi) { rng.fill_uniform(a, lo, hi); }

void normal(ag::Array& a, ag::Rng& rng, float mean, float stddev) {
  rng.fill_normal(a);
  for (float& v : a) v = mean + stddev * v;
}

void zeros(ag::Array& a) { a.fill(0.0F); }
void constant(ag::Array& a, float value) { a.fill(value); }

static double fan_sum(const ag::Array& a) {
  return static_cast<double>(fan_in(a)) + static_cast<double>(fan_out(a));
}

void xavier_uniform(ag::Array& a, ag::Rng& rng, float gain) {
  const auto bound = static_cast<float>(gain * std::sqrt(6.0 / fan_sum(a)));
  uniform(a, rng, -bound, bound);
}

void xavier_normal(ag::Array& a, ag::Rng& rng, float gain) {
  normal(a, rng, 0.0F, static_cast<float>(gain * std::sqrt(2.0 / fan_sum(a))));
}

// The gain of leaky ReLU with negative slope a: it halves the variance of a symmetric input
// when a = 0, so sqrt(2) restores it.
static double leaky_relu_gain(float a) {
  return std::sqrt(2.0 / (1.0 + static_cast<double>(a) * a));
}

static double fan(const ag::Array& w, Fan mode) {
  return static_cast<double>(mode == Fan::in ? fan_in(w) : fan_out(w));
}

void kaiming_uniform(ag::Array& w, ag::Rng& rng, float a, Fan mode) {
  const auto bound = static_cast<float>(leaky_relu_gain(a) * std::sqrt(3.0 / fan(w, mode)));
  uniform(w, rng, -bound, bound);
}

void kaiming_normal(ag::Array& w, ag::Rng& rng, float a, Fan mode) {
  normal(w, rng, 0.0F, static_cast<float>(leaky_relu_gain(a) / std::sqrt(fan(w, mode))));
}

}  // namespace nn::init
