// make_manifold_data: writes a synthetic IDX float32 dataset of vectors near a manifold.
//
//   build/datasets/make_manifold_data OUTDIR [--train N] [--test N] [--features D]
//                                     [--latent K] [--noise S] [--seed SEED]
//
// Defaults: 60000 train and 10000 test vectors of 100 floats, x = tanh(A z + b) + 0.05 e
// with z ~ N(0, I_5), seed 1 (see datasets/synthetic.hpp). Writes
// OUTDIR/train-images-idx2-float and OUTDIR/t10k-images-idx2-float, which
// datasets::load_idx_dataset (and so `train_vae --data OUTDIR`) reads like Fashion-MNIST.
#include <cstdio>
#include <exception>
#include <string>

#include "datasets/synthetic.hpp"

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]).starts_with("-")) {
    std::fprintf(stderr, "usage: %s OUTDIR [--train N] [--test N] [--features D] [--latent K] "
                 "[--noise S] [--seed SEED]\n", argv[0]);
    return 2;
  }
  datasets::ManifoldSpec spec;
  std::size_t n_train = 60000;
  std::size_t n_test = 10000;
  try {
    for (int i = 2; i < argc; i += 2) {
      std::string flag = argv[i];
      if (i + 1 >= argc) throw std::invalid_argument(flag + " needs a value");
      std::string value = argv[i + 1];
      if (flag == "--train") n_train = std::stoull(value);
      else if (flag == "--test") n_test = std::stoull(value);
      else if (flag == "--features") spec.features = std::stoull(value);
      else if (flag == "--latent") spec.latent = std::stoull(value);
      else if (flag == "--noise") spec.noise = std::stof(value);
      else if (flag == "--seed") spec.seed = std::stoull(value);
      else throw std::invalid_argument("unknown option " + flag);
    }
    datasets::write_manifold_idx(argv[1], n_train, n_test, spec);
    std::printf("wrote %s/{train,t10k}-images-idx2-float: %zu and %zu vectors of %zu floats "
                "(latent %zu, noise %g, seed %llu)\n", argv[1], n_train, n_test, spec.features,
                spec.latent, static_cast<double>(spec.noise),
                static_cast<unsigned long long>(spec.seed));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_manifold_data: %s\n", e.what());
    return 1;
  }
  return 0;
}
