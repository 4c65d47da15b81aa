// distributed/ across processes: run by `meson test` as `mpirun -np 3 test_distributed_mpi`.
// Three ranks, not two: with two, a + b == b + a and the rank order of the sum would not show.
#include <doctest/doctest.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "autograd/random.hpp"
#include "autograd/autograd.hpp"
#include "distributed/agree_on_failure.hpp"
#include "distributed/broadcast.hpp"
#include "distributed/communicator.hpp"
#include "distributed/gradient_allreduce.hpp"
#include "nn/linear.hpp"
#include "optim/adam.hpp"

namespace {

// MPI is initialized once per process and finalized at exit.
distributed::Communicator& world() {
  static const std::unique_ptr<distributed::Communicator> w = distributed::start();
  return *w;
}

// Rank r's contribution: rank 0 large numbers, rank 1 nearly their opposites, rank 2 small
// ones, so that (a + b) + c and a + (b + c) differ: the order of the additions shows.
std::vector<float> contribution(int rank, std::size_t n) {
  ag::Rng big(100), small(200 + static_cast<std::uint64_t>(rank));
  std::vector<float> v(n);
  for (float& x : v) {
    const float b = big.normal() * 1e8F;
    x = rank == 0 ? b : rank == 1 ? -b + small.normal() : small.normal();
  }
  return v;
}

}  // namespace

TEST_CASE("launched by mpirun with 3 ranks") {
  REQUIRE(world().size() == 3);
  CHECK(world().describe().find("3 ranks") != std::string::npos);
}

TEST_CASE("sum adds the ranks' values in rank order, the same bit for bit on every rank") {
  const std::size_t n = 1001;  // not a multiple of 3: the chunks are padded
  std::vector<float> mine = contribution(world().rank(), n);
  world().sum(mine);
  std::vector<float> expected = contribution(0, n);
  for (int r = 1; r < world().size(); ++r) {
    const std::vector<float> c = contribution(r, n);
    for (std::size_t i = 0; i < n; ++i) expected[i] += c[i];
  }
  CHECK(mine == expected);
  // Another order would differ somewhere: (a + b) + c != a + (b + c) for these numbers.
  std::size_t differ = 0;
  const auto a = contribution(0, n), b = contribution(1, n), c = contribution(2, n);
  for (std::size_t i = 0; i < n; ++i) differ += ((a[i] + b[i]) + c[i]) != (a[i] + (b[i] + c[i]));
  CHECK(differ > 0);

  std::vector<double> d = {static_cast<double>(world().rank()) + 0.5};
  world().sum(d);
  CHECK(d[0] == 0.5 + 1.5 + 2.5);
}

TEST_CASE("started sums give sum()'s bits, step after step, whatever their sizes") {
  for (int step = 0; step < 3; ++step) {
    std::vector<std::vector<float>> started, summed;
    for (std::size_t n : {1001U, 2U, 5000U, 1U}) {
      started.push_back(contribution(world().rank() + step, n));
      summed.push_back(started.back());
    }
    for (std::vector<float>& v : started) {
      world().start_sum(v);
      world().progress_sums();
    }
    for (std::vector<float>& v : summed) world().sum(v);
    world().wait_sums();
    CHECK(started == summed);
  }
}

TEST_CASE("the gradient allreduce gives every rank the row-weighted average of the gradients") {
  ag::Rng init(1);
  nn::Linear layer(70, 30, init);  // 2130 values: 3 buckets of 1000 floats
  const std::vector<ag::Parameter*> params = layer.parameters();
  for (ag::Parameter* p : params) p->grad.fill(static_cast<float>(world().rank() + 1));
  // Rows 2, 1, 1 of a global batch of 4: weights 0.5, 0.25, 0.25.
  const float weight = world().rank() == 0 ? 0.5F : 0.25F;
  distributed::GradientAllreduce allreduce(world(), params, 1, 1000 * sizeof(float));
  CHECK(allreduce.messages() == 3);
  std::vector<float> loss = {10.0F * static_cast<float>(world().rank())};
  allreduce.run(weight, loss);
  for (ag::Parameter* p : params)
    for (float g : p->grad) REQUIRE(g == 0.5F * 1 + 0.25F * 2 + 0.25F * 3);
  CHECK(loss[0] == 30.0F);
}

