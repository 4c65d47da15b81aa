// The real Fashion-MNIST files, if Debian's dataset-fashion-mnist is installed; skipped
// with a message otherwise.
#include <doctest/doctest.h>

#include <array>
#include <filesystem>

#include "datasets/dataset.hpp"
#include "datasets/loader.hpp"

namespace {
const std::filesystem::path kDir = "/usr/share/datasets/fashion-mnist";

bool available() {
  if (std::filesystem::exists(kDir / "train-images-idx3-ubyte.gz")) return true;
  MESSAGE("skipped: Fashion-MNIST not found in " << kDir.string()
                                                  << " (apt install dataset-fashion-mnist)");
  return false;
}

void check_split(const datasets::Dataset& d, std::size_t n) {
  CHECK(d.size() == n);
  CHECK(d.features() == 784);
  CHECK(d.example_shape() == std::vector<std::size_t>{28, 28});
  CHECK(d.holds_bytes());
  CHECK(d.bytes().size() == n * 784);
  REQUIRE(d.has_labels());
  std::array<std::size_t, 10> per_class{};
  bool in_range = true;
  for (std::int32_t l : d.labels()) {
    in_range = in_range && l >= 0 && l <= 9;
    if (in_range) ++per_class[static_cast<std::size_t>(l)];
  }
  CHECK(in_range);
  for (std::size_t c : per_class) CHECK(c == n / 10);  // Fashion-MNIST is balanced
}
}  // namespace

TEST_CASE("Fashion-MNIST train and test load as bytes with labels 0..9") {
  if (!available()) return;
  datasets::Dataset train = datasets::load_idx_dataset(kDir, "train");
  check_split(train, 60000);
  CHECK(train.bytes_held() == 60000 * 784 + 60000 * sizeof(std::int32_t));  // about 47 MB
  CHECK(train.label(0) == 9);  // the first training image is an ankle boot

  datasets::Loader loader(train, {.batch_size = 128, .seed = 1});
  CHECK(loader.batches_per_epoch() == 469);  // 468 x 128 + 96

  check_split(datasets::load_idx_dataset(kDir, "t10k"), 10000);
}
