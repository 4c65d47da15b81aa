#include "autograd/random.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>
#include <sstream>
#include <stdexcept>

#include "autograd/kernels/parallel.hpp"

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

// Box-Muller gives two independent normals per pair of uniforms; use both. The uniforms are
// drawn in order, a chunk at a time; their transforms (a logarithm, a square root, a sine and a
// cosine in double: about 40 ns a pair, 50 us for a VAE step's [128, 20] draws) then run on all
// threads, each pair's alone, so the values are those of one thread.
void Rng::fill_normal(Array& a) {
  constexpr std::size_t kChunkPairs = 512;     // uniforms of a chunk wait on the stack (8 KB)
  constexpr std::size_t kMinPairsPerThread = 128;
  float* p = a.data();
  const std::size_t n = a.size(), pairs = (n + 1) / 2;
  std::array<double, 2 * kChunkPairs> u;
  for (std::size_t first = 0; first < pairs; first += kChunkPairs) {
    const std::size_t count = std::min(kChunkPairs, pairs - first);
    for (std::size_t k = 0; k < 2 * count; ++k) u[k] = unit();  // r's, then theta's, pair by pair
    parallel_for(count, kMinPairsPerThread, [&](std::size_t begin, std::size_t end) {
      for (std::size_t k = begin; k < end; ++k) {
        const double r = std::sqrt(-2.0 * std::log(1.0 - u[2 * k]));
        const double theta = 2.0 * std::numbers::pi * u[2 * k + 1];
        const std::size_t i = 2 * (first + k);
        p[i] = static_cast<float>(r * std::cos(theta));
        if (i + 1 < n) p[i + 1] = static_cast<float>(r * std::sin(theta));
      }
    });
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
