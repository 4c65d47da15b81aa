// A VAE read back from a file that `vae train` wrote (model.safetensors or
// checkpoint.safetensors): the configuration comes from the metadata, and is checked
// against the tensors actually present before anything is allocated, so a small file whose
// metadata claims huge layers is refused with a message instead of exhausting memory.
//
//   nn::SafetensorsFile file = nn::SafetensorsFile::load("runs/vae/model.safetensors");
//   std::unique_ptr<models::Vae> vae = models::load_vae(file);
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "models/vae.hpp"
#include "nn/safetensors.hpp"

namespace models {

/// The number of parameters a VAE of this configuration has, or 0 if it would overflow.
std::size_t parameter_count(const VaeConfig& config);

/// The configuration in `file`'s metadata, validated: sizes parse and are positive, and
/// the parameter count they imply equals the number of model values stored in the file
/// (tensors outside "optimizer."). Throws nn::SafetensorsError naming the file otherwise.
VaeConfig config_from_file(const nn::SafetensorsFile& file);

/// Throws nn::SafetensorsError unless `config`'s parameter count equals the model values
/// stored in `file` (checked before a model of that size is built).
void check_parameter_count(const VaeConfig& config, const nn::SafetensorsFile& file);

/// The sizes a configuration names, for messages: "input 784, hidden [400], latent 20, decoder
/// bernoulli", or "conv, image 1x28x28, latent 20, decoder bernoulli".
std::string describe_sizes(const VaeConfig& config);

/// Throws nn::SafetensorsError unless `needed` (0: more than 2^64) equals the number of model
/// values stored in `file`; `model` says what the metadata claims, for the message. (Whether
/// each is finite, nn::load_module checks as it reads them.)
void check_stored_count(const nn::SafetensorsFile& file, std::size_t needed, const std::string& model);

/// A model built from config_from_file(file) with the file's weights loaded (strictly: every
/// tensor present with its shape).
std::unique_ptr<Vae> load_vae(const nn::SafetensorsFile& file);

}  // namespace models
