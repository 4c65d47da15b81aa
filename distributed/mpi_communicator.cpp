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

// out[i] = the sum over r = 0, 1, ..., ranks-1 of received[r * chunk + i], added in that order.
template <class T>
void add_in_rank_order(const std::vector<T>& received, std::size_t chunk, std::size_t ranks, T* out) {
  for (std::size_t i = 0; i < chunk; ++i) out[i] = received[i];
  for (std::size_t r = 1; r < ranks; ++r)
    for (std::size_t i = 0; i < chunk; ++i) out[i] += received[r * chunk + i];
}

}  // namespace

// Started sums. With two ranks each is one MPI_Iallreduce. With more, each is the two halves
// of sum_in_rank_order, non-blocking: an MPI_Ialltoall, then (once it is done, this rank adds
// its chunk) an MPI_Iallgather. Collectives must start in the same order on every rank of a
// communicator, and a rank starts an allgather whenever it sees its alltoall done, which is at
// different moments on different ranks: so the alltoalls and the allgathers each have a
// communicator of their own (duplicates of the world), and the allgathers start strictly in
// the order the sums were started.
struct MpiCommunicator::Pending {
  MPI_Comm scatter = MPI_COMM_NULL, gather = MPI_COMM_NULL;
  struct Sum {
    std::span<float> data;
    std::size_t chunk = 0;
    std::vector<float> send, received;  // kept from step to step, so sized once
    MPI_Request request = MPI_REQUEST_NULL;
  };
  std::vector<MPI_Request> requests;  // two ranks: cleared after each wait; its capacity is kept
  std::vector<Sum> sums;              // more ranks: sums[0, started) are this step's
  std::size_t started = 0, gathering = 0;  // sums[0, gathering) have their allgather started
};

MpiCommunicator::MpiCommunicator() : pending_(std::make_unique<Pending>()) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) MPI_Init(nullptr, nullptr);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  MPI_Comm_dup(MPI_COMM_WORLD, &pending_->scatter);
  MPI_Comm_dup(MPI_COMM_WORLD, &pending_->gather);
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  MPI_Comm_free(&pending_->scatter);
  MPI_Comm_free(&pending_->gather);
  MPI_Finalize();
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
  add_in_rank_order(received, chunk, ranks, mine);
  MPI_Allgather(mine, count, mpi_type<T>(), received.data(), count, mpi_type<T>(), MPI_COMM_WORLD);
  std::copy(received.begin(), received.begin() + static_cast<std::ptrdiff_t>(data.size()), data.begin());
}

void MpiCommunicator::sum(std::span<float> data) { sum_in_rank_order(data, send_f_, received_f_); }
void MpiCommunicator::sum(std::span<double> data) { sum_in_rank_order(data, send_d_, received_d_); }

void MpiCommunicator::start_sum(std::span<float> data) {
  if (size_ == 2) {
    MPI_Request& request = pending_->requests.emplace_back();
    MPI_Iallreduce(MPI_IN_PLACE, data.data(), checked_count(data.size(), "start_sum"), MPI_FLOAT, MPI_SUM,
                   MPI_COMM_WORLD, &request);
    return;
  }
  Pending& p = *pending_;
  if (p.started == p.sums.size()) p.sums.emplace_back();
  Pending::Sum& s = p.sums[p.started++];
  const std::size_t ranks = static_cast<std::size_t>(size_);
  s.data = data;
  s.chunk = (data.size() + ranks - 1) / ranks;
  if (s.send.size() < s.chunk * ranks) {
    s.send.resize(s.chunk * ranks);
    s.received.resize(s.chunk * ranks);
  }
  std::copy(data.begin(), data.end(), s.send.begin());
  std::fill(s.send.begin() + static_cast<std::ptrdiff_t>(data.size()), s.send.end(), 0.0F);
  const int count = checked_count(s.chunk, "start_sum");
  // received[r * chunk + i]: element i of this rank's chunk, from rank r.
  MPI_Ialltoall(s.send.data(), count, MPI_FLOAT, s.received.data(), count, MPI_FLOAT, p.scatter, &s.request);
}

// The next sum whose alltoall is done: its chunk added in rank order, its allgather started.
// With `wait`, waits for that alltoall; else stops at the first one not yet done.
bool MpiCommunicator::gather_next(bool wait) {
  Pending& p = *pending_;
  if (p.gathering == p.started) return false;
  Pending::Sum& s = p.sums[p.gathering];
  int done = 1;
  if (wait) MPI_Wait(&s.request, MPI_STATUS_IGNORE);
  else MPI_Test(&s.request, &done, MPI_STATUS_IGNORE);
  if (!done) return false;
  float* mine = s.send.data();
  add_in_rank_order(s.received, s.chunk, static_cast<std::size_t>(size_), mine);
  const int count = checked_count(s.chunk, "start_sum");
  MPI_Iallgather(mine, count, MPI_FLOAT, s.received.data(), count, MPI_FLOAT, p.gather, &s.request);
  ++p.gathering;
  return true;
}

void MpiCommunicator::progress_sums() {
  Pending& p = *pending_;
  if (!p.requests.empty()) {
    int done = 0;
    MPI_Testall(static_cast<int>(p.requests.size()), p.requests.data(), &done, MPI_STATUSES_IGNORE);
  }
  while (gather_next(/*wait=*/false)) {
  }
  for (std::size_t k = 0; k < p.gathering; ++k) {  // lets the started allgathers move
    int done = 0;
    MPI_Test(&p.sums[k].request, &done, MPI_STATUS_IGNORE);
  }
}

void MpiCommunicator::wait_sums() {
  Pending& p = *pending_;
  MPI_Waitall(static_cast<int>(p.requests.size()), p.requests.data(), MPI_STATUSES_IGNORE);
  p.requests.clear();
  while (gather_next(/*wait=*/true)) {
  }
  for (std::size_t k = 0; k < p.started; ++k) {
    Pending::Sum& s = p.sums[k];
    MPI_Wait(&s.request, MPI_STATUS_IGNORE);
    std::copy(s.received.begin(), s.received.begin() + static_cast<std::ptrdiff_t>(s.data.size()), s.data.begin());
  }
  p.started = p.gathering = 0;
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
