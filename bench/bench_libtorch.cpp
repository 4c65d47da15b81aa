// bench_libtorch: the default VAE trained by libtorch 1.13 (Debian's libtorch-dev), the C++
// reference of the speed benchmark. Same model, data and loop as bench_vae and
// scripts/vae_pytorch.py: 784-400-20 ReLU encoder, 20-400-784 decoder, BCE from logits summed
// over pixels plus the analytic KL, divided by the batch; Adam lr 1e-3; a fresh random order
// of the 60,000 Fashion-MNIST training images every epoch.
//
//   build/bench/bench_libtorch [--data DIR] [--epochs N] [--batch B] [--threads N] [--json]
//
// Prints seconds per epoch (the best of N, training steps only) and the throughput of
// inference: encode + decode of the 10,000 test images, no gradient, batches of 500.
// scripts/bench.py runs it at several thread settings and keeps the fastest.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include "datasets/dataset.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The images as one [N, 784] float tensor in [0, 1], as vae_pytorch.py holds them.
torch::Tensor load_images(const std::string& data, const std::string& split) {
  const datasets::Dataset d = datasets::load_idx_dataset(data, split);
  torch::Tensor x = torch::empty({static_cast<long>(d.size()), static_cast<long>(d.features())});
  float* out = x.data_ptr<float>();
  for (std::size_t i = 0; i < d.size(); ++i) d.row_to_floats(i, out + i * d.features());
  return x;
}

struct VaeImpl : torch::nn::Module {
  torch::nn::Linear enc{784, 400}, mu{400, 20}, logvar{400, 20}, dec{20, 400}, out{400, 784};
  VaeImpl() {
    register_module("enc", enc);
    register_module("mu", mu);
    register_module("logvar", logvar);
    register_module("dec", dec);
    register_module("out", out);
  }
  torch::Tensor decode(const torch::Tensor& z) { return out(torch::relu(dec(z))); }
  // Per-batch sums of the reconstruction loss and the KL divergence.
  std::pair<torch::Tensor, torch::Tensor> loss(const torch::Tensor& x) {
    const torch::Tensor h = torch::relu(enc(x));
    const torch::Tensor m = mu(h), lv = logvar(h);
    const torch::Tensor z = m + torch::exp(0.5 * lv) * torch::randn_like(m);
    const torch::Tensor recon = torch::binary_cross_entropy_with_logits(
        decode(z), x, {}, {}, at::Reduction::Sum);
    const torch::Tensor kl = -0.5 * torch::sum(1 + lv - m.pow(2) - lv.exp());
    return {recon, kl};
  }
  // encode + decode at the posterior mean, both heads computed, as our Vae::reconstruct.
  torch::Tensor reconstruct(const torch::Tensor& x) {
    const torch::Tensor h = torch::relu(enc(x));
    logvar(h);  // computed and dropped, as our encode computes both heads
    return torch::sigmoid(decode(mu(h)));
  }
};
TORCH_MODULE(Vae);

}  // namespace

int main(int argc, char** argv) {
  std::string data = "/usr/share/datasets/fashion-mnist";
  int epochs = 3, batch = 128, threads = 1;
  bool json = false;
  CLI::App app{"The default VAE trained by libtorch: seconds per epoch and inference throughput."};
  app.add_option("--data", data, "IDX folder")->capture_default_str();
  app.add_option("--epochs", epochs, "epochs to time (the best counts)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--batch", batch, "training batch size")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "torch::set_num_threads")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_flag("--json", json, "print one JSON object instead of text");
  CLI11_PARSE(app, argc, argv);
  try {
    torch::set_num_threads(threads);
    torch::manual_seed(1);
    const torch::Tensor train = load_images(data, "train"), test = load_images(data, "t10k");
    Vae vae;
    torch::optim::Adam adam(vae->parameters(), torch::optim::AdamOptions(1e-3));
    double best = 1e30;
    for (int epoch = 0; epoch < epochs; ++epoch) {
      const auto start = Clock::now();
      for (const torch::Tensor& idx : torch::randperm(train.size(0)).split(batch)) {
        const auto [recon, kl] = vae->loss(train.index_select(0, idx));
        const torch::Tensor loss = (recon + kl) / idx.size(0);
        adam.zero_grad();
        loss.backward();
        adam.step();
      }
      best = std::min(best, seconds_since(start));
    }
    double best_inference = 1e30;
    {
      torch::NoGradGuard no_grad;
      for (int round = 0; round < 3; ++round) {
        const auto start = Clock::now();
        for (const torch::Tensor& x : test.split(500)) vae->reconstruct(x);
        best_inference = std::min(best_inference, seconds_since(start));
      }
    }
    const double images_per_second = static_cast<double>(test.size(0)) / best_inference;
    if (json)
      std::printf("{\"epoch_seconds\": %.4f, \"inference_images_per_second\": %.0f, \"threads\": %d}\n",
                  best, images_per_second, threads);
    else
      std::printf("libtorch %d threads, batch %d: %.3f s/epoch; inference %.0f images/s\n", threads,
                  batch, best, images_per_second);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_libtorch: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
