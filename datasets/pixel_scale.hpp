// kPixelScale[p] = p / 255.0f for every byte p: the float a gray value becomes.
//
// A table instead of p * (1 / 255.0f): it gives the correctly rounded quotient (the same
// floats torchvision's ToTensor makes) and is as fast as the multiply.
#pragma once

#include <array>
#include <cstddef>

namespace datasets {

inline constexpr std::array<float, 256> kPixelScale = [] {
  std::array<float, 256> t{};
  for (std::size_t p = 0; p < t.size(); ++p) t[p] = static_cast<float>(p) / 255.0F;
  return t;
}();

}  // namespace datasets
