// Times the gradient allreduce alone (no computation between steps): the communication cost
// per training step of the default VAE, our fixed-order sum beside MPI's own MPI_Allreduce.
//   mpirun -np 2 build/bench/bench_allreduce [VALUES (default 652,825: the default VAE's
//   gradients and the loss)] [STEPS (default 200)]
#include <mpi.h>

#include <chrono>
#include <cstdlib>
#include <vector>

#include <fmt/format.h>

#include "distributed/communicator.hpp"
#include "distributed/gradient_allreduce.hpp"

int main(int argc, char** argv) {
  const std::size_t values = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 652825;
  const int steps = argc > 2 ? std::atoi(argv[2]) : 200;
  const auto world = distributed::start();
  ag::Parameter p(ag::Array::from_shape({1, values - 1}));
  p.grad.fill(1.0F);
  distributed::GradientAllreduce allreduce(*world, {&p});
  float loss[1] = {1.0F};
  for (int i = 0; i < 10; ++i) allreduce.run(1.0F, loss);  // warm-up
  MPI_Barrier(MPI_COMM_WORLD);
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) allreduce.run(1.0F, loss);
  const double ours = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / steps;

  std::vector<float> buffer(values, 1.0F);
  MPI_Barrier(MPI_COMM_WORLD);
  start = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i)
    MPI_Allreduce(MPI_IN_PLACE, buffer.data(), static_cast<int>(values), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  const double theirs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / steps;
  if (world->rank() == 0)
    fmt::print("{}: {:.2f} MB per step in {} buckets: GradientAllreduce {:.3f} ms, MPI_Allreduce {:.3f} ms\n",
               world->describe(), 4e-6 * static_cast<double>(values), allreduce.messages(), 1e3 * ours, 1e3 * theirs);
  return 0;
}
