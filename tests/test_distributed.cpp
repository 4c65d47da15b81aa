// distributed/ in one process: the single-process communicator, the gradient allreduce's
// packing and weighting, and the broadcasts as no-ops that keep everything. The same pieces
// across processes are in test_distributed_mpi.cpp (run under mpirun).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "autograd/autograd.hpp"
#include "distributed/broadcast.hpp"
#include "distributed/communicator.hpp"
#include "distributed/gradient_allreduce.hpp"
#include "nn/linear.hpp"
#include "optim/adam.hpp"

namespace {

ag::Parameter parameter(std::vector<std::size_t> shape, float first) {
  ag::Parameter p(ag::Array::from_shape(shape));
  float v = first;
  for (float& g : p.grad) g = (v += 0.25F);
  return p;
}

}  // namespace

TEST_CASE("one process is rank 0 of 1 and its collectives change nothing") {
  distributed::SingleProcess one;
  CHECK(one.rank() == 0);
  CHECK(one.size() == 1);
  std::vector<float> values = {1.5F, -2.0F};
  one.sum(values);
  CHECK(values == std::vector<float>{1.5F, -2.0F});
  std::string text = "kept";
  one.broadcast(text, 0);
  CHECK(text == "kept");
  CHECK_THROWS_AS(one.broadcast(text, 1), std::invalid_argument);
}

TEST_CASE("started without mpirun, the world is one process") {
  if (distributed::launched_ranks() != 1) return;  // this test program is not run under mpirun
  CHECK(distributed::start()->size() == 1);
}

TEST_CASE("a build without MPI started by mpirun with several ranks refuses to train N times alone") {
  if (distributed::mpi_built() || distributed::launched_ranks() != 1) return;  // -Dmpi=disabled builds only
  ::setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
  CHECK(distributed::launched_ranks() == 2);
  CHECK_THROWS_WITH_AS(distributed::start(), doctest::Contains("this build has no MPI"), std::runtime_error);
  ::unsetenv("OMPI_COMM_WORLD_SIZE");
}

TEST_CASE("the gradient allreduce scales every gradient by the rank's weight and packs them in buckets") {
  distributed::SingleProcess one;
  ag::Parameter a = parameter({3, 4}, 0.0F), b = parameter({1, 5}, 10.0F);
  const std::vector<float> a0(a.grad.begin(), a.grad.end()), b0(b.grad.begin(), b.grad.end());
  // 17 gradients + 2 extras in buckets of 8 floats: 3 messages.
  distributed::GradientAllreduce allreduce(one, {&a, &b}, 2, 8 * sizeof(float));
  CHECK(allreduce.values() == 19);
  CHECK(allreduce.messages() == 3);
  std::vector<float> extra = {3.0F, 4.0F};
  allreduce.run(0.5F, extra);
  for (std::size_t i = 0; i < a0.size(); ++i) CHECK(a.grad.data()[i] == 0.5F * a0[i]);
  for (std::size_t i = 0; i < b0.size(); ++i) CHECK(b.grad.data()[i] == 0.5F * b0[i]);
  CHECK(extra == std::vector<float>{3.0F, 4.0F});  // extras are summed, not weighted
  CHECK(allreduce.calls() == 1);
  std::vector<float> wrong(1);
  CHECK_THROWS_AS(allreduce.run(1.0F, wrong), std::invalid_argument);
}

TEST_CASE("overlapped, a parameter used twice is packed after its last use: the gradients of blocking") {
  distributed::SingleProcess one;
  ag::Rng init(3);
  nn::Linear layer(4, 4, init);  // applied twice: each parameter has two leaves on the tape
  const ag::Array x{{0.5F, -1.0F, 2.0F, 0.25F}, {1.5F, 0.0F, -0.5F, 1.0F}};
  auto gradients = [&](bool overlap) {
    distributed::GradientAllreduce allreduce(one, layer.parameters(), 1, 7 * sizeof(float));  // 4 buckets
    ag::Tape tape;
    for (ag::Parameter* p : layer.parameters()) p->zero_grad();
    ag::Var loss = ag::sum(ag::square(layer.forward(layer.forward(tape.constant(x)))));
    std::vector<float> extra = {loss.item()};
    if (overlap) allreduce.start(0.5F, &tape);
    tape.backward(loss);
    if (overlap) allreduce.finish(extra);
    else allreduce.run(0.5F, extra);
    std::vector<float> all;
    for (ag::Parameter* p : layer.parameters()) all.insert(all.end(), p->grad.begin(), p->grad.end());
    all.push_back(extra[0]);
    return all;
  };
  const std::vector<float> blocking = gradients(false), overlapped = gradients(true);
  CHECK(overlapped == blocking);
  CHECK(std::count(blocking.begin(), blocking.end(), 0.0F) == 0);
}

TEST_CASE("broadcasting a training state from the only rank keeps weights, optimizer and generators") {
  distributed::SingleProcess one;
  ag::Rng init(5), noise(9);
  nn::Linear layer(3, 2, init);
  optim::Adam adam(layer.parameters(), {.lr = 0.01});
  for (ag::Parameter* p : layer.parameters()) p->grad.fill(0.5F);
  adam.step();
  const optim::OptimizerState before = adam.state();
  const std::string noise_before = noise.state();
  nn::TrainingState state{layer, adam, {{"noise", &noise}}, {{"loader", "position 3"}}};
  distributed::broadcast(one, state, 0);
  CHECK(adam.step_count() == 1);
  CHECK(adam.state().arrays == before.arrays);
  CHECK(noise.state() == noise_before);
  CHECK(state.text.at("loader") == "position 3");
}
