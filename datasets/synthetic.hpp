// Small synthetic datasets, for tests and for trying models without downloading anything.
//
//   auto blobs = datasets::binary_blobs(512, 64, 4, 0.05, 7);   // bytes 0/255, labels 0..3
//   auto points = datasets::gaussian_blobs(300, 2, 3, 7);        // floats, labels 0..2
//   auto vectors = datasets::manifold_vectors(10000, {}, 2);     // 100 floats on a 5-d manifold
//   datasets::write_manifold_idx("data/manifold", 60000, 10000, {});
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>

#include "datasets/dataset.hpp"

namespace datasets {

/// `clusters` random binary prototypes of `features` pixels (each pixel on with
/// probability 1/2); every example copies a random prototype with each pixel flipped with
/// probability `flip`. Pixels are bytes 0 or 255; the label is the prototype.
Dataset binary_blobs(std::size_t n, std::size_t features, std::size_t clusters, double flip,
                     std::uint64_t seed);

/// `clusters` centers drawn from N(0, 4 I); each example is a random center plus N(0, I)
/// noise. Float features; the label is the center.
Dataset gaussian_blobs(std::size_t n, std::size_t features, std::size_t clusters, std::uint64_t seed);

/// Data near a smooth `latent`-dimensional manifold in `features` dimensions:
///   x = tanh(A z + b) + noise * e,   z ~ N(0, I_latent), e ~ N(0, I_features),
/// with A [features x latent] of N(0, 1/latent) entries (so A z has unit variance) and
/// b ~ N(0, 0.25 I), both fixed by `seed`. The examples come from a separate sample seed,
/// so a train and a test set share the manifold but not the points.
struct ManifoldSpec {
  std::size_t features = 100;
  std::size_t latent = 5;
  float noise = 0.05F;
  std::uint64_t seed = 1;
};
Dataset manifold_vectors(std::size_t n, const ManifoldSpec& spec, std::uint64_t sample_seed);

/// Writes `{dir}/train-images-idx2-float` (n_train x features, float32, samples from seed
/// spec.seed + 1) and `{dir}/t10k-images-idx2-float` (n_test, seed spec.seed + 2), unlabeled,
/// so load_idx_dataset(dir, "train") reads them like any other IDX set. Creates dir.
void write_manifold_idx(const std::filesystem::path& dir, std::size_t n_train, std::size_t n_test,
                        const ManifoldSpec& spec);

}  // namespace datasets
