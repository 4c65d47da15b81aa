#include "datasets/dataset.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <system_error>

#include <fmt/format.h>

#include "autograd/random.hpp"
#include "datasets/error.hpp"
#include "datasets/pixel_scale.hpp"

namespace fs = std::filesystem;

namespace datasets {

Dataset::Dataset(std::vector<std::uint8_t> pixels, std::size_t features,
                 std::optional<std::vector<std::int32_t>> labels)
    : features_(features), example_shape_{features}, holds_bytes_(true),
      has_labels_(labels.has_value()), bytes_(std::move(pixels)) {
  if (features == 0 && !bytes_.empty())
    throw std::invalid_argument("Dataset: 0 features but non-empty data");
  if (features != 0 && bytes_.size() % features != 0)
    throw std::invalid_argument(fmt::format("Dataset: {} bytes is not a whole number of {}-feature rows",
                                            bytes_.size(), features));
  size_ = features == 0 ? 0 : bytes_.size() / features;
  if (labels) labels_ = std::move(*labels);
  check_labels();
}

Dataset::Dataset(std::vector<float> values, std::size_t features,
                 std::optional<std::vector<std::int32_t>> labels)
    : features_(features), example_shape_{features}, holds_bytes_(false),
      has_labels_(labels.has_value()), floats_(std::move(values)) {
  if (features == 0 && !floats_.empty())
    throw std::invalid_argument("Dataset: 0 features but non-empty data");
  if (features != 0 && floats_.size() % features != 0)
    throw std::invalid_argument(fmt::format("Dataset: {} floats is not a whole number of {}-feature rows",
                                            floats_.size(), features));
  size_ = features == 0 ? 0 : floats_.size() / features;
  if (labels) labels_ = std::move(*labels);
  check_labels();
}

void Dataset::check_labels() const {
  if (has_labels_ && labels_.size() != size_)
    throw std::invalid_argument(fmt::format("Dataset: {} labels for {} examples", labels_.size(), size_));
}

void Dataset::set_example_shape(std::vector<std::size_t> shape) {
  std::size_t product = std::accumulate(shape.begin(), shape.end(), std::size_t{1}, std::multiplies<>());
  if (shape.empty() || product != features_)
    throw std::invalid_argument(fmt::format("Dataset: example shape {} does not hold {} features",
                                            dims_text(shape), features_));
  example_shape_ = std::move(shape);
}

namespace {

// [C, H, W] -> [H, W, C] for each of the n rows of c * hw values.
template <class T>
void interleave_rows(std::vector<T>& values, std::size_t n, std::size_t c, std::size_t hw) {
  std::vector<T> row(c * hw);
  for (std::size_t i = 0; i < n; ++i) {
    T* x = values.data() + i * c * hw;
    for (std::size_t k = 0; k < c; ++k)
      for (std::size_t p = 0; p < hw; ++p) row[p * c + k] = x[k * hw + p];
    std::copy(row.begin(), row.end(), x);
  }
}

bool is_channel_count(std::size_t n) { return n == 1 || n == 3; }

}  // namespace

bool Dataset::interleave_channels() {
  const std::vector<std::size_t>& s = example_shape_;
  if (s.size() != 3 || !is_channel_count(s[0]) || is_channel_count(s[2])) return false;
  const std::size_t c = s[0], h = s[1], w = s[2];
  if (c == 3) {
    if (holds_bytes_) interleave_rows(bytes_, size_, c, h * w);
    else interleave_rows(floats_, size_, c, h * w);
  }
  example_shape_ = c == 1 ? std::vector<std::size_t>{h, w} : std::vector<std::size_t>{h, w, c};
  channels_first_ = true;
  return true;
}

Dataset Dataset::from_idx(IdxArray examples, std::optional<IdxArray> labels, const std::string& source) {
  const std::vector<std::size_t> dims = examples.dims();
  const std::size_t n = dims.at(0);
  // Rank 1: each example is a single number.
  std::vector<std::size_t> shape = dims.size() > 1 ? std::vector<std::size_t>(dims.begin() + 1, dims.end())
                                                   : std::vector<std::size_t>{1};
  const std::size_t features = std::accumulate(shape.begin(), shape.end(), std::size_t{1}, std::multiplies<>());

  std::optional<std::vector<std::int32_t>> label_values;
  if (labels) {
    if (labels->dims().size() != 1)
      throw DataError(fmt::format("{}: labels must have rank 1, found dims {}", source,
                                  dims_text(labels->dims())));
    if (labels->dims()[0] != n)
      throw DataError(fmt::format("{}: {} examples but {} labels", source, n, labels->dims()[0]));
    if (labels->type() == IdxType::F32 || labels->type() == IdxType::F64)
      throw DataError(fmt::format("{}: labels must be integers, found {}", source, type_name(labels->type())));
    std::vector<std::int64_t> wide = labels->to_integers();
    for (std::size_t i = 0; i < wide.size(); ++i)  // as .npy labels: class numbers, from 0
      if (wide[i] < 0)
        throw DataError(fmt::format("{}: label {} (entry {}) is out of range (0 to 2^31-1)", source, wide[i], i));
    label_values.emplace(wide.begin(), wide.end());  // every IDX integer type fits in int32
  }

  if (features == 0 && n > 0)
    throw DataError(fmt::format("{}: examples of dims {} have no features", source, dims_text(dims)));

  // u8 and f32 storage is taken over as it is; only other types are converted.
  Dataset d = examples.type() == IdxType::U8   ? Dataset(examples.take<std::uint8_t>(), features, std::move(label_values))
              : examples.type() == IdxType::F32 ? Dataset(examples.take<float>(), features, std::move(label_values))
                                                : Dataset(examples.to_floats(), features, std::move(label_values));
  // A NaN would only surface later as a diverging loss, blamed on the learning rate.
  for (std::size_t i = 0; i < d.floats_.size(); ++i)
    if (!std::isfinite(d.floats_[i]))
      throw DataError(fmt::format("{}: example {} holds a non-finite value ({})", source, i / features, d.floats_[i]));
  d.example_shape_ = std::move(shape);
  return d;
}

void Dataset::row_to_floats(std::size_t i, float* out) const {
  if (holds_bytes_) {
    convert_pixels(bytes_.data() + i * features_, out, features_);
  } else {
    std::copy_n(floats_.data() + i * features_, features_, out);
  }
}

void Dataset::prefetch_row(std::size_t i) const {
  constexpr std::size_t kLine = 64;
  const auto* row = holds_bytes_ ? reinterpret_cast<const char*>(bytes_.data() + i * features_)
                                 : reinterpret_cast<const char*>(floats_.data() + i * features_);
  const std::size_t bytes = features_ * (holds_bytes_ ? sizeof(std::uint8_t) : sizeof(float));
  for (std::size_t b = 0; b < bytes; b += kLine) __builtin_prefetch(row + b, 0, 3);
}

Dataset Dataset::subset(std::span<const std::size_t> rows) const {
  Dataset d;
  d.size_ = rows.size();
  d.features_ = features_;
  d.example_shape_ = example_shape_;
  d.channels_first_ = channels_first_;
  d.label_names_ = label_names_;
  d.holds_bytes_ = holds_bytes_;
  d.has_labels_ = has_labels_;
  if (holds_bytes_) d.bytes_.resize(rows.size() * features_);
  else d.floats_.resize(rows.size() * features_);
  if (has_labels_) d.labels_.resize(rows.size());
  for (std::size_t k = 0; k < rows.size(); ++k) {
    std::size_t i = rows[k];
    if (i >= size_)
      throw std::out_of_range(fmt::format("Dataset::subset: row {} of a {}-example set", i, size_));
    if (holds_bytes_) std::copy_n(bytes_.data() + i * features_, features_, d.bytes_.data() + k * features_);
    else std::copy_n(floats_.data() + i * features_, features_, d.floats_.data() + k * features_);
    if (has_labels_) d.labels_[k] = labels_[i];
  }
  return d;
}

bool Dataset::number_classes_as(const std::vector<std::string>& names) {
  if (!has_labels_ || label_names_.empty() || names.empty() || label_names_ == names) return false;
  // A label past the names, or a name given twice, would leave two classes on one number.
  for (const std::int32_t label : labels_)
    if (label < 0 || static_cast<std::size_t>(label) >= label_names_.size()) return false;
  for (std::size_t k = 0; k < names.size(); ++k)
    if (std::find(names.begin() + static_cast<std::ptrdiff_t>(k) + 1, names.end(), names[k]) != names.end())
      return false;
  std::vector<std::int32_t> renumbered(label_names_.size());
  for (std::size_t k = 0; k < label_names_.size(); ++k) {
    const auto at = std::find(names.begin(), names.end(), label_names_[k]);
    if (at == names.end()) return false;
    renumbered[k] = static_cast<std::int32_t>(at - names.begin());
  }
  bool changed = false;
  for (std::int32_t& label : labels_) {
    changed = changed || renumbered[static_cast<std::size_t>(label)] != label;
    label = renumbered[static_cast<std::size_t>(label)];
  }
  label_names_ = names;
  return changed;
}

void Dataset::truncate(std::size_t n) {
  if (n >= size_) return;
  size_ = n;
  if (holds_bytes_) {
    bytes_.resize(n * features_);
    bytes_.shrink_to_fit();
  } else {
    floats_.resize(n * features_);
    floats_.shrink_to_fit();
  }
  if (has_labels_) {
    labels_.resize(n);
    labels_.shrink_to_fit();
  }
}

std::size_t Dataset::bytes_held() const {
  return bytes_.size() + floats_.size() * sizeof(float) + labels_.size() * sizeof(std::int32_t);
}

// ----- finding the files of a split -------------------------------------------------------

namespace {

// The standard names first (plain before .gz: it reads faster), then the one file that
// starts with `{split}-{kind}-idx`. Returns nothing if there is none.
std::optional<fs::path> find_split_file(const fs::path& dir, const std::string& split,
                                        const std::string& kind, const std::string& standard) {
  for (const std::string& name : {standard, standard + ".gz"}) {
    std::error_code ec;
    if (fs::is_regular_file(dir / name, ec)) return dir / name;
  }
  const std::string prefix = split + "-" + kind + "-idx";
  std::vector<fs::path> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.starts_with(prefix) && entry.is_regular_file()) found.push_back(entry.path());
  }
  if (found.empty()) return std::nullopt;
  std::sort(found.begin(), found.end());
  // "x" and "x.gz" are the same data; anything else is ambiguous.
  if (found.size() == 2 && found[1].string() == found[0].string() + ".gz") return found[0];
  if (found.size() > 1) {
    std::string names;
    for (const auto& p : found) names += (names.empty() ? "" : ", ") + p.filename().string();
    throw DataError(fmt::format("{}: several {} files for split \"{}\": {}; keep one", dir.string(),
                                kind, split, names));
  }
  return found[0];
}

}  // namespace

