#include "distributed/broadcast.hpp"

#include <stdexcept>

#include <fmt/format.h>

namespace distributed {
namespace {

void broadcast_floats(Communicator& comm, ag::Array& a, int root) {
  comm.broadcast(std::as_writable_bytes(std::span(a.data(), a.size())), root);
}

}  // namespace

void broadcast_parameters(Communicator& comm, const std::vector<ag::Parameter*>& params, int root) {
  for (ag::Parameter* p : params) broadcast_floats(comm, p->value, root);
}

// The state's keys and shapes are the same on every rank (the same optimizer over the same
// model), so only the numbers travel; load_state checks them as for a checkpoint.
void broadcast_optimizer(Communicator& comm, optim::Optimizer& optimizer, int root) {
  optim::OptimizerState state = optimizer.state();
  std::vector<double> scalars;
  for (const auto& [name, value] : state.scalars) scalars.push_back(value);
  comm.broadcast(std::as_writable_bytes(std::span(scalars)), root);
  std::size_t i = 0;
  for (auto& [name, value] : state.scalars) value = scalars[i++];
  for (auto& [name, array] : state.arrays) broadcast_floats(comm, array, root);
  optimizer.load_state(state);
}

void broadcast_generator(Communicator& comm, ag::Rng& rng, int root) {
  std::string text = rng.state();
  comm.broadcast(text, root);
  rng.set_state(text);
}

void broadcast(Communicator& comm, nn::TrainingState& state, int root) {
  broadcast_parameters(comm, state.module.parameters(), root);
  broadcast_optimizer(comm, state.optimizer, root);
  for (auto& [name, rng] : state.generators) broadcast_generator(comm, *rng, root);
  for (auto& [name, text] : state.text) comm.broadcast(text, root);
}

}  // namespace distributed
