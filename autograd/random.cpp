#include "autograd/random.hpp"

#include <cmath>
#include <numbers>
#include <sstream>
#include <stdexcept>

namespace ag {

double Rng::unit() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }

float Rng::uniform(float lo, float hi) {
  return static_cast<float>(lo + (static_cast<double>(hi) - lo) * unit());
}

float Rng::normal() {
  double u1 = 1.0 - unit();  // (0, 1]: log(u1) is finite
  double u2 = unit();
  return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2));
}

void Rng::fill_uniform(Array& a, float lo, float hi) {
  for (float& v : a) v = uniform(lo, hi);
}

// Box-Muller gives two independent normals per pair of uniforms; use both.
void Rng::fill_normal(Array& a) {
  float* p = a.data();
  std::size_t n = a.size();
  for (std::size_t i = 0; i < n; i += 2) {
    double r = std::sqrt(-2.0 * std::log(1.0 - unit()));
    double theta = 2.0 * std::numbers::pi * unit();
    p[i] = static_cast<float>(r * std::cos(theta));
    if (i + 1 < n) p[i + 1] = static_cast<float>(r * std::sin(theta));
  }
}

std::uint64_t Rng::below(std::uint64_t n) {
  return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(engine_);
}

std::string Rng::state() const {
  std::ostringstream out;
  out << engine_;
  return out.str();
}

void Rng::set_state(const std::string& text) {
  std::istringstream in(text);
  std::mt19937_64 restored;
  in >> restored;
  if (in.fail()) throw std::invalid_argument("Rng::set_state: not a saved generator state");
  engine_ = restored;
}

}  // namespace ag
