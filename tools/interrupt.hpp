// Ctrl-C during `vae train`: the first SIGINT or SIGTERM asks the training loop to stop after
// the step it is in, so that it can say which checkpoint holds the work and how to continue
// from it; a second one ends the program at once, as it would have anyway. (Every file is
// written atomically, so neither way leaves a half-written one.)
#pragma once

#include <stdexcept>
#include <string>

namespace tools {

/// Thrown by the training loop after an interrupt; the program exits 128 + the signal.
class TrainingInterrupted : public std::runtime_error {
 public:
  TrainingInterrupted(int signal_number, const std::string& message)
      : std::runtime_error(message), signal_number(signal_number) {}
  int signal_number;
};

/// While one exists, the first SIGINT or SIGTERM is noted instead of ending the program.
class InterruptWatch {
 public:
  InterruptWatch();
  ~InterruptWatch();
  InterruptWatch(const InterruptWatch&) = delete;
  InterruptWatch& operator=(const InterruptWatch&) = delete;

  /// The signal noted (SIGINT or SIGTERM), or 0 for none.
  static int received();
  /// "SIGINT" or "SIGTERM".
  static std::string name(int signal_number);
};

}  // namespace tools
