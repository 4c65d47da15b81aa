// agree_on_failure: the ranks of a run compare how a phase each ran alone went (reading the
// flags, the data and the checkpoint before training), so that an error is reported once.
//
// Every rank calls it once, at the same point, whether its phase failed or not:
//
//   distributed::Agreement a = distributed::agree_on_failure(world, failed ? code : 0, message);
//   if (a.any_failed) { if (a.report) print(message); return a.exit_code; }   // every rank
//
// The usual failure hits every rank alike (a bad flag, data missing on every node): rank 0
// alone reports it. A rank whose failure differs from rank 0's (or rank 0 did not fail)
// reports its own. Every rank then leaves with a non-zero code, and none waits for another.
#pragma once

#include <string>

#include "distributed/communicator.hpp"

namespace distributed {

struct Agreement {
  bool any_failed = false;
  int exit_code = 0;    // this rank's exit code: its own failure's, else the lowest failed rank's
  bool report = false;  // this rank should print its message
};

/// `exit_code` 0: this rank's phase went well (then `message` is not read).
Agreement agree_on_failure(Communicator& comm, int exit_code, const std::string& message);

}  // namespace distributed
