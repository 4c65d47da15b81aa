#include "distributed/agree_on_failure.hpp"

#include <vector>

namespace distributed {

Agreement agree_on_failure(Communicator& comm, int exit_code, const std::string& message) {
  // Every rank's code, gathered by a sum: slot r holds rank r's code, the others 0.
  std::vector<double> codes(static_cast<std::size_t>(comm.size()), 0.0);
  codes[static_cast<std::size_t>(comm.rank())] = exit_code;
  comm.sum(std::span<double>(codes));
  Agreement a;
  for (double code : codes)
    if (code != 0 && !a.any_failed) {
      a.any_failed = true;
      a.exit_code = static_cast<int>(code);
    }
  if (!a.any_failed) return a;
  std::string rank_0_message = comm.rank() == 0 ? message : std::string();
  if (codes[0] != 0) comm.broadcast(rank_0_message, 0);
  if (exit_code != 0) {
    a.exit_code = exit_code;
    a.report = comm.rank() == 0 || codes[0] == 0 || message != rank_0_message;
  }
  return a;
}

}  // namespace distributed
