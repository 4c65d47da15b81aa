// A conditional VAE read back from a file that `vae train --conditional` wrote: the
// configuration and the number of classes ("classes") come from the metadata, and are
// checked against the tensors actually present before anything is allocated (as
// models/vae_file.hpp does for the plain VAE).
//
//   nn::SafetensorsFile file = nn::SafetensorsFile::load("runs/cvae/model.safetensors");
//   if (models::is_conditional(file)) cvae = models::load_conditional_vae(file);
#pragma once

#include <cstddef>
#include <memory>

#include "models/conditional_vae.hpp"
#include "nn/safetensors.hpp"

namespace models {

/// The metadata's "model" value of a conditional VAE (a plain one's is "vae").
inline constexpr const char* kConditionalVaeModel = "conditional-vae";

/// The number of parameters a ConditionalVae of this size has, or 0 if it would overflow.
std::size_t parameter_count(const VaeConfig& config, std::size_t num_classes);

/// Whether `file`'s metadata says it holds a conditional VAE.
bool is_conditional(const nn::SafetensorsFile& file);

/// The metadata of a conditional VAE: the configuration's, with "model" and "classes".
nn::Metadata conditional_metadata(const ConditionalVae& cvae);

/// A model built from the file's metadata with its weights loaded (strictly). Throws
/// nn::SafetensorsError naming the file if the metadata is wrong or disagrees with the tensors.
std::unique_ptr<ConditionalVae> load_conditional_vae(const nn::SafetensorsFile& file);

/// Throws nn::SafetensorsError unless the file stores the parameters of this size of model
/// (checked before a model of that size is built).
void check_parameter_count(const VaeConfig& config, std::size_t num_classes, const nn::SafetensorsFile& file);

}  // namespace models
