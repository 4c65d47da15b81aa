// Loader: shuffled mini-batches of a Dataset as float32 arrays.
//
// Each epoch visits every example (or every row of a given index list) exactly once, in
// an order drawn from the loader's own seeded ag::Rng; the last batch keeps the remainder
// (60000 examples at 128 a batch: 468 full batches and one of 96). Bytes become p / 255;
// with `binarize`, each pixel instead becomes 1 with probability p / 255 (drawn afresh
// every epoch: "dynamic binarization"). After construction no call allocates: the batch
// arrays, index and label buffers are reused.
//
//   datasets::Loader loader(train, {.batch_size = 128, .seed = 1});
//   for (int epoch = 0; epoch < 10; ++epoch) {
//     loader.start_epoch();
//     while (loader.next()) {
//       const ag::Array& x = loader.batch();   // [128, 784], the last one [96, 784]
//       ...
//     }
//   }
//   std::string saved = loader.state();  // store it in the checkpoint; set_state() resumes
//
// Data-parallel sharding: with .rank = r and .ranks = N, every rank draws the same order
// (the same seed) and batch() holds rank r's slice of each global batch of batch_size rows:
// rows [g r / N, g (r + 1) / N) of a global batch of g rows, so the slices differ by at most
// one row and together are exactly the one-process batch. The last partial batch is split
// the same way; when it has fewer rows than there are ranks, some ranks get an empty slice
// ([0, features]) for it and must still take part in the step (with weight 0). Binarization
// draws stay those of the one-process loader (a rank skips the draws of the others' rows),
// and state() is the same on every rank, so a checkpoint resumes with any number of ranks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "autograd/array.hpp"
#include "autograd/random.hpp"
#include "datasets/dataset.hpp"

namespace datasets {

struct LoaderOptions {
  std::size_t batch_size = 128;
  bool shuffle = true;
  /// Pixel = 1 with probability p / 255, else 0. Byte datasets only.
  bool binarize = false;
  std::uint64_t seed = 0;
  /// Data-parallel sharding: this process's rank and the number of ranks.
  std::size_t rank = 0;
  std::size_t ranks = 1;
};

class Loader {
 public:
  /// Batches over every example. The dataset must outlive the loader.
  Loader(const Dataset& data, LoaderOptions options);
  /// Batches over the given rows only (e.g. Split::train).
  Loader(const Dataset& data, std::vector<std::size_t> rows, LoaderOptions options);
  Loader(Dataset&&, LoaderOptions) = delete;  // would dangle
  Loader(Dataset&&, std::vector<std::size_t>, LoaderOptions) = delete;

  /// Examples per epoch (all ranks').
  std::size_t size() const { return rows_.size(); }
  /// Rows of a full global batch.
  std::size_t batch_size() const { return options_.batch_size; }
  /// Batches per epoch, counting a last partial batch.
  std::size_t batches_per_epoch() const;
  /// Epochs started so far.
  std::size_t epoch() const { return epoch_; }
  /// Batches handed out in the current epoch.
  std::size_t position() const { return position_; }

  /// Begins the next epoch: a fresh order (if shuffling) from the loader's generator.
  void start_epoch();
  /// Fills the next batch; returns false when the epoch is done.
  bool next();

  /// The current batch (this rank's slice of it), [rows, features]. Valid until the next call to next().
  const ag::Array& batch() const { return in_tail_ ? tail_ : full_; }
  /// Rows of the current global batch (all ranks' slices), and where this rank's slice starts in it.
  std::size_t global_rows() const { return global_count_; }
  std::size_t shard_begin() const { return shard_begin_; }
  /// Dataset rows in the current batch.
  std::span<const std::size_t> indices() const { return {indices_.data(), count_}; }
  /// Their labels; empty if the dataset has none.
  std::span<const std::int32_t> labels() const {
    return {labels_.data(), data_->has_labels() ? count_ : 0};
  }

  /// Everything needed to continue exactly where this loader is: the epoch, the batch
  /// position and the generator state at the start of the epoch, as one line of text.
  std::string state() const;
  /// Restores a state() taken from a loader over the same data, rows and options; the
  /// following batches are then exactly those the saved loader would have produced.
  /// Throws std::invalid_argument on text that is not a loader state.
  void set_state(const std::string& text);

 private:
  void shuffle_order();
  // Row `row` as 0/1 pixels, each 1 with probability byte / 255 (draws from the loader's stream).
  void binarize_row(std::size_t row, float* out);
  void skip_row();
  // Rows [first, end) of a global batch of `rows` rows are this rank's.
  std::size_t shard_first(std::size_t rows) const { return rows * options_.rank / options_.ranks; }
  std::size_t shard_end(std::size_t rows) const { return rows * (options_.rank + 1) / options_.ranks; }

  const Dataset* data_;
  LoaderOptions options_;
  std::vector<std::size_t> rows_;   // the rows an epoch visits, in their given order
  std::vector<std::size_t> order_;  // this epoch's order
  ag::Rng rng_;
  ag::Rng epoch_start_rng_;
  std::size_t epoch_ = 0;
  std::size_t position_ = 0;
  bool started_ = false;

  // Two arrays because resizing an xtensor reallocates: one for full batches, one for
  // the last partial batch, each allocated once.
  ag::Array full_;
  ag::Array tail_;
  bool in_tail_ = false;  // which of the two the current batch is (a flag, not a pointer: copyable)
  std::vector<std::size_t> indices_;
  std::vector<std::int32_t> labels_;
  std::size_t count_ = 0;         // rows of this rank's slice
  std::size_t global_count_ = 0;  // rows of the global batch
  std::size_t shard_begin_ = 0;
};

}  // namespace datasets
