// ag::parallel_run and the thread count: every part runs exactly once, whichever thread runs
// it; nested calls fall back to running in order; the pool survives thousands of tiny jobs and
// wakes up from sleep.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "autograd/kernels/parallel.hpp"

namespace {

// Restores the default thread count when a test ends, even if it fails.
struct ThreadCount {
  explicit ThreadCount(int n) { ag::set_num_threads(n); }
  ~ThreadCount() { ag::set_num_threads(0); }
};

}  // namespace

TEST_CASE("set_num_threads and num_threads") {
  ag::set_num_threads(0);
  const int hardware = ag::num_threads();
  CHECK(hardware >= 1);
  {
    ThreadCount count(3);
    CHECK(ag::num_threads() == 3);
  }
  CHECK(ag::num_threads() == hardware);
}

TEST_CASE("parallel_run runs every part exactly once") {
  for (const int threads : {1, 2, 4})
    for (const int parts : {1, 2, 3, 7, 70}) {
      ThreadCount count(threads);
      std::vector<std::atomic<int>> runs(static_cast<std::size_t>(parts));
      ag::parallel_run(parts, [&](int part) { runs[static_cast<std::size_t>(part)]++; });
      for (const auto& r : runs) CHECK(r.load() == 1);
    }
}

TEST_CASE("parallel_run inside a task runs the inner parts in order on that thread") {
  ThreadCount count(2);
  std::atomic<int> inner_runs{0};
  ag::parallel_run(2, [&](int) {
    const auto self = std::this_thread::get_id();
    ag::parallel_run(3, [&](int) {
      CHECK(std::this_thread::get_id() == self);
      inner_runs++;
    });
  });
  CHECK(inner_runs.load() == 6);
}

TEST_CASE("the pool keeps up with many tiny jobs and wakes from sleep") {
  ThreadCount count(2);
  std::atomic<long> sum{0};
  for (int job = 0; job < 20000; ++job) ag::parallel_run(2, [&](int part) { sum += part + 1; });
  CHECK(sum.load() == 20000L * 3);
  for (int job = 0; job < 3; ++job) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // long enough for workers to sleep
    ag::parallel_run(2, [&](int part) { sum += part + 1; });
  }
  CHECK(sum.load() == 20003L * 3);
}
