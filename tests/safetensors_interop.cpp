// safetensors_interop: the C++ side of tests/check_safetensors_numpy.py.
//
//   safetensors_interop write PATH   writes the sample file the script checks with numpy
//   safetensors_interop check PATH   reads the file the script wrote and checks its values
//
// Both sides compute the same values from the same formulas, so any disagreement in names,
// shapes, dtypes, byte order or offsets shows up as a failed check.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "nn/safetensors.hpp"

namespace {

int write(const char* path) {
  std::vector<float> weight(12);  // [3, 4]: i * 0.5 - 1
  for (std::size_t i = 0; i < weight.size(); ++i) weight[i] = static_cast<float>(i) * 0.5F - 1.0F;
  std::vector<float> bias{0.25F, -0.5F, 1e-3F};
  std::int64_t step = 1234567890123;
  std::vector<double> moments{1.0 / 3.0, 2.0 / 3.0, -1e300, 1e-300};
  std::vector<std::uint8_t> mask{0, 1, 2, 254, 255};
  std::vector<nn::TensorEntry> entries{{"encoder.fc1.weight", {3, 4}, weight.data(), weight.size()},
                                       {"encoder.fc1.bias", {3}, bias.data(), bias.size()},
                                       {"step", {}, &step, 1},
                                       {"moments", {2, 2}, moments.data(), moments.size()},
                                       {"mask", {5}, mask.data(), mask.size()}};
  nn::save_safetensors(path, entries, {{"format", "pt"}, {"latent", "20"}, {"config", "{\"hidden\": 400}"}});
  return 0;
}

int failures = 0;
void expect(bool ok, const std::string& what) {
  if (!ok) {
    std::fprintf(stderr, "C++ check failed: %s\n", what.c_str());
    ++failures;
  }
}

int check(const char* path) {
  nn::SafetensorsFile f = nn::SafetensorsFile::load(path);
  // "w": float32 [2, 3] = arange(6) * 1.25 - 2
  std::vector<float> w = f.get("w", {2, 3}).to_floats();
  for (std::size_t i = 0; i < w.size(); ++i) expect(w[i] == static_cast<float>(i) * 1.25F - 2.0F, "w values");
  expect(f.get("w").dtype == nn::DType::F32, "w dtype");
  // "d": float64 [3] = [0.1, -2.5, 1e10]
  expect(f.get("d", {3}).to_floats() == std::vector<float>{0.1F, -2.5F, 1e10F}, "d values");
  // "h": float16 [5] = [1, -2.5, 65504, 2^-24, 2^-14]
  expect(f.get("h", {5}).to_floats() == std::vector<float>{1.0F, -2.5F, 65504.0F, 0x1p-24F, 0x1p-14F}, "h values");
  // "n": int64 [2, 1] = [-3, 2^40]
  expect(f.get("n", {2, 1}).to_floats() == std::vector<float>{-3.0F, 0x1p40F}, "n values");
  // "s": float32 scalar [] = 7.5
  expect(f.get("s", {}).to_floats() == std::vector<float>{7.5F}, "s value");
  expect(f.metadata_value("source") == "numpy", "metadata");
  if (failures == 0) std::printf("C++ read the numpy-written file: OK\n");
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s write|check PATH\n", argv[0]);
    return 2;
  }
  try {
    if (std::strcmp(argv[1], "write") == 0) return write(argv[2]);
    if (std::strcmp(argv[1], "check") == 0) return check(argv[2]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "safetensors_interop: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "unknown command %s\n", argv[1]);
  return 2;
}
