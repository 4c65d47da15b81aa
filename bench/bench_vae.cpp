// bench_vae: the figures of the speed issue for our side, measured in one process.
//
//   build/bench/bench_vae [--data DIR] [--epochs N] [--batch B] [--threads N] [--train-vae PATH]
//                         [--epoch-only] [--json]
//
// Prints seconds per training epoch of the default VAE (784-400-20, Bernoulli, Adam 1e-3,
// batch 128 unless --batch) on Fashion-MNIST (the best of N epochs, training steps only, as
// PyTorch's figure is taken); the epoch's matrix-multiply FLOPs, counted from the model's
// shapes, and its efficiency: FLOP/s as a fraction of the machine's measured FMA peak on the
// same threads (fma_peak.cpp); inference throughput (encode + decode of the test set, no
// gradient, batches of 500); the per-op overhead of record + backward on 1-element arrays;
// heap allocations per training step after warm-up; and (with --train-vae) the peak RSS of a
// real `train_vae --epochs 1` run. --epoch-only skips all but the epoch, its FLOPs and the
// inference. scripts/bench.py runs this beside PyTorch and libtorch and prints ratios.
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
#include "bench/fma_peak.hpp"
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
  double flops_per_epoch = 0;
  double inference_images_per_second = 0;
};

// Multiply-adds x 2 of one training step per example, from the model's linear layers: each
// weight [out, in] costs 2 out in in the forward, as much for dW = Gᵀ X and for dX = G W,
// except dX of the first layer, whose input (the data) needs no gradient. The elementwise work
// (activations, losses, Adam) is left out: it is a few percent of this.
double gemm_flops_per_example(models::Vae& vae) {
  double flops = 0;
  bool first = true;
  for (const ag::Parameter* p : vae.parameters()) {
    if (p->value.dimension() != 2) continue;
    const double size = static_cast<double>(p->value.size());
    flops += (first ? 4.0 : 6.0) * size;
    first = false;
  }
  return flops;
}

// Images per second of encode + decode at the posterior mean (Vae::reconstruct), no gradient,
// over the test set in batches of 500; the best of a few passes.
double inference_images_per_second(models::Vae& vae, const datasets::Dataset& test) {
  ag::Tape tape;
  ag::NoGradGuard no_grad(tape);
  datasets::Loader loader(test, {.batch_size = 500, .shuffle = false});
  double best = 1e30;
  for (int round = 0; round < 4; ++round) {
    loader.start_epoch();
    const auto start = Clock::now();
    while (loader.next()) {
      tape.reset();
      vae.reconstruct(tape.constant(loader.batch()));
    }
    best = std::min(best, seconds_since(start));
  }
  return static_cast<double>(test.size()) / best;
}

EpochFigures time_epochs(const std::string& data, std::size_t epochs, std::size_t batch) {
  const datasets::Dataset train = datasets::load_idx_dataset(data, "train");
  ag::Rng rng(1);
  models::Vae vae({}, rng);
  optim::Adam adam(vae.parameters(), {.lr = 1e-3});
  datasets::Loader loader(train, {.batch_size = batch, .seed = 2});
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
  f.flops_per_epoch = gemm_flops_per_example(vae) * static_cast<double>(train.size());
  f.inference_images_per_second = inference_images_per_second(vae, datasets::load_idx_dataset(data, "t10k"));
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
  std::size_t epochs = 3, batch = 128;
  int threads = 0;
  bool json = false, epoch_only = false;
  CLI::App app{"Speed figures of the default VAE: epoch time, per-op overhead, allocations, peak RSS."};
  app.add_option("--data", data, "IDX folder")->capture_default_str();
  app.add_option("--epochs", epochs, "epochs to time (the best counts)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--batch", batch, "training batch size")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "threads (0: all cores)")->capture_default_str();
  app.add_option("--train-vae", train_vae, "path of train_vae, to measure its peak RSS");
  app.add_flag("--epoch-only", epoch_only, "time the epoch and inference only");
  app.add_flag("--json", json, "print one JSON object instead of text");
  CLI11_PARSE(app, argc, argv);
  if (threads > 0) ag::set_num_threads(threads);

  try {
    const double overhead = epoch_only ? -1 : per_op_overhead_ns();
    const bench::FmaPeak peak = epoch_only ? bench::FmaPeak{} : bench::measure_fma_peak();
    const EpochFigures f = time_epochs(data, epochs, batch);
    const double rss = train_vae.empty() || epoch_only ? -1 : train_vae_peak_rss_mb(train_vae, data);
    const double gflops = f.flops_per_epoch / f.best_seconds / 1e9;
    if (json) {
      fmt::print("{{\"epoch_seconds\": {:.4f}, \"batch\": {}, \"epoch_gflop\": {:.2f}, \"epoch_gflops\": {:.1f}, "
                 "\"inference_images_per_second\": {:.0f}, \"per_op_ns\": {:.1f}, \"allocations_per_step\": {:.3f}, "
                 "\"peak_rss_mb\": {:.1f}, \"peak_gflops\": {:.1f}, \"peak_isa\": \"{}\", \"peak_lanes\": {}, "
                 "\"threads\": {}}}\n",
                 f.best_seconds, batch, f.flops_per_epoch / 1e9, gflops, f.inference_images_per_second, overhead,
                 f.allocations_per_step, rss, peak.gflops, peak.isa, peak.lanes, ag::num_threads());
    } else {
      fmt::print("epoch (train steps, batch {}, best of {}): {:.3f} s  ({:.0f} images/s, {} threads)\n", batch,
                 epochs, f.best_seconds, 60000.0 / f.best_seconds, ag::num_threads());
      fmt::print("epoch GEMM work: {:.1f} GFLOP, {:.1f} GFLOP/s\n", f.flops_per_epoch / 1e9, gflops);
      fmt::print("inference (encode + decode, batch 500, no gradient): {:.0f} images/s\n",
                 f.inference_images_per_second);
      if (epoch_only) return 0;
      fmt::print("FMA peak ({} threads, {}, {} floats per vector): {:.1f} GFLOP/s; epoch efficiency {:.3f}\n",
                 peak.threads, peak.isa, peak.lanes, peak.gflops, gflops / peak.gflops);
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
