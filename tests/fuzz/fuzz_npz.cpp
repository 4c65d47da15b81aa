// libFuzzer target: the .npz reader (a zip of .npy members) on any bytes, both splits. Bad input
// must end in datasets::DataError; anything else, or a dataset that disagrees with itself, is a
// finding.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "datasets/error.hpp"
#include "datasets/npz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  for (const char* split : {"train", "test"}) {
    try {
      const datasets::Dataset d = datasets::parse_npz_dataset(bytes, split, "fuzz.npz");
      std::size_t shape_count = 1;
      for (std::size_t n : d.example_shape()) shape_count *= n;
      if (shape_count != d.features()) __builtin_trap();
      if (d.has_labels() && d.labels().size() != d.size()) __builtin_trap();
    } catch (const datasets::DataError&) {
    }
  }
  return 0;
}
