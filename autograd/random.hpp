// Rng: the one source of randomness (initialization, shuffling, the sampling node).
//
// A seeded std::mt19937_64; its full state can be saved and restored as text, so a
// resumed training run draws exactly the numbers the uninterrupted run would have.
#pragma once

#include <cstdint>
#include <random>
#include <string>

#include "autograd/array.hpp"

namespace ag {

/// A 64-bit mixing function (Steele et al.'s SplitMix64 finalizer): turns related seeds
/// such as (seed, stream) into unrelated ones.
constexpr std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

class Rng {
 public:
  explicit Rng(std::uint64_t seed = 0) : engine_(seed) {}

  /// Uniform in [lo, hi).
  float uniform(float lo = 0.0F, float hi = 1.0F);
  /// Standard normal, by the Box-Muller transform (one draw per call; no hidden cache,
  /// so the saved state is the whole state).
  float normal();
  void fill_uniform(Array& a, float lo, float hi);
  void fill_normal(Array& a);
  /// Uniform integer in [0, n).
  std::uint64_t below(std::uint64_t n);

  std::uint64_t next_u64() { return engine_(); }
  std::string state() const;
  /// Restores a state from state(); throws std::invalid_argument if it does not parse.
  void set_state(const std::string& text);

 private:
  double unit();  // uniform in [0, 1) with 53 random bits
  std::mt19937_64 engine_;
};

}  // namespace ag
