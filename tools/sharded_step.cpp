#include "tools/sharded_step.hpp"

#include <algorithm>
#include <cmath>

#include "optim/clip.hpp"

namespace tools {

ShardedStep::ShardedStep(distributed::Communicator& comm, Model& model, bool overlap, double clip_norm)
    : model_(&model), allreduce_(comm, model.module().parameters(), /*extras=*/1), overlap_(overlap),
      clip_norm_(clip_norm) {}

ShardedStep::Noise& ShardedStep::noise_for(std::size_t global_rows, std::size_t rows, bool full) {
  std::optional<Noise>& noise = full ? full_ : tail_;
  const std::size_t latent = model_->config().latent;
  if (!noise || noise->global.shape()[0] != global_rows)
    noise = Noise{ag::Array::from_shape({global_rows, latent}), ag::Array::from_shape({rows, latent})};
  return *noise;
}

float ShardedStep::run(ag::Tape& tape, optim::Optimizer& optimizer, const datasets::Loader& loader, ag::Rng& noise,
                       float beta) {
  const ag::Array& batch = loader.batch();
  const std::size_t rows = batch.shape()[0];
  const std::size_t global_rows = loader.global_rows();
  Noise& eps = noise_for(global_rows, rows, global_rows == loader.batch_size());
  noise.fill_normal(eps.global);
  const std::size_t latent = model_->config().latent;
  const float* mine = eps.global.data() + loader.shard_begin() * latent;
  std::copy(mine, mine + rows * latent, eps.shard.data());

  optimizer.zero_grad();
  const float weight = static_cast<float>(rows) / static_cast<float>(global_rows);
  float loss[1] = {0.0F};  // this rank's share of the global mean loss, then the global mean
  bool started = false;
  if (rows > 0) {          // the last partial batch may leave a rank no rows: weight 0, zero gradient
    tape.reset();
    ag::Var labels = model_->labels_on(tape, loader.labels());
    models::VaeLoss l = model_->loss(tape.constant(batch), labels, eps.shard, beta);
    const float value = l.loss.item();
    if (std::isfinite(value)) {
      if (overlap_) allreduce_.start(weight, &tape);
      started = overlap_;
      tape.backward(l.loss);
    }
    loss[0] = value * weight;
  }
  // A non-finite loss on any rank makes the sum non-finite on all.
  if (overlap_) {
    if (!started) allreduce_.start(weight, nullptr);
    allreduce_.finish(loss);
  } else {
    allreduce_.run(weight, loss);
  }
  if (!std::isfinite(loss[0])) return loss[0];
  if (clip_norm_ > 0) optim::clip_grad_norm(optimizer.parameters(), clip_norm_);
  optimizer.step();
  return loss[0];
}

}  // namespace tools
