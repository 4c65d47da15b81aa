// libFuzzer target: the IDX reader on any bytes (plain, or gzip when they start 1f 8b).
// Bad input must end in datasets::DataError; anything else (a crash, a sanitizer report, an
// other exception, a huge allocation) is a finding.
#include <cstddef>
#include <cstdint>

#include "datasets/error.hpp"
#include "datasets/idx.hpp"
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const datasets::IdxArray a = datasets::read_idx(fuzz::write_input("input-idx", data, size));
    // What the dataset loader does next: every element as float.
    if (a.to_floats().size() != a.count()) __builtin_trap();
  } catch (const datasets::DataError&) {
  }
  return 0;
}
