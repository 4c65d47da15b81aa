// bench_conv: our side of the convolution benchmark (scripts/bench_conv.py times PyTorch's).
//
//   build/bench/bench_conv [--data DIR] [--limit N] [--epochs N] [--threads N]
//
// Prints JSON lines: each convolution layer of `vae train --arch conv` at batch 128, forward +
// backward (input, weight and bias gradients), the best of 20 calls; then seconds per training
// epoch of the conv VAE (training steps only, the best of --epochs), with the heap allocations
// per step after the first epoch, and the epoch's arithmetic (FLOPs from the model's shapes)
// per second.
#include <algorithm>
#include <chrono>
#include <cstdio>

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

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

struct Layer {
  const char* name;
  bool transposed;
  ag::Shape x, w;  // input [B, C, H, W]; weight as the op takes it
};

// The four convolutions of the conv VAE on 28 x 28 images, batch 128.
const Layer kLayers[] = {
    {"encoder.0 conv2d 1->32, 28x28->14x14", false, {128, 1, 28, 28}, {32, 1, 4, 4}},
    {"encoder.2 conv2d 32->64, 14x14->7x7", false, {128, 32, 14, 14}, {64, 32, 4, 4}},
    {"decoder.5 conv_transpose2d 64->32, 7x7->14x14", true, {128, 64, 7, 7}, {64, 32, 4, 4}},
    {"out conv_transpose2d 32->1, 14x14->28x28", true, {128, 32, 14, 14}, {32, 1, 4, 4}},
};

double time_layer(const Layer& l) {
  ag::Rng rng(1);
  ag::Array x(l.x), w(l.w), b({l.transposed ? l.w[1] : l.w[0]});
  rng.fill_uniform(x, -1.0F, 1.0F);
  rng.fill_uniform(w, -0.1F, 0.1F);
  ag::Tape tape;
  double best = 1e30;
  for (int i = 0; i < 20; ++i) {
    const auto start = Clock::now();
    tape.reset();
    ag::Var xv = tape.variable(x), wv = tape.variable(w), bv = tape.variable(b);
    ag::Var y = l.transposed ? ag::conv_transpose2d(xv, wv, bv, {.stride = 2, .padding = 1})
                             : ag::conv2d(xv, wv, bv, {.stride = 2, .padding = 1});
    tape.backward(y, y.value());  // any seed of y's shape
    best = std::min(best, seconds_since(start));
  }
  return best;
}

// Floating-point operations of one training step per image of the 28 x 28 conv VAE: the
// multiply-adds of its convolutions and linear layers (forward), three times over for forward
// and backward, less the first convolution's input gradient, which nothing needs; 2 FLOPs each.
double conv_vae_flop_per_image() {
  const double first = 32.0 * 16 * 14 * 14, second = 64.0 * 32 * 16 * 7 * 7, bottleneck = 64.0 * 7 * 7;
  const double linear = bottleneck * 256 + 2 * 256.0 * 20 + 20.0 * 256 + 256 * bottleneck;
  const double forward = first + second + linear + second + first;  // the decoder's mirror the encoder's
  return 2 * (3 * forward - first);
}

}  // namespace

int main(int argc, char** argv) {
  std::string data = "/usr/share/datasets/fashion-mnist";
  std::size_t epochs = 2, limit = 0;
  int threads = 0;
  CLI::App app{"Our conv layers and conv-VAE epoch; scripts/bench_conv.py prints them beside PyTorch's."};
  app.add_option("--data", data, "IDX folder")->capture_default_str();
  app.add_option("--epochs", epochs, "epochs to time (the best counts)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--limit", limit, "time epochs of only the first N training images (0: all)")->capture_default_str();
  app.add_option("--threads", threads, "threads (0: all cores)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (threads > 0) ag::set_num_threads(threads);
  try {
    for (const Layer& l : kLayers)
      fmt::print("{{\"layer\": \"{}\", \"seconds\": {:.6f}}}\n", l.name, time_layer(l));
    std::fflush(stdout);
    datasets::Dataset train = datasets::load_idx_dataset(data, "train");
    if (limit > 0) train.truncate(limit);
    ag::Rng rng(1);
    models::Vae vae({.input_dim = 784, .arch = models::Arch::conv, .image = {1, 28, 28}}, rng);
    optim::Adam adam(vae.parameters(), {.lr = 1e-3});
    datasets::Loader loader(train, {.batch_size = 128, .seed = 2});
    ag::Tape tape;
    double best = 1e30;
    std::size_t allocations = 0, steps = 0;
    for (std::size_t epoch = 0; epoch < epochs; ++epoch) {
      loader.start_epoch();
      const auto start = Clock::now();
      while (loader.next()) {
        const std::size_t before = bench::allocation_count();
        tools::train_step(tape, vae, adam, loader.batch(), rng, 1.0F);
        if (epoch > 0) allocations += bench::allocation_count() - before, ++steps;
      }
      best = std::min(best, seconds_since(start));
    }
    const double gflop = conv_vae_flop_per_image() * static_cast<double>(train.size()) * 1e-9;
    fmt::print("{{\"conv_vae_epoch_seconds\": {:.4f}, \"examples\": {}, \"epoch_gflop\": {:.1f}, "
               "\"epoch_gflops\": {:.1f}, \"allocations_per_step\": {}, \"threads\": {}}}\n",
               best, train.size(), gflop, gflop / best,
               steps ? static_cast<double>(allocations) / static_cast<double>(steps) : -1.0, ag::num_threads());
  } catch (const std::exception& e) {
    fmt::print(stderr, "bench_conv: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
