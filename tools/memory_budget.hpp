// What a training run will hold in memory, checked before it is allocated: a model or a batch
// past the machine's memory (or ulimit -v) would be killed by the kernel mid-run, so it is
// refused up front with a FlagError that names the size that would fit.
#pragma once

#include <cstddef>

#include "models/vae.hpp"
#include "tools/options.hpp"
#include "tools/training_data.hpp"

namespace tools {

/// Refuses a model whose weights, gradients and Adam's moments exceed the memory.
void check_model_fits_in_memory(const models::VaeConfig& config, std::size_t classes);

/// Refuses a --batch or --eval-batch whose activations exceed the memory beside the model.
void check_batches_fit_in_memory(const models::VaeConfig& config, std::size_t classes, const TrainOptions& o,
                                 const TrainingData& data);

/// Examples per evaluation batch: --eval-batch, or for the conv model by default the training batch.
std::size_t evaluation_batch(const TrainOptions& o);

}  // namespace tools
