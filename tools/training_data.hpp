// The examples a training run learns from and the ones it reports on, as the options say:
// --data (any source datasets::load_source reads), --limit, --val-split (a seeded hold-out;
// 0.1 automatically when the data has no test split), --exclude-classes.
#pragma once

#include <string>

#include "datasets/dataset.hpp"
#include "tools/options.hpp"

namespace tools {

struct TrainingData {
  datasets::Dataset train;
  datasets::Dataset eval;  // the test split, or the validation rows held out of train
  std::string eval_name;   // "test" or "validation": the figures say which
  std::string fingerprint;  // of the training examples: a resume on other data is detected
};

/// Throws datasets::DataError naming the data, or FlagError for an option the data cannot
/// satisfy (e.g. --exclude-classes on unlabelled data).
TrainingData load_training_data(const TrainOptions& o);

/// Throws datasets::DataError naming `source` and `split`, ending with `remedy`, if a
/// Bernoulli decoder would read values outside [0, 1] (no probabilities: its loss would mean
/// nothing).
void check_bernoulli_range(const datasets::Dataset& d, models::Decoder decoder, const std::string& source,
                           const std::string& split, const std::string& remedy);

/// A subcommand's split (--split train|test) of --data, with --limit.
datasets::Dataset load_data_split(const DataOptions& o);

/// 16 hex digits summarising every value and label of `d` (not cryptographic: it tells
/// datasets of the same shape apart).
std::string fingerprint(const datasets::Dataset& d);

/// The Fashion-MNIST class names.
const std::vector<std::string>& fashion_mnist_names();

}  // namespace tools
