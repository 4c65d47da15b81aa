// A one-line progress bar for an epoch, redrawn in place on a terminal, at most 79 columns:
//   epoch 3/10 [##########..........] 234/469 loss 251.32 48210 img/s ETA 0:12
// When stderr is not a terminal (CI, a log file) it stays silent: the per-epoch lines
// printed by the caller are the record.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace tools {

class ProgressBar {
 public:
  ProgressBar(std::string label, std::size_t total, bool enabled);
  /// Redraws at most ~10 times a second.
  void update(std::size_t done, double running_loss, std::size_t images);
  /// Clears the line.
  void finish();

 private:
  std::string label_;
  std::size_t total_;
  bool enabled_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

/// "1:05", "2:03:04": a duration for people.
std::string clock_text(double seconds);

/// A loss for people: `decimals` decimals ("244.381") below a million, else three significant
/// digits ("3.14e+21"), so that a run going astray (a huge --lr) keeps its lines in 80 columns.
std::string figure_text(double value, int decimals);

/// Whether stderr is an interactive terminal.
bool stderr_is_terminal();

}  // namespace tools
