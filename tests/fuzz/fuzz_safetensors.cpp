// libFuzzer target: the safetensors reader on any bytes, then every lookup a loader makes.
// Bad input must end in nn::SafetensorsError; anything else is a finding.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "nn/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto* bytes = reinterpret_cast<const std::byte*>(data);
    const nn::SafetensorsFile file = nn::SafetensorsFile::parse({bytes, bytes + size}, "fuzz.safetensors");
    for (const auto& [key, value] : file.metadata())
      if (file.metadata_value(key) != value) __builtin_trap();
    for (const std::string& name : file.names()) {
      const nn::TensorView view = file.get(name, file.get(name).shape);
      try {
        if (view.to_floats().size() != view.count()) __builtin_trap();
        if (view.shape.size() <= 2 && view.to_array().size() != view.count()) __builtin_trap();
      } catch (const nn::SafetensorsError&) {  // F8 dtypes and rank > 2 are refused, per tensor
      }
    }
  } catch (const nn::SafetensorsError&) {
  }
  return 0;
}
