// A reader of `vae train`'s standard output that goes away (`vae train | head -3`, a `tee`
// that was killed) must not end the training: by default the next write would raise SIGPIPE
// and kill the program after the epoch in progress, silently. (Every file is written
// atomically, so nothing would be half-written, but the run would be lost.)
#pragma once

#include <string>

namespace tools {

/// While one exists, SIGPIPE is ignored: writing to a closed pipe fails instead of killing the
/// program, and `flush_standard_output` handles the failure.
class BrokenPipeWatch {
 public:
  BrokenPipeWatch();
  ~BrokenPipeWatch();
  BrokenPipeWatch(const BrokenPipeWatch&) = delete;
  BrokenPipeWatch& operator=(const BrokenPipeWatch&) = delete;
};

/// Flushes the standard output. If that fails (its reader went away), says once on the standard
/// error that training goes on and where its figures are (`where`), and sends the rest of the
/// standard output to /dev/null, so that later prints neither fail nor throw.
void flush_standard_output(const std::string& where);

}  // namespace tools
