// The training run behind `vae train` (and train_vae): data, model, optimizer, loop,
// evaluation, checkpoints, metrics and pictures. The options come from tools/options.hpp.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>

#include "models/vae.hpp"
#include "optim/optimizer.hpp"
#include "tools/model.hpp"
#include "tools/options.hpp"

namespace tools {

/// A non-finite loss: training stops, the last good checkpoint stays.
class TrainingDiverged : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// What a checkpoint's "format" metadata says.
inline constexpr const char* kCheckpointFormat = "vae-autograd/training-checkpoint/2";
inline constexpr const char* kModelFormat = "vae-autograd/model/1";

/// One optimization step on one batch: records the loss on `tape` (reset first), and
/// unless it is non-finite, backpropagates, clips the gradients' global norm to `clip_norm`
/// (when > 0) and updates. Returns the loss. No heap allocation once the tape has seen a
/// batch of this size. `labels` are the batch's classes (loader.labels()), which only a
/// conditional model reads.
float train_step(ag::Tape& tape, Model& model, optim::Optimizer& optimizer, const ag::Array& batch,
                 std::span<const std::int32_t> labels, ag::Rng& noise, float beta, double clip_norm = 0);
/// The same for a models::Vae held directly (tests, benchmarks).
float train_step(ag::Tape& tape, models::Vae& vae, optim::Optimizer& optimizer, const ag::Array& batch,
                 ag::Rng& noise, float beta, double clip_norm = 0);

/// Trains as the options say and writes everything to options.out. Under mpirun with N > 1
/// ranks, data-parallel: each rank trains on its slice of every global batch (ShardedStep)
/// and rank 0 alone prints and writes. Throws on bad input (datasets::DataError,
/// nn::SafetensorsError, FlagError, std::invalid_argument) and on divergence; under mpirun,
/// an error before training that every rank hit is thrown on rank 0 and AlreadyReported on
/// the others, and a rank failing alone during training ends every rank (MPI_Abort).
void train_vae(TrainOptions options);
/// The same, with the options read by `read_options` (which may throw FlagError): under
/// mpirun a bad flag is then agreed on as any other error before training.
void train_vae(const std::function<TrainOptions()>& read_options);

/// Reports an error that happened before training started (`message`: the whole text, as
/// one process prints it, ending in a newline) and returns the exit code. Under mpirun every
/// rank of `vae train` calls this or reaches the same agreement in train_vae, so an error
/// every rank hit is printed once (by rank 0) and no rank waits for another.
int report_before_training(int exit_code, const std::string& message);

}  // namespace tools