TEST_CASE("overlapped with the backward sweep, the allreduce gives the blocking result bit for bit") {
  ag::Rng init(7), data(20 + static_cast<std::uint64_t>(world().rank()));
  nn::Linear layer(300, 40, init);  // 12,040 values: 4 buckets of 4,000 floats
  ag::Array x = ag::Array::from_shape({3, 300});
  data.fill_normal(x);
  auto gradients = [&](bool overlap) {
    distributed::GradientAllreduce allreduce(world(), layer.parameters(), 1, 4000 * sizeof(float));
    ag::Tape tape;
    for (ag::Parameter* p : layer.parameters()) p->zero_grad();
    ag::Var loss = ag::sum(ag::square(layer.forward(tape.constant(x))));
    std::vector<float> extra = {loss.item()};
    if (overlap) allreduce.start(1.0F / 3.0F, &tape);
    tape.backward(loss);
    if (overlap) allreduce.finish(extra);
    else allreduce.run(1.0F / 3.0F, extra);
    std::vector<float> all = extra;
    for (ag::Parameter* p : layer.parameters()) all.insert(all.end(), p->grad.begin(), p->grad.end());
    return all;
  };
  const std::vector<float> blocking = gradients(false);
  CHECK(gradients(true) == blocking);
  // Every rank holds the same sums.
  std::vector<float> rank_0 = blocking;
  world().broadcast(std::as_writable_bytes(std::span(rank_0)), 0);
  CHECK(rank_0 == blocking);
}

TEST_CASE("an error every rank hit is reported by rank 0 alone; one rank's own error by that rank") {
  const int rank = world().rank();
  distributed::Agreement none = distributed::agree_on_failure(world(), 0, "");
  CHECK(!none.any_failed);
  CHECK(none.exit_code == 0);
  distributed::Agreement all = distributed::agree_on_failure(world(), 2, "error: --batch: abc");
  CHECK(all.any_failed);
  CHECK(all.exit_code == 2);
  CHECK(all.report == (rank == 0));
  // Rank 2 alone fails (code 1): it reports; every rank leaves with its code.
  distributed::Agreement one = distributed::agree_on_failure(world(), rank == 2 ? 1 : 0, "error: bad shard");
  CHECK(one.any_failed);
  CHECK(one.exit_code == 1);
  CHECK(one.report == (rank == 2));
  // Every rank fails, rank 1 differently: rank 0 reports its own, rank 1 its own.
  distributed::Agreement differ =
      distributed::agree_on_failure(world(), rank == 1 ? 1 : 2, rank == 1 ? "error: disk full" : "error: --lr");
  CHECK(differ.exit_code == (rank == 1 ? 1 : 2));
  CHECK(differ.report == (rank != 2));
}

TEST_CASE("a broadcast training state leaves every rank with rank 0's weights, optimizer and generators") {
  const int rank = world().rank();
  ag::Rng init(static_cast<std::uint64_t>(rank + 1)), noise(static_cast<std::uint64_t>(rank + 50));
  nn::Linear layer(4, 3, init);  // other initial weights on every rank
  optim::Adam adam(layer.parameters(), {.lr = 0.01});
  for (int s = 0; s <= rank; ++s) {  // rank r has taken r + 1 steps
    for (ag::Parameter* p : layer.parameters()) p->grad.fill(0.1F * static_cast<float>(s + 1));
    adam.step();
  }
  std::string loader = "rank " + std::to_string(rank);
  nn::TrainingState state{layer, adam, {{"noise", &noise}}, {{"loader", loader}}};
  distributed::broadcast(world(), state, 0);

  // What rank 0 holds, rebuilt here the same way.
  ag::Rng init0(1), noise0(50);
  nn::Linear layer0(4, 3, init0);
  optim::Adam adam0(layer0.parameters(), {.lr = 0.01});
  for (ag::Parameter* p : layer0.parameters()) p->grad.fill(0.1F);
  adam0.step();
  const auto params = layer.parameters(), params0 = layer0.parameters();
  for (std::size_t i = 0; i < params.size(); ++i) CHECK(params[i]->value == params0[i]->value);
  CHECK(adam.step_count() == 1);
  CHECK(adam.state().arrays == adam0.state().arrays);
  CHECK(noise.state() == noise0.state());
  CHECK(state.text.at("loader") == "rank 0");
}
