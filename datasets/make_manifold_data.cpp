// make_manifold_data: writes a synthetic IDX float32 dataset of vectors near a manifold.
//
//   build/datasets/make_manifold_data OUTDIR [--train N] [--test N] [--features D]
//                                     [--latent K] [--noise S] [--seed SEED]
//
// Defaults: 60000 train and 10000 test vectors of 100 floats, x = tanh(A z + b) + 0.05 e
// with z ~ N(0, I_5), seed 1 (see datasets/synthetic.hpp). Writes
// OUTDIR/train-images-idx2-float and OUTDIR/t10k-images-idx2-float, which
// datasets::load_idx_dataset (and so `train_vae --data OUTDIR`) reads like Fashion-MNIST.
#include <exception>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "datasets/synthetic.hpp"

int main(int argc, char** argv) {
  datasets::ManifoldSpec spec;
  std::size_t n_train = 60000, n_test = 10000;
  std::string out;
  CLI::App app{"Writes {train,t10k}-images-idx2-float: vectors x = tanh(A z + b) + noise, z ~ N(0, I)."};
  app.add_option("OUTDIR", out, "output folder")->required();
  app.add_option("--train", n_train, "training vectors")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--test", n_test, "test vectors")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--features", spec.features, "floats per vector")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--latent", spec.latent, "dimensions of z")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--noise", spec.noise, "standard deviation of the added noise")->capture_default_str();
  app.add_option("--seed", spec.seed, "seed of A, b and the samples")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    datasets::write_manifold_idx(out, n_train, n_test, spec);
    fmt::print("wrote {}/{{train,t10k}}-images-idx2-float: {} and {} vectors of {} floats (latent {}, noise {}, seed {})\n",
               out, n_train, n_test, spec.features, spec.latent, spec.noise, spec.seed);
  } catch (const std::exception& e) {
    fmt::print(stderr, "make_manifold_data: {}\n", e.what());
    return 1;
  }
  return 0;
}
