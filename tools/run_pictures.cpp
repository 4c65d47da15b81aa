#include "tools/run_pictures.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <stdexcept>

#include <cairo.h>

#include <fmt/format.h>

#include "datasets/loader.hpp"
#include "tools/pictures.hpp"
#include "tools/streams.hpp"

namespace fs = std::filesystem;

namespace tools {

std::optional<ImageShape> image_shape(const std::vector<std::size_t>& s) {
  if (s.size() == 2 || (s.size() == 3 && s[2] == 1)) return ImageShape{s[0], s[1], 1};
  if (s.size() == 3 && s[2] == 3) return ImageShape{s[0], s[1], 3};
  return std::nullopt;
}

bool write_image_grid(const fs::path& path, const ag::Array& images, ImageShape shape, std::size_t cols, int scale) {
  cols = std::max<std::size_t>(1, cols);
  return pictures::write_grid(path.string(), images, shape.height, shape.width, cols, scale, shape.channels);
}

void write_reconstruction_rows(const fs::path& path, Model& model, const ag::Array& originals,
                               std::span<const std::int32_t> labels, ImageShape shape) {
  ag::Tape tape;
  ag::NoGradGuard no_grad(tape);
  const std::size_t n = originals.shape()[0], d = originals.shape()[1];
  ag::Var y = model.labels_on(tape, labels);
  const ag::Array recon = model.reconstruct(tape.constant(originals), y).value();
  const std::size_t per_row = std::min<std::size_t>(16, n), rows = (n + per_row - 1) / per_row;
  ag::Array grid = xt::zeros<float>({2 * rows * per_row, d});
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t top = (i / per_row) * 2 * per_row + i % per_row;
    for (std::size_t j = 0; j < d; ++j) {
      grid(top, j) = originals(i, j);
      grid(top + per_row, j) = recon(i, j);
    }
  }
  write_image_grid(path, grid, shape, per_row);
}

namespace {

// Posterior means of the test set, coloured by label.
void write_latent_scatter(const fs::path& path, Model& model, const datasets::Dataset& test,
                          const datasets::LoaderOptions& options) {
  ag::Tape tape;
  ag::NoGradGuard no_grad(tape);
  ag::Array means({test.size(), 2});
  datasets::Loader loader(test, options);
  loader.start_epoch();
  std::size_t row = 0;
  std::vector<int> labels;
  while (loader.next()) {
    tape.reset();
    ag::Var y = model.labels_on(tape, loader.labels());
    const ag::Array& mu = model.encode(tape.constant(loader.batch()), y).mu.value();
    for (std::size_t i = 0; i < mu.shape()[0]; ++i, ++row) {
      means(row, 0) = mu(i, 0);
      means(row, 1) = mu(i, 1);
    }
    for (std::int32_t l : loader.labels()) labels.push_back(l);
  }
  // Colours and a legend for up to 20 classes numbered from 0; anything else is one colour.
  std::vector<std::string> names;
  const bool classes_ok = labels.size() == test.size() && !labels.empty() &&
                          *std::min_element(labels.begin(), labels.end()) >= 0 &&
                          *std::max_element(labels.begin(), labels.end()) < 20;
  if (classes_ok) {
    const auto classes = static_cast<std::size_t>(*std::max_element(labels.begin(), labels.end()) + 1);
    const auto& known = test.label_names();
    for (std::size_t c = 0; c < classes; ++c) names.push_back(c < known.size() ? known[c] : std::to_string(c));
  } else {
    labels.assign(test.size(), 0);
    names = {"test examples"};
  }
  pictures::write_scatter(path.string(), means, labels, names, "test-set posterior means, by label");
}

// The decoder over a 20 x 20 grid of the latent plane, z in [-3, 3]^2 (top row: z2 = 3), as
// class `label` for a conditional model (ignored by the plain VAE).
void write_manifold(const fs::path& path, Model& model, ImageShape shape, std::int32_t label) {
  constexpr std::size_t kGrid = 20;
  ag::Array z({kGrid * kGrid, 2});
  for (std::size_t r = 0; r < kGrid; ++r)
    for (std::size_t c = 0; c < kGrid; ++c) {
      z(r * kGrid + c, 0) = -3.0F + 6.0F * static_cast<float>(c) / (kGrid - 1);
      z(r * kGrid + c, 1) = 3.0F - 6.0F * static_cast<float>(r) / (kGrid - 1);
    }
  const std::vector<std::int32_t> labels(model.conditional() ? kGrid * kGrid : 0, label);
  write_image_grid(path, model.decoded(z, labels), shape, kGrid, 1);
}

}  // namespace

std::vector<std::string> write_run_pictures(const fs::path& out, Model& model, const datasets::Dataset& test,
                                            std::uint64_t seed, std::size_t eval_batch, bool binarize) {
  std::vector<std::string> written;
  const std::optional<ImageShape> shape = image_shape(test.example_shape());
  if (shape) {
    ag::Rng rng(stream_seed(seed, kPictures));
    const std::vector<std::int32_t> classes = class_rows(model.num_classes(), 8);  // none for the plain VAE
    ag::Array z({model.conditional() ? classes.size() : 64, model.config().latent});
    rng.fill_normal(z);
    write_image_grid(out / "samples.png", model.decoded(z, classes), *shape, 8);
    const std::size_t n = std::min<std::size_t>(32, test.size());
    ag::Array originals({n, test.features()});
    for (std::size_t i = 0; i < n; ++i) test.row_to_floats(i, &originals(i, 0));
    const auto labels = test.has_labels() ? test.labels().first(n) : std::span<const std::int32_t>{};
    write_reconstruction_rows(out / "reconstructions.png", model, originals, labels, *shape);
    written = {"samples.png", "reconstructions.png"};
  }
  if (model.config().latent == 2) {
    write_latent_scatter(out / "latent.png", model, test,
                         {.batch_size = eval_batch, .shuffle = false, .binarize = binarize,
                          .seed = stream_seed(seed, kTestBinarize)});
    written.emplace_back("latent.png");
    if (shape && !model.conditional()) {
      write_manifold(out / "manifold.png", model, *shape, 0);
      written.emplace_back("manifold.png");
    }
    // A conditional model's plane differs per class: one picture each (up to 20 classes, as
    // many as latent.png tells apart).
    if (shape && model.conditional() && model.num_classes() <= 20) {
      for (std::size_t k = 0; k < model.num_classes(); ++k) {
        const std::string name = fmt::format("manifold-{}.png", k);
        write_manifold(out / name, model, *shape, static_cast<std::int32_t>(k));
        written.push_back(name);
      }
    }
  }
  return written;
}

}  // namespace tools
