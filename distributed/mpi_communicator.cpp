#include "distributed/mpi_communicator.hpp"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <stdexcept>
#include <type_traits>

#include <fmt/format.h>
#include <mpi.h>

namespace distributed {
namespace {

template <class T>
MPI_Datatype mpi_type() {
  if constexpr (std::is_same_v<T, float>) return MPI_FLOAT;
  else return MPI_DOUBLE;
}

int checked_count(std::size_t n, const char* what) {
  if (n > static_cast<std::size_t>(INT_MAX))
    throw std::length_error(fmt::format("{}: {} elements in one message (at most {})", what, n, INT_MAX));
  return static_cast<int>(n);
}

}  // namespace

struct MpiCommunicator::Pending {
  std::vector<MPI_Request> requests;  // cleared after each wait; its capacity is kept
};

MpiCommunicator::MpiCommunicator() : pending_(std::make_unique<Pending>()) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) MPI_Init(nullptr, nullptr);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

template <class T>
void MpiCommunicator::sum_in_rank_order(std::span<T> data, std::vector<T>& send, std::vector<T>& received) {
  if (size_ == 2) {
    // One addition per element, and a + b == b + a exactly: MPI's own allreduce (about twice
    // as fast here, bench/bench_allreduce) already gives the same bits on both ranks.
    MPI_Allreduce(MPI_IN_PLACE, data.data(), checked_count(data.size(), "sum"), mpi_type<T>(), MPI_SUM,
                  MPI_COMM_WORLD);
    return;
  }
  const std::size_t ranks = static_cast<std::size_t>(size_);
  const std::size_t chunk = (data.size() + ranks - 1) / ranks;
  const std::size_t padded = chunk * ranks;
  if (send.size() < padded) {
    send.resize(padded);
    received.resize(padded);
  }
  std::copy(data.begin(), data.end(), send.begin());
  std::fill(send.begin() + static_cast<std::ptrdiff_t>(data.size()), send.begin() + static_cast<std::ptrdiff_t>(padded),
            T{0});
  const int count = checked_count(chunk, "sum");
  // received[r * chunk + i]: element i of this rank's chunk, from rank r.
  MPI_Alltoall(send.data(), count, mpi_type<T>(), received.data(), count, mpi_type<T>(), MPI_COMM_WORLD);
  T* mine = send.data();  // the summed chunk, before the allgather spreads it
  for (std::size_t i = 0; i < chunk; ++i) mine[i] = received[i];
  for (std::size_t r = 1; r < ranks; ++r)
    for (std::size_t i = 0; i < chunk; ++i) mine[i] += received[r * chunk + i];
  MPI_Allgather(mine, count, mpi_type<T>(), received.data(), count, mpi_type<T>(), MPI_COMM_WORLD);
  std::copy(received.begin(), received.begin() + static_cast<std::ptrdiff_t>(data.size()), data.begin());
}

void MpiCommunicator::sum(std::span<float> data) { sum_in_rank_order(data, send_f_, received_f_); }
void MpiCommunicator::sum(std::span<double> data) { sum_in_rank_order(data, send_d_, received_d_); }

void MpiCommunicator::start_sum(std::span<float> data) {
  if (size_ != 2) return sum(data);  // see sum_in_rank_order: MPI has no non-blocking sum in rank order
  MPI_Request& request = pending_->requests.emplace_back();
  MPI_Iallreduce(MPI_IN_PLACE, data.data(), checked_count(data.size(), "start_sum"), MPI_FLOAT, MPI_SUM,
                 MPI_COMM_WORLD, &request);
}

void MpiCommunicator::progress_sums() {
  if (pending_->requests.empty()) return;
  int done = 0;
  MPI_Testall(static_cast<int>(pending_->requests.size()), pending_->requests.data(), &done, MPI_STATUSES_IGNORE);
}

void MpiCommunicator::wait_sums() {
  MPI_Waitall(static_cast<int>(pending_->requests.size()), pending_->requests.data(), MPI_STATUSES_IGNORE);
  pending_->requests.clear();
}

void MpiCommunicator::broadcast(std::span<std::byte> data, int root) {
  MPI_Bcast(data.data(), checked_count(data.size(), "broadcast"), MPI_BYTE, root, MPI_COMM_WORLD);
}

void MpiCommunicator::abort(int exit_code) {
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);  // MPI_Abort does not return; this tells the compiler so
}

std::string MpiCommunicator::describe() const {
  char version[MPI_MAX_LIBRARY_VERSION_STRING];
  int length = 0;
  MPI_Get_library_version(version, &length);
  std::string library(version, static_cast<std::size_t>(length));
  library = library.substr(0, library.find_first_of(",\n"));
  return fmt::format("MPI ({}), {} ranks", library, size_);
}

}  // namespace distributed
