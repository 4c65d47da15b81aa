#include "datasets/synthetic.hpp"

#include <cmath>
#include <stdexcept>

#include "autograd/random.hpp"
#include "datasets/idx.hpp"

namespace fs = std::filesystem;

namespace datasets {

Dataset binary_blobs(std::size_t n, std::size_t features, std::size_t clusters, double flip,
                     std::uint64_t seed) {
  if (clusters == 0) throw std::invalid_argument("binary_blobs: need at least one cluster");
  ag::Rng rng(seed);
  std::vector<std::uint8_t> prototypes(clusters * features);
  for (auto& p : prototypes) p = rng.uniform() < 0.5F ? 255 : 0;
  std::vector<std::uint8_t> pixels(n * features);
  std::vector<std::int32_t> labels(n);
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t c = rng.below(clusters);
    labels[i] = static_cast<std::int32_t>(c);
    for (std::size_t j = 0; j < features; ++j) {
      std::uint8_t p = prototypes[c * features + j];
      pixels[i * features + j] = rng.uniform() < flip ? static_cast<std::uint8_t>(255 - p) : p;
    }
  }
  return Dataset(std::move(pixels), features, std::move(labels));
}

Dataset gaussian_blobs(std::size_t n, std::size_t features, std::size_t clusters, std::uint64_t seed) {
  if (clusters == 0) throw std::invalid_argument("gaussian_blobs: need at least one cluster");
  ag::Rng rng(seed);
  std::vector<float> centers(clusters * features);
  for (float& c : centers) c = 2.0F * rng.normal();
  std::vector<float> values(n * features);
  std::vector<std::int32_t> labels(n);
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t c = rng.below(clusters);
    labels[i] = static_cast<std::int32_t>(c);
    for (std::size_t j = 0; j < features; ++j) values[i * features + j] = centers[c * features + j] + rng.normal();
  }
  return Dataset(std::move(values), features, std::move(labels));
}

Dataset manifold_vectors(std::size_t n, const ManifoldSpec& spec, std::uint64_t sample_seed) {
  const std::size_t d = spec.features;
  const std::size_t k = spec.latent;
  if (d == 0 || k == 0) throw std::invalid_argument("manifold_vectors: features and latent must be positive");
  ag::Rng manifold(spec.seed);
  std::vector<float> a(d * k);
  std::vector<float> b(d);
  const float scale = 1.0F / std::sqrt(static_cast<float>(k));
  for (float& v : a) v = scale * manifold.normal();
  for (float& v : b) v = 0.5F * manifold.normal();

  ag::Rng rng(sample_seed);
  std::vector<float> z(k);
  std::vector<float> values(n * d);
  for (std::size_t i = 0; i < n; ++i) {
    for (float& v : z) v = rng.normal();
    for (std::size_t r = 0; r < d; ++r) {
      float s = b[r];
      for (std::size_t c = 0; c < k; ++c) s += a[r * k + c] * z[c];
      values[i * d + r] = std::tanh(s) + spec.noise * rng.normal();
    }
  }
  return Dataset(std::move(values), d);
}

void write_manifold_idx(const fs::path& dir, std::size_t n_train, std::size_t n_test,
                        const ManifoldSpec& spec) {
  fs::create_directories(dir);
  auto write = [&](const char* split, std::size_t n, std::uint64_t seed) {
    Dataset data = manifold_vectors(n, spec, seed);
    std::vector<float> values(data.floats().begin(), data.floats().end());
    write_idx(dir / (std::string(split) + "-images-idx2-float"), IdxArray({n, spec.features}, std::move(values)));
  };
  write("train", n_train, spec.seed + 1);
  write("t10k", n_test, spec.seed + 2);
}

}  // namespace datasets
