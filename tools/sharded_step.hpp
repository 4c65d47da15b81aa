// ShardedStep: one data-parallel optimization step of `vae train` under mpirun.
//
// Every rank holds its slice of the global batch (datasets::Loader with .rank/.ranks). Each
// draws the whole batch's noise from the shared generator, exactly as one process would, and
// keeps its rows of it; backpropagates its slice's mean loss; then the gradients are
// averaged across ranks weighted by rows (distributed::GradientAllreduce, which also sums the
// loss), and every rank applies the same update. With `overlap`, each bucket of gradients
// starts its allreduce while the backward sweep is still computing the others' (the same
// result bit for bit; see README "Data-parallel training" for when it is faster). The generators stay in step on every rank,
// so a checkpoint written by rank 0 resumes with any number of ranks.
#pragma once

#include <optional>

#include "datasets/loader.hpp"
#include "distributed/gradient_allreduce.hpp"
#include "tools/model.hpp"
#include "optim/optimizer.hpp"

namespace tools {

class ShardedStep {
 public:
  /// `clip_norm` > 0: the summed gradients' global norm is clipped to it before the update
  /// (the same on every rank, as every rank holds the same sum).
  ShardedStep(distributed::Communicator& comm, Model& model, bool overlap, double clip_norm = 0);

  /// The step on the global batch whose slice `loader` holds. Returns the global batch's mean
  /// loss; when it is non-finite (on any rank), no rank has updated its weights.
  float run(ag::Tape& tape, optim::Optimizer& optimizer, const datasets::Loader& loader, ag::Rng& noise,
            float beta);

  const distributed::GradientAllreduce& allreduce() const { return allreduce_; }

 private:
  // The noise of a global batch and this rank's rows of it; one pair for full batches and
  // one for the last partial batch, each allocated the first time it is needed.
  struct Noise {
    ag::Array global, shard;
  };
  Noise& noise_for(std::size_t global_rows, std::size_t rows, bool full);

  Model* model_;
  distributed::GradientAllreduce allreduce_;
  bool overlap_;
  double clip_norm_;
  std::optional<Noise> full_, tail_;
};

}  // namespace tools
