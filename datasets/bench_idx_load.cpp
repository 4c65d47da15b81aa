// bench_idx_load: how long loading an IDX training set takes and how much it holds.
//
//   build/datasets/bench_idx_load [DIR]   (default /usr/share/datasets/fashion-mnist)
//
// Prints the load time of the train split, the bytes held, and the time of one epoch of
// float32 batches of 128 (plain and dynamically binarized).
#include <chrono>
#include <ctime>
#include <cstdio>
#include <exception>

#include "datasets/dataset.hpp"
#include "datasets/loader.hpp"

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

volatile float g_sink = 0;  // a use of every batch, so the copies cannot be optimized away

double epoch_seconds(const datasets::Dataset& data, bool binarize) {
  datasets::Loader loader(data, {.batch_size = 128, .binarize = binarize, .seed = 1});
  auto start = std::chrono::steady_clock::now();
  loader.start_epoch();
  while (loader.next()) g_sink = g_sink + loader.batch()(loader.batch().shape()[0] - 1, 400);
  return seconds_since(start);
}

}  // namespace

int main(int argc, char** argv) {
  const char* dir = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
  try {
    // Wall time and this process's CPU time: on a busy shared machine the two differ.
    auto start = std::chrono::steady_clock::now();
    std::clock_t cpu_start = std::clock();
    datasets::Dataset train = datasets::load_idx_dataset(dir, "train");
    double load = seconds_since(start);
    double cpu = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
    std::printf("loaded %s train: %zu examples x %zu features, labels: %s\n", dir, train.size(),
                train.features(), train.has_labels() ? "yes" : "no");
    std::printf("load time: %.3f s wall, %.3f s CPU\n", load, cpu);
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
