// libFuzzer target: the IDX reader on gzip files. The input is the decompressed stream; the
// target compresses it, so mutations reach the IDX parsing behind gzip (a header claiming
// more than arrives, trailing bytes) instead of stopping at the gzip checksum.
#include <zlib.h>

#include <cstddef>
#include <cstdint>

#include "datasets/error.hpp"
#include "datasets/idx.hpp"
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = fuzz::work_dir() / "input-idx.gz";
  gzFile out = gzopen(path.c_str(), "wb1");
  if (out == nullptr) __builtin_trap();
  if (size > 0 && gzwrite(out, data, static_cast<unsigned>(size)) != static_cast<int>(size)) __builtin_trap();
  if (gzclose(out) != Z_OK) __builtin_trap();
  try {
    const datasets::IdxArray a = datasets::read_idx(path);
    if (a.to_floats().size() != a.count()) __builtin_trap();
  } catch (const datasets::DataError&) {
  }
  return 0;
}
