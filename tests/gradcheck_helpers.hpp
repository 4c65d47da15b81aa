// What the gradcheck tests share: inputs away from kinks, and a check that reports the worst
// element when it fails.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "autograd/autograd.hpp"

namespace testing {

using Inputs = const std::vector<ag::Var>&;

/// Values in [lo, hi) of the given shape, away from zero by at least `gap` (kinks and poles
/// live there).
inline ag::Array sample(const ag::Shape& shape, std::uint64_t seed, float lo = -2.0F, float hi = 2.0F,
                        float gap = 0.1F) {
  ag::Rng rng(seed);
  ag::Array a(shape);
  for (float& v : a) {
    do v = rng.uniform(lo, hi);
    while (std::abs(v) < gap);
  }
  return a;
}

inline ag::Array sample(std::size_t rows, std::size_t cols, std::uint64_t seed, float lo = -2.0F,
                        float hi = 2.0F, float gap = 0.1F) {
  return sample(ag::Shape{rows, cols}, seed, lo, hi, gap);
}

inline void check(const std::string& op, const ag::GradcheckFunction& f, const std::vector<ag::Array>& in) {
  ag::GradcheckResult r = ag::gradcheck(op, f, in);
  INFO(r.message());
  CHECK(r.ok);
}

}  // namespace testing
