// A tiny fork-join thread API for the hot kernels (gemm).
//
// Kernels split their work into a fixed number of parts *before* running, each part written by
// exactly one thread, so a result never depends on timing: the same inputs and thread count give
// bit-identical outputs. The threads are persistent: a kernel call lasting a fraction of a
// millisecond cannot afford to create threads, so idle workers spin briefly, then sleep.
#pragma once

#include <algorithm>
#include <cstddef>

namespace ag {

// How many threads kernels may use. n <= 0 restores the default, the hardware concurrency.
// Call it from the main thread, between kernel calls (it resizes the worker pool).
void set_num_threads(int n);
int num_threads();

namespace detail {
void parallel_run(int parts, void (*call)(const void* task, int part), const void* task);

// Registers `prepare` to run on every pool thread as it starts, before the pool is handed its
// first job. A kernel that keeps per-thread buffers sizes them here: which thread runs which
// part varies, so a thread might otherwise meet its first part (and allocate) in any later
// call, long after a training loop has stopped allocating. Call it during static initialization.
void on_pool_thread_start(void (*prepare)());
}

// Runs task(part) for every part in [0, parts) and returns when all have finished. The calling
// thread and the num_threads() - 1 pool threads share the parts out; which thread runs which
// part varies, so a part must write only its own outputs and must not throw. If the pool is
// already busy (a call from inside a task, or from a second user thread), the parts run one
// after another on the calling thread instead: slower, but the same result.
template <class Task>
void parallel_run(int parts, const Task& task) {
  detail::parallel_run(
      parts, [](const void* t, int part) { (*static_cast<const Task*>(t))(part); }, &task);
}

/// Runs range(begin, end) over [0, n) cut into one slice per thread, each at least
/// `min_per_part` long (fewer slices when n is smaller; one slice runs on the caller alone).
/// Slices start at multiples of 16 elements (64 bytes), so no two threads write one cache line
/// of a float array. For elementwise loops, whose result cannot depend on the cut.
template <class Range>
void parallel_for(std::size_t n, std::size_t min_per_part, const Range& range) {
  // Small ranges (a 1-element op) go straight to the caller: no division, no thread count.
  if (n < 2 * min_per_part) {
    range(std::size_t{0}, n);
    return;
  }
  const std::size_t by_size = n / std::max<std::size_t>(min_per_part, 1);
  const int parts = static_cast<int>(std::min<std::size_t>(by_size, static_cast<std::size_t>(num_threads())));
  if (parts <= 1) {
    range(std::size_t{0}, n);
    return;
  }
  const std::size_t lines = (n + 15) / 16;
  parallel_run(parts, [&](int part) {
    const std::size_t begin = std::min(n, lines * static_cast<std::size_t>(part) / static_cast<std::size_t>(parts) * 16);
    const std::size_t end = std::min(n, lines * static_cast<std::size_t>(part + 1) / static_cast<std::size_t>(parts) * 16);
    range(begin, end);
  });
}

}  // namespace ag
