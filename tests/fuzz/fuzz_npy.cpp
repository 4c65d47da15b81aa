// libFuzzer target: the .npy reader (examples, and labels) on any bytes. Bad input must end
// in datasets::DataError; anything else, or a dataset that disagrees with itself, is a finding.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "datasets/error.hpp"
#include "datasets/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    const datasets::Dataset d = datasets::parse_npy_dataset(bytes, "fuzz.npy");
    std::size_t shape_count = 1;
    for (std::size_t n : d.example_shape()) shape_count *= n;
    if (shape_count != d.features()) __builtin_trap();
  } catch (const datasets::DataError&) {
  }
  try {
    (void)datasets::parse_npy_labels(bytes, "fuzz-labels.npy");
  } catch (const datasets::DataError&) {
  }
  return 0;
}
