// The training run behind tools/train_vae: data, model, optimizer, loop, evaluation,
// checkpoints, metrics and pictures. train_vae.cpp only turns flags into TrainOptions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "models/vae.hpp"
#include "optim/optimizer.hpp"

namespace tools {

inline const char* kDefaultDataDir = "/usr/share/datasets/fashion-mnist";

struct TrainOptions {
  std::filesystem::path data = kDefaultDataDir;
  std::size_t epochs = 10;  // total: a resumed run continues up to this many
  std::size_t batch = 128;
  double lr = 1e-3;
  std::vector<std::size_t> hidden = {400};
  std::size_t latent = 20;
  models::Decoder decoder = models::Decoder::bernoulli;
  double beta = 1.0;
  double kl_warmup = 0.0;  // epochs over which beta rises linearly from 0
  bool binarize = false;
  std::uint64_t seed = 1;
  int threads = 0;  // 0: all cores
  std::size_t limit = 0;  // 0: every training example
  std::filesystem::path out = "runs/vae";
  std::filesystem::path resume;  // a checkpoint.safetensors, or empty
  std::size_t iwae = 0;          // K for the importance-weighted test NLL; 0: skip
  std::size_t eval_batch = 500;
  bool progress = true;  // a progress bar when stderr is a terminal
  /// Names of the options the user set explicitly (a resumed run checks them).
  std::vector<std::string> given;
};

/// A non-finite loss: training stops, the last good checkpoint stays.
class TrainingDiverged : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// One optimization step on one batch: records the loss on `tape` (reset first), and
/// unless it is non-finite, backpropagates and updates. Returns the loss. No heap
/// allocation once the tape has seen a batch of this size.
float train_step(ag::Tape& tape, models::Vae& vae, optim::Optimizer& optimizer, const ag::Array& batch,
                 ag::Rng& noise, float beta);

/// Trains as the options say and writes everything to options.out. Throws on bad input
/// (datasets::DataError, nn::SafetensorsError, std::invalid_argument) and on divergence.
void train_vae(TrainOptions options);

}  // namespace tools
