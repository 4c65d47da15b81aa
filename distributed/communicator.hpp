// Communicator: the processes of one data-parallel training run, and the few collective
// operations it needs (a sum across processes, a broadcast from one of them, an abort).
//
// Two implementations: SingleProcess (always built; one rank, every collective a no-op) and
// MpiCommunicator (distributed/mpi_communicator.hpp, built with -Dmpi=enabled or when meson
// finds MPI). start() picks the one this process was launched for:
//
//   std::unique_ptr<distributed::Communicator> world = distributed::start();  // MPI_Init if under mpirun
//   world->sum(values);                 // every rank: the element-wise sum over ranks
//   world->broadcast(bytes, 0);         // every rank: rank 0's bytes
//
// sum() adds the ranks' contributions in rank order 0, 1, ..., size-1 whatever algorithm the
// transport uses, so its result is the same bit for bit on every rank and in every run.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>

namespace distributed {

class Communicator {
 public:
  virtual ~Communicator() = default;
  /// This process's index, 0 to size() - 1. Rank 0 prints and writes files.
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// Every rank's `data` (the same length on every rank) becomes the element-wise sum of
  /// all ranks' `data`, added in rank order.
  virtual void sum(std::span<float> data) = 0;
  virtual void sum(std::span<double> data) = 0;
  /// The same sum (the same bits), started without waiting where the transport can (MPI):
  /// `data` must stay untouched until wait_sums(). Every rank must start the same sums in the
  /// same order. By default the sum is done now, before this returns.
  virtual void start_sum(std::span<float> data) { sum(data); }
  /// Lets the started sums progress (MPI moves large messages only inside its calls): call
  /// it now and then while computing.
  virtual void progress_sums() {}
  /// Waits until every started sum is done.
  virtual void wait_sums() {}
  /// Every rank's `data` (the same length on every rank) becomes rank `root`'s.
  virtual void broadcast(std::span<std::byte> data, int root) = 0;
  /// Ends every rank of the run now with `exit_code` (MPI_Abort): what a rank does when it
  /// fails alone, so that the others do not wait for it forever.
  [[noreturn]] virtual void abort(int exit_code) = 0;

  /// Every rank's `text` becomes rank `root`'s (of any length).
  void broadcast(std::string& text, int root);
  /// What this run is, e.g. "MPI, 4 ranks" or "one process".
  virtual std::string describe() const = 0;
};

/// One process alone: rank 0 of 1.
class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void sum(std::span<float>) override {}
  void sum(std::span<double>) override {}
  using Communicator::broadcast;  // and the string one
  void broadcast(std::span<std::byte>, int root) override;
  [[noreturn]] void abort(int exit_code) override;
  std::string describe() const override { return "one process"; }
};

/// Whether this build can run over MPI (-Dmpi found OpenMPI).
bool mpi_built();

/// How many processes the launcher started (mpirun sets OMPI_COMM_WORLD_SIZE, other MPI
/// launchers PMI_SIZE); 1 when started directly.
int launched_ranks();

/// This process's rank as the launcher set it (OMPI_COMM_WORLD_RANK, PMI_RANK), readable
/// before MPI starts; 0 when started directly.
int launched_rank();

/// The communicator of this process: MPI's world (MPI_Init now, MPI_Finalize when it is
/// destroyed) when launched by mpirun with more than one rank, else a SingleProcess.
/// Throws std::runtime_error when mpirun started several ranks of a build without MPI
/// (each would train alone and write the same files).
std::unique_ptr<Communicator> start();

}  // namespace distributed