Dataset load_idx_dataset(const fs::path& dir, const std::string& split, std::size_t limit) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw DataError(fmt::format("{}: data folder not found", dir.string()));
  std::optional<fs::path> images = find_split_file(dir, split, "images", split + "-images-idx3-ubyte");
  if (!images)
    throw DataError(fmt::format("{}: no examples file for split \"{}\": expected {}-images-idx3-ubyte[.gz] "
                                "or another {}-images-idx* file", dir.string(), split, split, split));
  std::optional<fs::path> labels_path = find_split_file(dir, split, "labels", split + "-labels-idx1-ubyte");

  IdxArray examples = read_idx(*images);
  std::optional<IdxArray> labels;
  std::string source = images->string();
  if (labels_path) {
    labels = read_idx(*labels_path);
    source += " and " + labels_path->string();
  }
  Dataset d = Dataset::from_idx(std::move(examples), std::move(labels), source);
  d.truncate(limit);
  return d;
}

Split split_indices(std::size_t n, std::size_t validation_count, std::uint64_t seed) {
  if (validation_count > n)
    throw std::invalid_argument(fmt::format("split_indices: {} validation rows out of {}", validation_count, n));
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  ag::Rng rng(seed);
  for (std::size_t i = n; i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);  // Fisher-Yates
  Split s;
  s.validation.assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(validation_count));
  s.train.assign(order.begin() + static_cast<std::ptrdiff_t>(validation_count), order.end());
  std::sort(s.validation.begin(), s.validation.end());
  std::sort(s.train.begin(), s.train.end());
  return s;
}

}  // namespace datasets
