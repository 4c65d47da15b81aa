// The persistent worker pool behind ag::parallel_run.
//
// One job at a time. The caller publishes a job (its parts are claimed through one atomic
// counter), wakes the workers by bumping `generation_`, and then claims parts itself like any
// worker; when no part is left to claim it waits until all are done. Claiming, rather than
// handing part t to thread t, matters on a busy machine: if a worker is not running (the OS gave
// its core to another process), the caller runs that worker's part instead of waiting a whole
// scheduler time slice for it. The result is the same either way, since the parts themselves
// are fixed by the task, not by who runs them.
//
// Idle threads poll for a while before sleeping, because waking a sleeping thread (a futex
// call plus a trip through the scheduler) costs tens of microseconds, as much as a whole small
// gemm.
#include "autograd/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

namespace ag {
namespace {

using Clock = std::chrono::steady_clock;

// How long an idle thread keeps polling before it sleeps. Training calls gemm every few hundred
// microseconds, so a worker stays awake through a training step; a program that stops calling
// kernels has its workers asleep within a millisecond.
constexpr auto kSpinTime = std::chrono::microseconds(500);

// Tells the core we are in a polling loop (saves power, frees a hyperthread sibling).
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Waits until done(word) holds and returns the value that satisfied it: polls for kSpinTime,
// giving the core away now and then (std::this_thread::yield) in case a thread we wait for is
// queued behind us, then sleeps in std::atomic::wait until a writer notifies.
template <class T, class Done>
T wait_until(const std::atomic<T>& word, Done done) {
  const auto start = Clock::now();
  bool sleep = false;
  for (unsigned polls = 1;; ++polls) {
    const T value = word.load(std::memory_order_acquire);
    if (done(value)) return value;
    if (sleep) {
      word.wait(value, std::memory_order_acquire);  // returns once the value has changed
    } else if (polls % 128 == 0) {                  // every few microseconds
      std::this_thread::yield();
      sleep = Clock::now() - start > kSpinTime;
    } else {
      cpu_relax();
    }
  }
}

class Pool {
 public:
  explicit Pool(int threads) {
    for (int t = 1; t < threads; ++t) workers_.emplace_back([this] { work(); });
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
    done_.store(0, std::memory_order_relaxed);
    // Publishes the job fields above to whoever claims a part (release / acquire on claims_).
    claims_.store(static_cast<std::uint64_t>(parts) << 32, std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    run_parts();
    wait_until(done_, [parts](int done) { return done == parts; });
  }

 private:
  // Claims and runs parts of the current job until none is left.
  void run_parts() {
    for (;;) {
      // claims_ holds (number of parts << 32) + next part to hand out. Reading both in one
      // atomic step means a late thread, still looking at a finished job, claims nothing and
      // never touches the job fields the caller may be rewriting.
      const std::uint64_t claim = claims_.fetch_add(1, std::memory_order_acq_rel);
      const auto part = static_cast<std::uint32_t>(claim),
                 parts = static_cast<std::uint32_t>(claim >> 32);
      if (part >= parts) return;
      call_(task_, static_cast<int>(part));
      if (done_.fetch_add(1, std::memory_order_release) + 1 == static_cast<int>(parts))
        done_.notify_one();  // the caller may be asleep waiting for the last part
    }
  }

  void work() {
    std::uint64_t seen = 0;
    for (;;) {
      seen = wait_until(generation_, [seen](std::uint64_t g) { return g != seen; });
      if (stop_.load(std::memory_order_relaxed)) return;
      run_parts();
    }
  }

  std::vector<std::thread> workers_;
  std::atomic<std::uint64_t> generation_{0};  // bumped once per job: wakes the workers
  std::atomic<std::uint64_t> claims_{0};
  std::atomic<int> done_{0};  // parts finished
  std::atomic<bool> stop_{false};
  // The current job: written by the caller before it publishes claims_, read by claimers.
  void (*call_)(const void*, int) = nullptr;
  const void* task_ = nullptr;
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
