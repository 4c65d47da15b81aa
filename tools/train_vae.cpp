// train_vae: trains a VAE on an IDX dataset (Fashion-MNIST by default) and leaves behind a
// checkpoint, metrics and pictures. `train_vae --help` lists the flags.
//
// Exit codes: 0 done; 1 bad input (data, checkpoint, configuration); 2 bad flag;
// 3 training diverged (a non-finite loss; the last good checkpoint is kept).
#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "tools/vae_training.hpp"

int main(int argc, char** argv) {
  tools::TrainOptions o;
  std::string hidden = "400", decoder = "bernoulli", data = o.data.string(), out = o.out.string(), resume;
  bool no_progress = false;

  CLI::App app{"Trains a Variational Autoencoder on IDX data and writes model.safetensors, "
               "checkpoint.safetensors, metrics.csv, results.json and PNG pictures to --out."};
  app.add_option("--data", data, "folder with train-images-idx3-ubyte[.gz], t10k-images-idx3-ubyte[.gz] "
                                 "and (optionally) their labels")->capture_default_str();
  app.add_option("--epochs", o.epochs, "total epochs (a resumed run continues up to this many)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--batch", o.batch, "examples per training step")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--lr", o.lr, "Adam learning rate")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--hidden", hidden, "encoder widths, comma-separated; the decoder mirrors them; "
                                     "'none' for a linear encoder and decoder")->capture_default_str();
  app.add_option("--latent", o.latent, "latent dimensions")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--decoder", decoder, "p(x|z): bernoulli (BCE), gaussian (fixed variance: squared "
                                       "error), gaussian-learned (per-pixel variance)")
      ->capture_default_str()->check(CLI::IsMember({"bernoulli", "gaussian", "gaussian-learned"}));
  app.add_option("--beta", o.beta, "weight of the KL term (beta-VAE)")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--kl-warmup", o.kl_warmup, "epochs over which beta rises linearly from 0")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_flag("--binarize", o.binarize, "dynamically binarize pixels (1 with probability p/255, redrawn each epoch)");
  app.add_option("--seed", o.seed, "seed for initialization, noise and shuffling")->capture_default_str();
  app.add_option("--threads", o.threads, "threads for the matrix kernels (0: all cores)")
      ->capture_default_str()->check(CLI::Range(0, 1024));
  app.add_option("--limit", o.limit, "use only the first N training examples (0: all)")->capture_default_str();
  app.add_option("--out", out, "output folder")->capture_default_str();
  app.add_option("--resume", resume, "continue from a checkpoint.safetensors written by train_vae")
      ->check(CLI::ExistingFile);
  app.add_option("--iwae", o.iwae, "after training, estimate the test NLL with the importance-weighted "
                                   "bound over K samples (0: skip)")->capture_default_str()->check(CLI::Range(0, 1'000'000));
  app.add_option("--eval-batch", o.eval_batch, "examples per evaluation batch")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_flag("--no-progress", no_progress, "no progress bar");

  try {
    app.parse(argc, argv);
    try {
      o.hidden = models::parse_widths(hidden, "--hidden");
    } catch (const std::invalid_argument& e) {
      throw CLI::ValidationError(e.what());
    }
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  o.decoder = models::parse_decoder(decoder);
  o.data = data;
  o.out = out;
  o.resume = resume;
  o.progress = !no_progress;
  for (const char* name : {"batch", "lr", "hidden", "latent", "decoder", "beta", "kl-warmup",
                           "binarize", "seed", "limit"})
    if (app.count(std::string("--") + name) > 0) o.given.emplace_back(name);

  try {
    tools::train_vae(std::move(o));
  } catch (const tools::TrainingDiverged& e) {
    fmt::print(stderr, "train_vae: {}\n", e.what());
    return 3;
  } catch (const std::exception& e) {
    fmt::print(stderr, "train_vae: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
