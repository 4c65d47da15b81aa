// A gray value p becomes the float p / 255.0f (the same floats torchvision's ToTensor makes).
//
// A true division, not p * (1 / 255.0f), which rounds 126 of the 256 values differently.
// Written as a plain loop (no lookup table) so it vectorizes: eight bytes widened, converted
// and divided per instruction, where a table is read one byte at a time (a tenth of the data
// path of a training step).
#pragma once

#include <cstddef>
#include <cstdint>

namespace datasets {

/// out[j] = pixels[j] / 255.0f for j < n.
inline void convert_pixels(const std::uint8_t* __restrict pixels, float* __restrict out, std::size_t n) {
  for (std::size_t j = 0; j < n; ++j) out[j] = static_cast<float>(pixels[j]) / 255.0F;
}

}  // namespace datasets
