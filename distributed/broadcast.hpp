// Broadcasts that start every rank of a data-parallel run from rank 0's state: the
// parameters, the optimizer's state (its scalars and buffers), random generators and the
// resumable text of a training loop (nn::TrainingState holds all four). Every rank must
// call them together, with the same model and optimizer type.
//
//   nn::TrainingState state{vae, adam, {{"noise", &noise}}, {{"loader", loader.state()}}};
//   distributed::broadcast(world, state, 0);   // now every rank holds rank 0's
//   loader.set_state(state.text.at("loader"));
#pragma once

#include <vector>

#include "autograd/parameter.hpp"
#include "autograd/random.hpp"
#include "distributed/communicator.hpp"
#include "nn/training_state.hpp"
#include "optim/optimizer.hpp"

namespace distributed {

void broadcast_parameters(Communicator& comm, const std::vector<ag::Parameter*>& params, int root);
void broadcast_optimizer(Communicator& comm, optim::Optimizer& optimizer, int root);
void broadcast_generator(Communicator& comm, ag::Rng& rng, int root);
/// All of the above for a training state, and its text entries (same keys on every rank).
void broadcast(Communicator& comm, nn::TrainingState& state, int root);

}  // namespace distributed
