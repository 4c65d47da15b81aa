// bench_vae: the figures of the speed issue for our side, measured in one process.
//
//   build/bench/bench_vae [--data DIR] [--epochs N] [--threads N] [--train-vae PATH] [--json]
//
// Prints seconds per training epoch of the default VAE (784-400-20, Bernoulli, Adam 1e-3,
// batch 128) on Fashion-MNIST (the best of N epochs, training steps only, as PyTorch's figure
// is taken), the per-op overhead of record + backward on 1-element arrays, heap allocations
// per training step after warm-up, and (with --train-vae) the peak RSS of a real
// `train_vae --epochs 1` run. scripts/bench.py runs this beside PyTorch and prints ratios.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "autograd/autograd.hpp"
#include "autograd/kernels/parallel.hpp"
#include "bench/alloc_counter.hpp"
#include "datasets/dataset.hpp"
#include "datasets/loader.hpp"
#include "models/vae.hpp"
#include "optim/adam.hpp"
#include "tools/vae_training.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

struct EpochFigures {
  double best_seconds = 0;
  double allocations_per_step = 0;
  double final_loss = 0;
};

EpochFigures time_epochs(const std::string& data, std::size_t epochs) {
  const datasets::Dataset train = datasets::load_idx_dataset(data, "train");
  ag::Rng rng(1);
  models::Vae vae({}, rng);
  optim::Adam adam(vae.parameters(), {.lr = 1e-3});
  datasets::Loader loader(train, {.batch_size = 128, .seed = 2});
  ag::Tape tape;
  EpochFigures f;
  f.best_seconds = 1e30;
  std::size_t steps_counted = 0, allocations = 0;
  for (std::size_t epoch = 0; epoch < epochs; ++epoch) {
    loader.start_epoch();
    const auto start = Clock::now();
    std::size_t step = 0;
    while (loader.next()) {
      // Allocations are counted over every step after the first epoch's first ten,
      // which include the last, smaller batch of each epoch.
      const std::size_t before = bench::allocation_count();
      f.final_loss = tools::train_step(tape, vae, adam, loader.batch(), rng, 1.0F);
      if (epoch > 0 || step >= 10) {
        allocations += bench::allocation_count() - before;
        ++steps_counted;
      }
      ++step;
    }
    const double s = seconds_since(start);
    f.best_seconds = std::min(f.best_seconds, s);
    fmt::print(stderr, "  epoch {}: {:.3f} s, loss {:.2f}\n", epoch + 1, s, f.final_loss);
  }
  f.allocations_per_step = steps_counted ? static_cast<double>(allocations) / static_cast<double>(steps_counted) : 0;
  return f;
}

// record + backward of a 1-element op, averaged over a chain of 1000 adds.
double per_op_overhead_ns() {
  ag::Tape tape;
  const ag::Array one = {{1.0F}};
  constexpr int kOps = 1000, kRepeats = 2000;
  double best = 1e30;
  for (int round = 0; round < 5; ++round) {
    const auto start = Clock::now();
    for (int r = 0; r < kRepeats; ++r) {
      tape.reset();
      ag::Var x = tape.variable(one);
      ag::Var y = x;
      for (int i = 0; i < kOps; ++i) y = y + x;
      tape.backward(y);
    }
    best = std::min(best, seconds_since(start) * 1e9 / (kOps * kRepeats));
  }
  return best;
}

// Peak resident memory of a child `train_vae --epochs 1` run, in MB.
double train_vae_peak_rss_mb(const std::string& train_vae, const std::string& data) {
  const std::string out = (std::filesystem::temp_directory_path() / fmt::format("bench_vae_{}", ::getpid())).string();
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::freopen("/dev/null", "w", stdout);
    ::execl(train_vae.c_str(), train_vae.c_str(), "--epochs", "1", "--data", data.c_str(), "--out", out.c_str(),
            "--no-progress", static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  std::filesystem::remove_all(out);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
  rusage usage{};
  ::getrusage(RUSAGE_CHILDREN, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

}  // namespace

int main(int argc, char** argv) {
  std::string data = "/usr/share/datasets/fashion-mnist", train_vae;
  std::size_t epochs = 3;
  int threads = 0;
  bool json = false;
  CLI::App app{"Speed figures of the default VAE: epoch time, per-op overhead, allocations, peak RSS."};
  app.add_option("--data", data, "IDX folder")->capture_default_str();
  app.add_option("--epochs", epochs, "epochs to time (the best counts)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "threads (0: all cores)")->capture_default_str();
  app.add_option("--train-vae", train_vae, "path of train_vae, to measure its peak RSS");
  app.add_flag("--json", json, "print one JSON object instead of text");
  CLI11_PARSE(app, argc, argv);
  if (threads > 0) ag::set_num_threads(threads);

  try {
    const double overhead = per_op_overhead_ns();
    const EpochFigures f = time_epochs(data, epochs);
    const double rss = train_vae.empty() ? -1 : train_vae_peak_rss_mb(train_vae, data);
    if (json) {
      fmt::print("{{\"epoch_seconds\": {:.4f}, \"per_op_ns\": {:.1f}, \"allocations_per_step\": {:.3f}, "
                 "\"peak_rss_mb\": {:.1f}, \"threads\": {}}}\n",
                 f.best_seconds, overhead, f.allocations_per_step, rss, ag::num_threads());
    } else {
      fmt::print("epoch (train steps, best of {}): {:.3f} s  ({:.0f} images/s, {} threads)\n", epochs,
                 f.best_seconds, 60000.0 / f.best_seconds, ag::num_threads());
      fmt::print("per-op overhead (record + backward, 1 element): {:.1f} ns\n", overhead);
      fmt::print("heap allocations per step after warm-up: {:.3f}\n", f.allocations_per_step);
      if (rss > 0) fmt::print("peak RSS of train_vae --epochs 1: {:.1f} MB\n", rss);
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "bench_vae: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
