// bench_idx_load: how long loading an IDX training set takes and how much it holds.
//
//   build/datasets/bench_idx_load [DIR]   (default /usr/share/datasets/fashion-mnist)
//
// Prints the load time of the train split, the bytes held, and the time of one epoch of
// float32 batches of 128 (plain and dynamically binarized).
#include <chrono>
#include <cstdio>
#include <exception>

#include "datasets/dataset.hpp"
#include "datasets/loader.hpp"

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double epoch_seconds(const datasets::Dataset& data, bool binarize) {
  datasets::Loader loader(data, {.batch_size = 128, .binarize = binarize, .seed = 1});
  auto start = std::chrono::steady_clock::now();
  loader.start_epoch();
  double checksum = 0;
  while (loader.next()) checksum += loader.batch()(0, 0);  // keep the work observable
  double s = seconds_since(start);
  std::printf("  (checksum %.1f)\n", checksum);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  const char* dir = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
  try {
    auto start = std::chrono::steady_clock::now();
    datasets::Dataset train = datasets::load_idx_dataset(dir, "train");
    double load = seconds_since(start);
    std::printf("loaded %s train: %zu examples x %zu features, labels: %s\n", dir, train.size(),
                train.features(), train.has_labels() ? "yes" : "no");
    std::printf("load time: %.3f s\n", load);
    std::printf("bytes held: %zu (%.1f MB)\n", train.bytes_held(), train.bytes_held() / 1e6);
    std::printf("one epoch of batches of 128 to float32: %.3f s\n", epoch_seconds(train, false));
    if (train.holds_bytes())
      std::printf("same, dynamically binarized: %.3f s\n", epoch_seconds(train, true));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_idx_load: %s\n", e.what());
    return 1;
  }
  return 0;
}
