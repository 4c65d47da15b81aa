// MpiCommunicator: a Communicator over MPI_COMM_WORLD (OpenMPI). Built only with MPI.
//
// sum() is a reduce-scatter then an allgather, written so that the order of the additions
// is fixed: the vector is cut into size() chunks; MPI_Alltoall hands rank k the k-th chunk
// of every rank; rank k adds those in rank order 0, 1, ..., size-1; MPI_Allgather hands
// every rank every summed chunk. Each rank sends and receives 2 (N-1)/N of the vector, as a
// ring allreduce does, but the result does not depend on the algorithm MPI picks.
// With two ranks the order cannot matter (a + b == b + a), and sum() is MPI_Allreduce;
// start_sum() is then MPI_Iallreduce. With more ranks start_sum() is the same reduce-scatter
// and allgather, non-blocking (MPI_Ialltoall, MPI_Iallgather), so the sums still overlap the
// backward sweep and give the same bits as sum().
#pragma once

#include <memory>
#include <vector>

#include "distributed/communicator.hpp"

namespace distributed {

class MpiCommunicator final : public Communicator {
 public:
  /// MPI_Init (once per process); the destructor calls MPI_Finalize.
  MpiCommunicator();
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void sum(std::span<float> data) override;
  void sum(std::span<double> data) override;
  void start_sum(std::span<float> data) override;
  void progress_sums() override;
  void wait_sums() override;
  using Communicator::broadcast;  // and the string one
  void broadcast(std::span<std::byte> data, int root) override;
  [[noreturn]] void abort(int exit_code) override;
  std::string describe() const override;

 private:
  template <class T>
  void sum_in_rank_order(std::span<T> data, std::vector<T>& send, std::vector<T>& received);

  struct Pending;  // the requests of started sums (MPI_Request lives in mpi.h, kept out of here)
  bool gather_next(bool wait);

  int rank_ = 0;
  int size_ = 1;
  // Scratch for sum(), grown to the largest vector seen and then reused (no allocation per step).
  std::vector<float> send_f_, received_f_;
  std::vector<double> send_d_, received_d_;
  std::unique_ptr<Pending> pending_;
};

}  // namespace distributed
