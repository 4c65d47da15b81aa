// The best epoch of a run by its evaluation loss (the test split, or the validation split
// with --val-split), for --keep-best (best.safetensors) and --patience (early stopping).
// Everything it knows is in metrics.csv, so a resumed run rebuilds it from the checkpoint's
// metrics.
//
//   BestEpoch best(/*patience=*/3);
//   if (best.record(epoch, eval_loss)) save_best_model();
//   if (best.patience_ran_out(epoch)) break;
#pragma once

#include <cstddef>
#include <limits>
#include <vector>

#include "tools/run_report.hpp"

namespace tools {

class BestEpoch {
 public:
  /// `patience` 0: never stop early.
  explicit BestEpoch(std::size_t patience) : patience_(patience) {}

  /// Replays the epochs of a resumed run's metrics.
  void restore(const std::vector<EpochFigures>& epochs);
  /// Records an epoch's evaluation loss; true if it is lower than every earlier one (the first
  /// epoch always is; a non-finite loss never is).
  bool record(std::size_t epoch, double loss);
  /// True when `patience` epochs up to `epoch` have passed without a lower loss.
  bool patience_ran_out(std::size_t epoch) const { return patience_ > 0 && epoch >= epoch_ + patience_; }

  std::size_t epoch() const { return epoch_; }  // 0 before the first record
  double loss() const { return loss_; }

 private:
  std::size_t patience_;
  std::size_t epoch_ = 0;
  double loss_ = std::numeric_limits<double>::infinity();
};

}  // namespace tools
