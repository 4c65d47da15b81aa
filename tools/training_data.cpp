#include "tools/training_data.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "datasets/error.hpp"
#include "datasets/source.hpp"
#include "tools/streams.hpp"

namespace fs = std::filesystem;

namespace tools {
namespace {

datasets::SourceOptions source_options(const DataOptions& o, std::size_t limit) {
  return {.limit = limit == 0 ? datasets::kAllExamples : limit, .label_column = o.label_column,
          .channels = o.channels};
}

void name_labels(const DataOptions& o, datasets::Dataset& d) {
  if (!o.label_names.empty()) d.set_label_names(datasets::read_label_names(o.label_names));
  else if (d.label_names().empty() && o.data == fs::path(kDefaultDataDir)) d.set_label_names(fashion_mnist_names());
}

datasets::Dataset load(const DataOptions& o, const std::string& split, std::size_t limit) {
  std::error_code ec;
  if (!fs::exists(o.data, ec)) {
    const bool is_default = o.data == fs::path(kDefaultDataDir);
    throw datasets::DataError(fmt::format(
        "dataset folder {} does not exist. {}", o.data.string(),
        is_default ? "Install Fashion-MNIST with `apt-get install dataset-fashion-mnist` (or run "
                     "`bash scripts/install-deps.sh`), or point --data at your data"
                   : "Point --data at an IDX folder or file, a .npy or .csv file, or a folder of images"));
  }
  datasets::Dataset d = datasets::load_source(o.data, split, source_options(o, limit));
  if (d.size() == 0)
    throw datasets::DataError(fmt::format("{}: the {} split has no examples", o.data.string(), split));
  name_labels(o, d);
  return d;
}

datasets::Dataset without_classes(const datasets::Dataset& d, const std::vector<std::size_t>& classes,
                                  const std::string& source) {
  if (!d.has_labels())
    throw FlagError(fmt::format("--exclude-classes: {} has no labels", source));
  const std::set<std::int64_t> excluded(classes.begin(), classes.end());
  std::set<std::int64_t> seen;
  std::vector<std::size_t> keep;
  for (std::size_t i = 0; i < d.size(); ++i)
    if (!excluded.count(d.label(i))) keep.push_back(i);
    else seen.insert(d.label(i));
  for (std::int64_t k : excluded)  // a typo would train on every class while claiming to leave one out
    if (!seen.count(k))
      throw FlagError(fmt::format("--exclude-classes: no training example of {} is of class {}", source, k));
  if (keep.empty()) throw FlagError("--exclude-classes: no training examples are left");
  return d.subset(keep);
}

}  // namespace

TrainingData load_training_data(const TrainOptions& o) {
  TrainingData t;
  datasets::Dataset train = load(o.data, "train", o.data.limit);
  const bool has_test = datasets::has_split(o.data.data, "test");
  if (o.val_split > 0 || !has_test) {
    const double fraction = o.val_split > 0 ? o.val_split : 0.1;
    const auto held = static_cast<std::size_t>(std::llround(fraction * static_cast<double>(train.size())));
    if (held == 0 || held >= train.size())
      throw datasets::DataError(fmt::format("{}: {} examples are too few to hold out {} for validation",
                                            o.data.data.string(), train.size(), fraction));
    const datasets::Split split = datasets::split_indices(train.size(), held, stream_seed(o.seed, kValidation));
    t.eval = train.subset(split.validation);
    t.train = train.subset(split.train);
    t.eval_name = "validation";
  } else {
    t.train = std::move(train);
    t.eval = load(o.data, "test", 0);
    t.eval_name = "test";
  }
  if (!o.exclude_classes.empty()) t.train = without_classes(t.train, o.exclude_classes, o.data.data.string());
  if (t.eval.features() != t.train.features())
    throw datasets::DataError(fmt::format("{}: test examples have {} features, training examples {}",
                                          o.data.data.string(), t.eval.features(), t.train.features()));
  // As many values in another shape (4x16 test images for 8x8 training ones) would be
  // evaluated, and drawn, as wrong images; a flat side (rows of values) fits either.
  const std::vector<std::size_t>& train_shape = t.train.example_shape();
  const std::vector<std::size_t>& eval_shape = t.eval.example_shape();
  if (train_shape.size() > 1 && eval_shape.size() > 1 && train_shape != eval_shape)
    throw datasets::DataError(fmt::format("{}: test examples of shape [{}], training examples [{}]",
                                          o.data.data.string(), fmt::join(eval_shape, ","),
                                          fmt::join(train_shape, ",")));
  const std::string remedy = "use --decoder gaussian or gaussian-learned";
  check_bernoulli_range(t.train, o.decoder, o.data.data.string(), "train", remedy);
  check_bernoulli_range(t.eval, o.decoder, o.data.data.string(), t.eval_name, remedy);
  t.fingerprint = fingerprint(t.train);
  return t;
}

// Bernoulli likelihoods need targets in [0, 1]: bytes are scaled there, floats must be.
void check_bernoulli_range(const datasets::Dataset& d, models::Decoder decoder, const std::string& source,
                           const std::string& split, const std::string& remedy) {
  if (decoder != models::Decoder::bernoulli || d.holds_bytes()) return;
  const auto [lo, hi] = std::minmax_element(d.floats().begin(), d.floats().end());
  if (*lo < 0.0F || *hi > 1.0F)
    throw datasets::DataError(fmt::format("{}: the {} split has values in [{}, {}], outside the [0, 1] a Bernoulli "
                                          "decoder models; {}",
                                          source, split, *lo, *hi, remedy));
}

datasets::Dataset load_data_split(const DataOptions& o) {
  if (o.split != "train" && o.split != "test")
    throw FlagError(fmt::format("--split: '{}' is neither train nor test", o.split));
  return load(o, o.split, o.limit);
}

std::string fingerprint(const datasets::Dataset& d) {
  std::uint64_t h = ag::splitmix64(d.size() * 1000003 + d.features());
  auto mix = [&h](const void* data, std::size_t bytes) {
    const auto* p = static_cast<const unsigned char*>(data);
    std::size_t i = 0;
    for (; i + 8 <= bytes; i += 8) {
      std::uint64_t word = 0;
      std::memcpy(&word, p + i, 8);
      h = ag::splitmix64(h ^ word);
    }
    std::uint64_t rest = 0;
    if (bytes > i) std::memcpy(&rest, p + i, bytes - i);  // never memcpy from an empty vector's null
    h = ag::splitmix64(h ^ rest ^ (bytes - i));
  };
  if (d.holds_bytes()) mix(d.bytes().data(), d.bytes().size());
  else mix(d.floats().data(), d.floats().size() * sizeof(float));
  mix(d.labels().data(), d.labels().size() * sizeof(std::int32_t));
  return fmt::format("{:016x}", h);
}

const std::vector<std::string>& fashion_mnist_names() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

}  // namespace tools
