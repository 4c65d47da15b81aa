// The persistent worker pool behind ag::parallel_run.
//
// One job at a time. The caller publishes a job (its parts are claimed through one atomic
// word), wakes the workers by bumping `generation_`, and then claims parts itself like any
// worker; when no part is left to claim it waits until all are done.
//
// Who runs which part: thread t first claims part t, then any part still unclaimed. Keeping
// part t on thread t keeps each thread on the same slice of memory from one call to the next
// (a slice of C still in its own core's cache; moving it to the other core every call made a
// small gemm twice as slow). Taking unclaimed parts matters on a busy machine: if a worker is not
// running (the OS gave its core to another process), the caller runs that worker's part instead
// of waiting a whole scheduler time slice for it. The result is the same either way, since the
// parts themselves are fixed by the task, not by who runs them.
//
// Idle threads poll for a while before sleeping, because waking a sleeping thread (a futex
// call plus a trip through the scheduler) costs tens of microseconds, as much as a whole small
// gemm.
#include "autograd/kernels/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <latch>
#include <memory>
#include <thread>
#include <vector>

namespace ag {
namespace {

using Clock = std::chrono::steady_clock;

// How an idle thread waits. For the first kHotTime it only polls, so it sees a new job as soon as
// the cache line announcing it reaches its core. Until kSpinTime it polls and now and then
// gives its core away (std::this_thread::yield, a system call of about a microsecond), in case
// a thread it waits for is queued behind it on a busy machine. After that it sleeps until
// notified. Training calls gemm every few tens of microseconds, so a worker stays hot through a
// training step; a program that stops calling kernels has its workers asleep within a
// millisecond.
constexpr auto kHotTime = std::chrono::microseconds(50);
constexpr auto kSpinTime = std::chrono::microseconds(500);

// Tells the core we are in a polling loop (saves power, frees a hyperthread sibling).
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Waits until done(word) holds and returns the value that satisfied it.
template <class T, class Done>
T wait_until(const std::atomic<T>& word, Done done) {
  const auto start = Clock::now();
  auto waited = Clock::duration::zero();
  for (unsigned polls = 1;; ++polls) {
    const T value = word.load(std::memory_order_acquire);
    if (done(value)) return value;
    if (waited > kSpinTime) {
      word.wait(value, std::memory_order_acquire);  // returns once the value has changed
    } else if (polls % 128 == 0) {  // every few microseconds: the clock is not free either
      waited = Clock::now() - start;
      if (waited > kHotTime) std::this_thread::yield();
    } else {
      cpu_relax();
    }
  }
}

std::vector<void (*)()>& thread_start_hooks() {
  static std::vector<void (*)()> hooks;
  return hooks;
}

class Pool {
 public:
  // Returns once every worker has run the thread-start hooks, so whatever they allocate is
  // allocated before the first job.
  explicit Pool(int threads) {
    std::latch prepared(threads - 1);
    for (int t = 1; t < threads; ++t)
      workers_.emplace_back([this, t, &prepared] {
        for (void (*prepare)() : thread_start_hooks()) prepare();
        prepared.count_down();  // the last use of `prepared`, which lives until all have counted
        work(t);
      });
    prepared.wait();
  }

  ~Pool() {
    stop_.store(true, std::memory_order_relaxed);  // published by the release increment below
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    for (std::thread& w : workers_) w.join();
  }

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  void run(int parts, void (*call)(const void*, int), const void* task) {
    call_ = call;
    task_ = task;
    for (first_ = 0; first_ < parts; first_ += kMaxParts) {  // at most 32 parts per job
      const int count = std::min(parts - first_, kMaxParts);
      done_.store(0, std::memory_order_relaxed);
      // Publishes the job fields above to whoever claims a part (release / acquire on claims_).
      claims_.store(static_cast<std::uint64_t>(count) << 32, std::memory_order_release);
      generation_.fetch_add(1, std::memory_order_release);
      generation_.notify_all();
      run_parts(0);
      wait_until(done_, [count](int done) { return done == count; });
    }
  }

 private:
  static constexpr int kMaxParts = 32;  // one bit per part in claims_

  // Claims and runs part `self` if nobody has yet, then every other part still unclaimed.
  void run_parts(int self) {
    // claims_ holds (number of parts << 32) | (one bit per claimed part). Reading both in one
    // atomic step means a late thread, still looking at a finished job, claims nothing it
    // should not and never runs a part that does not exist.
    std::uint64_t word = claims_.load(std::memory_order_acquire);
    for (int k = 0;; ++k) {
      const auto parts = static_cast<int>(word >> 32);
      if (k >= parts) return;
      const int part = (self + k) % parts;
      const std::uint64_t bit = std::uint64_t{1} << part;
      if (word & bit) continue;  // already taken
      word = claims_.fetch_or(bit, std::memory_order_acq_rel);
      if (part >= static_cast<int>(word >> 32) || (word & bit)) continue;  // not ours after all
      word |= bit;
      call_(task_, first_ + part);
      if (done_.fetch_add(1, std::memory_order_release) + 1 == static_cast<int>(word >> 32))
        done_.notify_one();  // the caller may be asleep waiting for the last part
    }
  }

  void work(int self) {
    std::uint32_t seen = 0;
    for (;;) {
      seen = wait_until(generation_, [seen](std::uint32_t g) { return g != seen; });
      if (stop_.load(std::memory_order_relaxed)) return;
      run_parts(self);
    }
  }

  std::vector<std::thread> workers_;
  std::atomic<std::uint32_t> generation_{0};  // bumped once per job: wakes the workers
  std::atomic<std::uint64_t> claims_{0};
  std::atomic<int> done_{0};  // parts finished
  std::atomic<bool> stop_{false};
  // The current job: written by the caller before it publishes claims_, read by claimers.
  void (*call_)(const void*, int) = nullptr;
  const void* task_ = nullptr;
  int first_ = 0;  // index of the job's part 0 among the caller's parts
};

int default_threads() { return std::max(1, static_cast<int>(std::thread::hardware_concurrency())); }

std::atomic<int> g_threads{default_threads()};
std::unique_ptr<Pool> g_pool;     // created on first use, rebuilt when the thread count changes
std::atomic<bool> g_busy{false};  // a job is running

void run_serially(int parts, void (*call)(const void*, int), const void* task) {
  for (int part = 0; part < parts; ++part) call(task, part);
}

}  // namespace

void set_num_threads(int n) { g_threads = n > 0 ? n : default_threads(); }

int num_threads() { return g_threads; }

namespace detail {

void on_pool_thread_start(void (*prepare)()) { thread_start_hooks().push_back(prepare); }

void parallel_run(int parts, void (*call)(const void*, int), const void* task) {
  if (parts <= 1 || g_busy.exchange(true, std::memory_order_acquire)) {
    run_serially(parts, call, task);
    return;
  }
  const int threads = num_threads();
  if (!g_pool || g_pool->size() != threads) {
    g_pool.reset();  // joins the old workers before starting new ones
    if (threads > 1) g_pool = std::make_unique<Pool>(threads);
  }
  if (g_pool)
    g_pool->run(parts, call, task);
  else
    run_serially(parts, call, task);
  g_busy.store(false, std::memory_order_release);
}

}  // namespace detail
}  // namespace ag
