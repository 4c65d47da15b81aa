// The pictures of a trained model: prior samples, test reconstructions, and for a 2-D
// latent space the posterior means by label and the decoded manifold. Image sizes come
// from what the data knows (Dataset::example_shape(), or a model's "example_shape"
// metadata), never from guessing at the feature count.
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "datasets/dataset.hpp"
#include "tools/model.hpp"

namespace tools {

struct ImageShape {
  std::size_t height, width, channels = 1;
};

/// {H, W}, {H, W, 1} (gray) or {H, W, 3} (RGB, channels interleaved) -> an image shape;
/// anything else -> none.
std::optional<ImageShape> image_shape(const std::vector<std::size_t>& example_shape);

/// `images` ([N, H*W*C], values in [0, 1]) tiled `cols` to a row into a PNG; false (after a
/// warning) when the picture is too large to draw, and nothing is written.
bool write_image_grid(const std::filesystem::path& path, const ag::Array& images, ImageShape shape,
                      std::size_t cols, int scale = 2);

/// Pairs of rows: up to 16 originals above their reconstructions (through the posterior mean;
/// `labels`: the originals' classes, which a conditional model reads).
void write_reconstruction_rows(const std::filesystem::path& path, Model& model, const ag::Array& originals,
                               std::span<const std::int32_t> labels, ImageShape shape);

/// Writes the run's pictures into `out` and returns their names. A conditional model's
/// samples are a grid with one row per class.
std::vector<std::string> write_run_pictures(const std::filesystem::path& out, Model& model,
                                            const datasets::Dataset& test, std::uint64_t seed,
                                            std::size_t eval_batch, bool binarize);

}  // namespace tools
