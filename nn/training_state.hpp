// A training run's full state in one safetensors file, so that any model's loop can stop
// and continue exactly where it was: the module's weights, the optimizer's state (its
// scalars as metadata, its buffers as tensors named "optimizer.<i>.<buffer>"), the state
// of every named random generator, and any other resumable text the loop keeps (the data
// loader's position, the metrics so far, the epoch).
//
//   nn::TrainingState state{vae, adam, {{"noise", &noise}}, {{"loader", loader.state()}}};
//   nn::save_training_state("checkpoint.safetensors", state, {{"format", "my-run/1"}});
//   ...
//   nn::SafetensorsFile file = nn::SafetensorsFile::load("checkpoint.safetensors");
//   nn::restore_training_state(file, state);   // weights, optimizer and generators restored
//   loader.set_state(state.text.at("loader"));
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "autograd/random.hpp"
#include "nn/module.hpp"
#include "nn/safetensors.hpp"
#include "optim/optimizer.hpp"

namespace nn {

struct TrainingState {
  Module& module;
  optim::Optimizer& optimizer;
  std::map<std::string, ag::Rng*> generators;  // saved as metadata "rng.<name>"
  std::map<std::string, std::string> text;      // saved as metadata "state.<name>"
};

/// Writes the state and `metadata` (which must not use the reserved prefixes "rng.",
/// "state.", "optimizer.") atomically to `path`.
void save_training_state(const std::filesystem::path& path, const TrainingState& state, Metadata metadata);

/// Restores weights, optimizer and generators from `file` and fills state.text with every
/// saved text entry. Checks everything before changing anything it can (the module's
/// tensors, the optimizer's entries); throws SafetensorsError, StateDictError or
/// optim::StateError naming the file and the entry.
void restore_training_state(const SafetensorsFile& file, TrainingState& state);

/// Whether `file` holds a training state (optimizer scalars present), not only weights.
bool holds_training_state(const SafetensorsFile& file);

}  // namespace nn
