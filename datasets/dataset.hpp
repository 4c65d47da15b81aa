// Dataset: N examples of D features, held compactly, with optional integer labels.
//
// Images stay as bytes (Fashion-MNIST train: 60000 x 784 bytes = 47 MB) and are turned
// into floats one batch at a time by the Loader; non-image data holds float features.
// Each example of an IDX file of any rank is flattened to a row: [N, 28, 28] -> N x 784.
//
//   datasets::Dataset train = datasets::load_idx_dataset("/usr/share/datasets/fashion-mnist", "train");
//   train.size();       // 60000
//   train.features();   // 784
//   train.label(0);     // 9 (ankle boot)
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "datasets/idx.hpp"

namespace datasets {

class Dataset {
 public:
  Dataset() = default;
  /// Byte features (pixels 0..255), row-major N x features. Labels, if given, one per row.
  Dataset(std::vector<std::uint8_t> pixels, std::size_t features,
          std::optional<std::vector<std::int32_t>> labels = std::nullopt);
  /// Float features, row-major N x features.
  Dataset(std::vector<float> values, std::size_t features,
          std::optional<std::vector<std::int32_t>> labels = std::nullopt);

  /// Builds a dataset from an examples array (rank >= 1; u8 stays bytes, every other type
  /// becomes float) and an optional rank-1 integer labels array. `source` names the files
  /// in error messages. Throws DataError if the counts differ or the labels are not integers.
  static Dataset from_idx(IdxArray examples, std::optional<IdxArray> labels,
                          const std::string& source);

  std::size_t size() const { return size_; }
  std::size_t features() const { return features_; }
  /// The shape of one example before flattening, e.g. {28, 28}; {features} if unknown.
  const std::vector<std::size_t>& example_shape() const { return example_shape_; }
  void set_example_shape(std::vector<std::size_t> shape);
  /// Images given channels first, [C, H, W] with C = 1 or 3 (PyTorch's layout), are held
  /// like every other image: [H, W] or [H, W, C], channels interleaved, as the models and
  /// pictures read them. Reorders the rows if so (a last axis of 1 or 3 already reads as
  /// channels last and is left alone) and remembers it; returns whether it did.
  bool interleave_channels();
  /// Whether interleave_channels() reordered the rows: arrays written back for this data
  /// should go out channels first again.
  bool channels_first() const { return channels_first_; }
  /// Class names indexed by label (empty if unknown): legends say "Sandal", not "5".
  const std::vector<std::string>& label_names() const { return label_names_; }
  void set_label_names(std::vector<std::string> names) { label_names_ = std::move(names); }

  bool holds_bytes() const { return holds_bytes_; }
  bool has_labels() const { return has_labels_; }
  /// The whole N x features storage; bytes() for byte data, floats() for float data.
  std::span<const std::uint8_t> bytes() const { return bytes_; }
  std::span<const float> floats() const { return floats_; }
  std::span<const std::int32_t> labels() const { return labels_; }
  std::int32_t label(std::size_t i) const { return labels_.at(i); }

  /// Writes example i as floats into out[0, features): bytes scaled to [0, 1] (p / 255).
  void row_to_floats(std::size_t i, float* out) const;

  /// Asks the CPU to start loading example i's storage into cache (a hint; no effect on values):
  /// a loader calls it a few rows ahead of row_to_floats, so that rows drawn at random wait on
  /// memory together instead of one after another.
  void prefetch_row(std::size_t i) const;

  /// A copy holding the given rows, in the given order.
  Dataset subset(std::span<const std::size_t> rows) const;
  /// The labels renumbered as the classes of `names` are (a model's), matched by name, and
  /// those names taken, when every class this data names is among them; otherwise (no names,
  /// a name `names` lacks, a label past this data's names, a name given twice in `names`)
  /// nothing changes. Returns whether any label changed.
  bool number_classes_as(const std::vector<std::string>& names);
  /// Keeps only the first n examples (no-op if n >= size()) and frees the rest.
  void truncate(std::size_t n);
  /// Bytes of example and label storage.
  std::size_t bytes_held() const;

 private:
  void check_labels() const;

  std::size_t size_ = 0;
  std::size_t features_ = 0;
  std::vector<std::size_t> example_shape_;
  std::vector<std::string> label_names_;
  bool holds_bytes_ = true;
  bool has_labels_ = false;
  bool channels_first_ = false;
  std::vector<std::uint8_t> bytes_;
  std::vector<float> floats_;
  std::vector<std::int32_t> labels_;
};

/// Everything = no limit.
inline constexpr std::size_t kAllExamples = static_cast<std::size_t>(-1);

/// Loads the split "train" or "t10k" (or any other prefix) from a folder of IDX files.
///
/// Examples: `{split}-images-idx3-ubyte`, else `{split}-images-idx3-ubyte.gz`, else the one
/// file named `{split}-images-idx*` (so float vectors can live in, e.g.,
/// `train-images-idx2-float.gz`). Required: a DataError says what was looked for.
/// Labels: `{split}-labels-idx1-ubyte[.gz]`, else the one `{split}-labels-idx*` file.
/// Optional, because unlabeled data (such as generated vectors) has none; when present the
/// counts must match. Keeps the first `limit` examples.
Dataset load_idx_dataset(const std::filesystem::path& dir, const std::string& split,
                         std::size_t limit = kAllExamples);

/// Row indices split into training and held-out validation rows: a seeded shuffle of
/// 0..n-1, the first `validation_count` become validation; each list is then sorted, so
/// the same (n, count, seed) always gives the same split.
struct Split {
  std::vector<std::size_t> train;
  std::vector<std::size_t> validation;
};
Split split_indices(std::size_t n, std::size_t validation_count, std::uint64_t seed);

}  // namespace datasets
