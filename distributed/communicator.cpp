#include "distributed/communicator.hpp"

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <cstdlib>
#include <stdexcept>

#include <fmt/format.h>

#ifdef VAE_WITH_MPI
#include "distributed/mpi_communicator.hpp"
#endif

namespace distributed {

void Communicator::broadcast(std::string& text, int root) {
  std::uint64_t length = text.size();
  broadcast(std::as_writable_bytes(std::span(&length, 1)), root);
  text.resize(length);
  broadcast(std::as_writable_bytes(std::span(text.data(), text.size())), root);
}

void SingleProcess::broadcast(std::span<std::byte>, int root) {
  if (root != 0) throw std::invalid_argument(fmt::format("broadcast: root {} of a single process", root));
}

void SingleProcess::abort(int exit_code) { std::exit(exit_code); }

bool mpi_built() {
#ifdef VAE_WITH_MPI
  return true;
#else
  return false;
#endif
}

namespace {

// The first of the launchers' variables that is set, or `otherwise`.
int launcher_variable(std::initializer_list<const char*> names, int otherwise) {
  for (const char* name : names)
    if (const char* value = std::getenv(name)) return std::atoi(value);
  return otherwise;
}

}  // namespace

int launched_ranks() { return std::max(1, launcher_variable({"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"}, 1)); }

int launched_rank() { return launcher_variable({"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"}, 0); }

std::unique_ptr<Communicator> start() {
  const int ranks = launched_ranks();
  if (ranks <= 1) return std::make_unique<SingleProcess>();
#ifdef VAE_WITH_MPI
  return std::make_unique<MpiCommunicator>();
#else
  throw std::runtime_error(fmt::format(
      "started as one of {} MPI processes, but this build has no MPI (configured with -Dmpi=disabled or "
      "without libopenmpi-dev); each process would train alone. Rebuild with -Dmpi=enabled, or run without mpirun",
      ranks));
#endif
}

}  // namespace distributed
