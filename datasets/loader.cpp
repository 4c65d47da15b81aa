#include "datasets/loader.hpp"

#include <algorithm>
#include <numeric>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

#include "autograd/kernels/parallel.hpp"
#include "datasets/pixel_scale.hpp"

namespace datasets {

namespace {

std::vector<std::size_t> all_rows(std::size_t n) {
  std::vector<std::size_t> rows(n);
  std::iota(rows.begin(), rows.end(), std::size_t{0});
  return rows;
}

constexpr const char* kStateTag = "datasets::Loader/1";

}  // namespace

Loader::Loader(const Dataset& data, LoaderOptions options)
    : Loader(data, all_rows(data.size()), options) {}

Loader::Loader(const Dataset& data, std::vector<std::size_t> rows, LoaderOptions options)
    : data_(&data), options_(options), rows_(std::move(rows)), order_(rows_),
      rng_(options.seed), epoch_start_rng_(options.seed) {
  if (options_.batch_size == 0) throw std::invalid_argument("Loader: batch_size must be at least 1");
  if (options_.ranks == 0 || options_.rank >= options_.ranks)
    throw std::invalid_argument(fmt::format("Loader: rank {} of {} ranks", options_.rank, options_.ranks));
  if (options_.binarize && !data.holds_bytes())
    throw std::invalid_argument("Loader: binarize needs byte (pixel) data; this dataset holds floats");
  for (std::size_t r : rows_)
    if (r >= data.size())
      throw std::out_of_range(fmt::format("Loader: row {} of a {}-example dataset", r, data.size()));
  const std::size_t d = data.features();
  const std::size_t bs = options_.batch_size;
  const std::size_t tail = rows_.size() % bs;
  if (rows_.size() >= bs) full_ = ag::Array::from_shape({shard_end(bs) - shard_first(bs), d});
  if (tail != 0) tail_ = ag::Array::from_shape({shard_end(tail) - shard_first(tail), d});
  const std::size_t most = std::max(rows_.size() >= bs ? shard_end(bs) - shard_first(bs) : 0,
                                    shard_end(tail) - shard_first(tail));
  indices_.resize(most);
  labels_.resize(most);
}

std::size_t Loader::batches_per_epoch() const {
  return (rows_.size() + options_.batch_size - 1) / options_.batch_size;
}

void Loader::shuffle_order() {
  std::copy(rows_.begin(), rows_.end(), order_.begin());
  if (!options_.shuffle) return;
  for (std::size_t i = order_.size(); i > 1; --i) std::swap(order_[i - 1], order_[rng_.below(i)]);
}

void Loader::start_epoch() {
  epoch_start_rng_ = rng_;
  shuffle_order();
  position_ = 0;
  count_ = global_count_ = shard_begin_ = 0;
  ++epoch_;
  started_ = true;
}

// Dynamic binarization: one 64-bit draw covers two pixels. A pixel p is 1 when
// r * 255 < p * 2^32 for r uniform in [0, 2^32), i.e. with probability p / 255 to within
// 2^-32, and exactly 0 for p = 0 and exactly 1 for p = 255.
void Loader::binarize_row(std::size_t row, float* out) {
  const std::size_t d = data_->features();
  const std::uint8_t* p = data_->bytes().data() + row * d;
  for (std::size_t j = 0; j < d; j += 2) {
    std::uint64_t r = rng_.next_u64();
    out[j] = (r & 0xFFFFFFFFU) * 255U < (std::uint64_t{p[j]} << 32) ? 1.0F : 0.0F;
    if (j + 1 < d) out[j + 1] = (r >> 32) * 255U < (std::uint64_t{p[j + 1]} << 32) ? 1.0F : 0.0F;
  }
}

// The draws binarize_row would make, without writing: replays a resumed epoch.
void Loader::skip_row() {
  if (!options_.binarize) return;
  for (std::size_t j = 0; j < data_->features(); j += 2) rng_.next_u64();
}

bool Loader::next() {
  if (!started_) throw std::logic_error("Loader::next: call start_epoch() first");
  if (position_ >= batches_per_epoch()) return false;
  const std::size_t bs = options_.batch_size;
  const std::size_t begin = position_ * bs;
  global_count_ = std::min(bs, rows_.size() - begin);
  shard_begin_ = shard_first(global_count_);
  const std::size_t shard_stop = shard_end(global_count_);
  count_ = shard_stop - shard_begin_;
  ag::Array& out = global_count_ == bs ? full_ : tail_;
  const std::size_t d = data_->features();
  const bool labelled = data_->has_labels();
  for (std::size_t k = 0; k < global_count_; ++k) {
    std::size_t row = order_[begin + k];
    if (k < shard_begin_ || k >= shard_stop) {
      skip_row();  // another rank's row: only its binarization draws
      continue;
    }
    const std::size_t i = k - shard_begin_;
    indices_[i] = row;
    if (labelled) labels_[i] = data_->labels()[row];
    if (options_.binarize) binarize_row(row, out.data() + i * d);  // draws in row order
  }
  if (!options_.binarize) {
    // Rows gathered from a dataset larger than the cache wait mostly on memory: both cores'
    // loads in flight at once halve that wait (a [128, 784] batch took about 80 us on one).
    constexpr std::size_t kMinFloatsPerThread = 16384;
    constexpr std::size_t kRowsAhead = 4;  // rows asked for ahead of the one being converted
    ag::parallel_for(count_, std::max<std::size_t>(1, kMinFloatsPerThread / std::max<std::size_t>(d, 1)),
                     [&](std::size_t begin, std::size_t end) {
                       for (std::size_t i = begin; i < std::min(end, begin + kRowsAhead); ++i)
                         data_->prefetch_row(indices_[i]);
                       for (std::size_t i = begin; i < end; ++i) {
                         if (i + kRowsAhead < end) data_->prefetch_row(indices_[i + kRowsAhead]);
                         data_->row_to_floats(indices_[i], out.data() + i * d);
                       }
                     });
  }
  in_tail_ = &out == &tail_;
  ++position_;
  return true;
}

std::string Loader::state() const {
  return fmt::format("{} epoch {} position {} started {} rng {}", kStateTag, epoch_, position_,
                     started_ ? 1 : 0, epoch_start_rng_.state());
}

void Loader::set_state(const std::string& text) {
  std::istringstream in(text);
  std::string tag, w_epoch, w_position, w_started, w_rng;
  std::size_t epoch = 0, position = 0;
  int started = 0;
  in >> tag >> w_epoch >> epoch >> w_position >> position >> w_started >> started >> w_rng;
  if (in.fail() || tag != kStateTag || w_epoch != "epoch" || w_position != "position" ||
      w_started != "started" || w_rng != "rng" || position > batches_per_epoch())
    throw std::invalid_argument("Loader::set_state: not a loader state for this data");
  std::string rng_text;
  std::getline(in, rng_text);
  ag::Rng restored;
  restored.set_state(rng_text);

  // Redo the epoch from its start: the same shuffle, then the draws of the batches
  // already handed out, so the generator stands exactly where the saved one stood.
  rng_ = restored;
  epoch_ = epoch;
  started_ = started != 0;
  position_ = 0;
  count_ = global_count_ = shard_begin_ = 0;
  if (!started_) return;
  epoch_start_rng_ = rng_;
  shuffle_order();
  std::size_t skipped = std::min(rows_.size(), position * options_.batch_size);
  for (std::size_t k = 0; k < skipped; ++k) skip_row();
  position_ = position;
}

}  // namespace datasets
